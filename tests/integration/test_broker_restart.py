"""The embedded broker keeps nothing: after it restarts empty, the relay republishes the event
store into it and no consumer applies anything twice."""

from __future__ import annotations

import pytest

from domain.post import Post
from domain.wallet import Wallet
from herald.runtime.wiring import Herald
from schemas import commands as cmd
from tests.support import (
    assert_queue_equals_rebuilt, close_herald, decide, decide_all, event_types, query_one, role_loops, running,
    sandbox_workspace, wait_until,
)

pytestmark = pytest.mark.integration

ROLES = ("handler", "relay", "processors", "projections")


def _published_and_settled(herald: Herald, post_id: str) -> bool:
    post = herald.app.find(Post, post_id)
    pending = [h for h in herald.app.find(Wallet, post.workspace_id).holds.values() if h.post_id == post_id]
    return post.status == "published" and not pending  # the wallet keeps pending holds only


def test_relay_republishes_into_an_empty_broker_and_nothing_applies_twice(heralds, pg_url):
    broker = heralds.own_broker()
    herald = heralds.start(broker=broker, dispatch_interval_s=0.2)
    ws = "ws-restart"
    with running(role_loops(herald, *ROLES)):
        decide_all(herald.app, ws, sandbox_workspace(ws, tier="pro", accounts=("a", "b"), credits=10))
        accounts = [f"{ws}-a", f"{ws}-b"]
        first = decide(herald.app, ws, "post-1", cmd.SchedulePost(text="before the restart", destinations=accounts))
        wait_until(lambda: _published_and_settled(herald, first["post_id"]), "the first post published and settled")
        events_before = herald.app.recorder.max_notification_id()
    close_herald(herald)

    broker.restart()  # comes back with no topics and no messages

    herald = heralds.start(broker=broker, dispatch_interval_s=0.2)
    with running(role_loops(herald, *ROLES)):
        second = decide(herald.app, ws, "post-2", cmd.SchedulePost(text="after the restart", destinations=accounts[:1]))
        wait_until(lambda: _published_and_settled(herald, second["post_id"]), "the second post published and settled")
        relayed = query_one(herald, "SELECT position FROM relay_positions")
        assert relayed >= events_before, "the relay republished the history into the new topic"
        assert query_one(herald, "SELECT count(*) FROM sandbox_posts") == 3, "each destination posted exactly once"
        assert query_one(herald, "SELECT count(*) FROM publish_journal") == 3
        wallet = herald.app.find(Wallet, ws)
        assert wallet.available == 10 - 3 and wallet.held == 0
        assert event_types(herald)["herald.wallet.hold_consumed.v1"] == 3, "each hold consumed exactly once"
        # The read model follows the events a moment behind the decisions.
        wait_until(lambda: query_one(herald, "SELECT count(*) FROM queue_destinations WHERE status = 'published'") == 3,
                   "the queue read model shows the three destinations published")
        assert_queue_equals_rebuilt(herald, pg_url)
