"""A consumer-group rebalance while publishing is in flight: two `herald processors` processes
share the work, one leaves half-way, and still every destination is published exactly once
and every hold consumed exactly once."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from herald.runtime.wiring import Herald
from tests.support import (
    assert_queue_equals_rebuilt, decide_all, event_types, query_one, role_loops, role_processes, running,
    sandbox_workspace, wait_until,
)

pytestmark = pytest.mark.integration

WORKSPACES = [f"ws-{i}" for i in range(6)]
POSTS = 10  # per workspace, two destinations each


def _published(herald: Herald) -> int:
    return query_one(herald, "SELECT count(*) FROM queue_destinations WHERE status = 'published'")


def _platform_posts(herald: Herald) -> int:
    return query_one(herald, "SELECT count(*) FROM sandbox_posts")


def test_one_of_two_publishing_processes_leaves_mid_stream(heralds, pg_url, tmp_path):
    herald = heralds.start(dispatch_interval_s=0.2)
    # Half the workspaces' posts become due at once after the set-up, the other half later: the
    # rebalance below happens with work in flight and waiting, however fast a loaded machine
    # publishes the first half once its processors are up.
    due = datetime.now(UTC) + timedelta(seconds=8)
    later = due + timedelta(seconds=15)
    with (running(role_loops(herald, "relay", "handler", "projections")),
          role_processes(["processors", "processors"], herald.settings, tmp_path,
                         HERALD_DISPATCH_INTERVAL_S="0.2") as processes):
        for ws in WORKSPACES:
            decide_all(herald.app, ws, sandbox_workspace(ws, accounts=("a", "b"), credits=100, posts=POSTS,
                                                         publish_at=due if ws in WORKSPACES[:3] else later))
        total = len(WORKSPACES) * POSTS * 2

        started = time.monotonic()
        wait_until(lambda: _platform_posts(herald) >= 1, "publishing started", timeout=90, interval=0.01)
        assert _platform_posts(herald) < total, "the rebalance should happen with work still in flight"
        leaving = processes[0]
        assert leaving.stop() == 0, leaving.log_tail()  # leaves the groups; its partitions move to the other

        wait_until(lambda: _published(herald) == total, "every destination published",
                   timeout=90 - (time.monotonic() - started))
        wait_until(lambda: event_types(herald)["herald.wallet.hold_consumed.v1"] >= total, "every hold consumed",
                   timeout=30, interval=0.2)
        time.sleep(2)  # a doubled effect would have arrived by now
        types = event_types(herald)
        assert types["herald.post.destination_published.v1"] == total, "each destination published once"
        assert types["herald.post.attempt_started.v1"] == total, "no second attempt was needed or started"
        assert types["herald.wallet.hold_consumed.v1"] == total, "each hold consumed once"
        assert query_one(herald, "SELECT count(*) FROM sandbox_posts") == total
        assert query_one(herald, "SELECT count(*) FROM publish_journal WHERE state = 'reported'") == total
        assert_queue_equals_rebuilt(herald, pg_url)
