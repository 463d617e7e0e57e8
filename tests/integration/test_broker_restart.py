"""The embedded broker keeps nothing: after it restarts empty, the relay republishes the event
store into it and no consumer applies anything twice."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest

from domain.post import Post
from domain.wallet import Wallet
from herald.storage.embedded import EmbeddedBroker
from herald.runtime.wiring import Herald, run_loops
from schemas import commands as cmd
from tests.read_models import assert_queue_equals_rebuilt

pytestmark = pytest.mark.integration

ROLES = ("handler", "relay", "processors", "projections")


def _start(settings) -> tuple[Herald, threading.Event, list[threading.Thread]]:
    herald = Herald(settings, settings.database_url, settings.kafka_bootstrap)
    herald.resume_relays(herald.prepare())
    stop = threading.Event()
    threads = run_loops([loop for role in ROLES for loop in herald.loops(role)], stop)
    return herald, stop, threads


def _stop(herald: Herald, stop: threading.Event, threads: list[threading.Thread]) -> None:
    stop.set()
    for thread in threads:
        thread.join(timeout=20)
    herald.close()


def _send(herald: Herald, workspace_id: str, command_id: str, payload: cmd.Payload):
    decision = herald.app.handle(
        cmd.CommandEnvelope.wrap(payload, command_id=command_id, workspace_id=workspace_id, issued_by="test",
                                 issued_at=datetime.now(UTC))
    )
    assert decision.accepted, decision
    return decision.result


def _wait_published(herald: Herald, post_id: str, timeout: float = 60) -> Post:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        post = herald.app.find(Post, post_id)
        wallet = herald.app.find(Wallet, post.workspace_id)
        holds = [h for h in wallet.holds.values() if h.post_id == post_id]
        if post.status == "published" and all(h.status == "consumed" for h in holds):
            return post
        time.sleep(0.2)
    raise AssertionError(f"post {post_id} not published and settled in {timeout}s: {post.status}")


def _count(herald: Herald, sql: str) -> int:
    with herald.pool.connection() as conn:
        return conn.execute(sql).fetchone()[0]


def test_relay_republishes_into_an_empty_broker_and_nothing_applies_twice(settings, pg_url, tmp_path):
    with EmbeddedBroker(tmp_path / "broker") as broker:
        settings = settings.model_copy(update={"kafka_bootstrap": broker.bootstrap, "dispatch_interval_s": 0.2})
        herald, stop, threads = _start(settings)
        ws = "ws-restart"
        _send(herald, ws, "open", cmd.OpenWorkspace(name="Restart", tier="pro"))
        accounts = [
            _send(herald, ws, f"connect-{h}", cmd.ConnectSocialAccount(platform="sandbox", handle=h))["social_account_id"]
            for h in ("a", "b")
        ]
        _send(herald, ws, "grant", cmd.GrantCredits(amount=10))
        first = _send(herald, ws, "post-1", cmd.SchedulePost(text="before the restart", destinations=accounts))
        _wait_published(herald, first["post_id"])
        events_before = herald.app.recorder.max_notification_id()
        _stop(herald, stop, threads)

        broker.restart()  # comes back with no topics and no messages

        herald, stop, threads = _start(settings)
        try:
            second = _send(herald, ws, "post-2", cmd.SchedulePost(text="after the restart", destinations=accounts[:1]))
            _wait_published(herald, second["post_id"])
            with herald.pool.connection() as conn:
                relayed = conn.execute("SELECT position FROM relay_positions").fetchone()[0]
            assert relayed >= events_before, "the relay republished the history into the new topic"
            assert _count(herald, "SELECT count(*) FROM sandbox_posts") == 3, "each destination posted exactly once"
            assert _count(herald, "SELECT count(*) FROM publish_journal") == 3
            wallet = herald.app.find(Wallet, ws)
            assert wallet.available == 10 - 3 and wallet.held == 0
            consumed = [n for n in herald.app.recorder.select_notifications(start=1, limit=10_000)
                        if b"herald.wallet.hold_consumed.v1" in n.state]
            assert len(consumed) == 3, "each hold consumed exactly once"
            assert _count(herald, "SELECT count(*) FROM queue_destinations WHERE status = 'published'") == 3
            assert_queue_equals_rebuilt(herald, pg_url)
        finally:
            _stop(herald, stop, threads)
