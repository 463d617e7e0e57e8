"""Exactly-once effects of the events consumer under forced faults: a crash at each step of
the consume loop, then a fresh consumer (as after a restart) and a full re-read."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from herald.messaging import kafka_io
from herald.messaging.consumer import EventConsumer
from herald.runtime.wiring import Herald
from projections import queue
from schemas import commands as cmd
from tests.support import (
    assert_queue_equals_rebuilt, decide_all, query_all, relay_everything, stored_notifications,
)

pytestmark = pytest.mark.integration


class Crash(BaseException):
    """Stands for the process dying: no handler in the consumer catches it."""


@pytest.fixture
def herald(herald):
    """The shared Herald, with three workspaces' events stored and relayed, and a probe table."""
    with herald.pool.connection() as conn:
        conn.execute("CREATE TABLE probe_effects (event_id text NOT NULL)")
    later = datetime.now(UTC) + timedelta(days=1)
    for ws in ("ws-1", "ws-2", "ws-3"):
        decide_all(herald.app, ws, [cmd.OpenWorkspace(name=ws, tier="business"), cmd.GrantCredits(amount=5), cmd.GrantCredits(amount=6),
                                    cmd.ConnectSocialAccount(social_account_id=f"{ws}-acct", platform="sandbox",
                                                             handle=ws),
                                    *[cmd.SchedulePost(post_id=f"{ws}-p{i}", text="x", destinations=[f"{ws}-acct"],
                                                       publish_at=later) for i in range(3)],
                                    cmd.CancelPost(post_id=f"{ws}-p0", reason="changed my mind")])
    relay_everything(herald.relay())
    return herald


def _effects(herald: Herald) -> tuple[int, int]:
    (counts,) = query_all(herald, "SELECT count(*), count(DISTINCT event_id) FROM probe_effects")
    return counts


def _probe(conn, event):
    conn.execute("INSERT INTO probe_effects VALUES (%s)", (event.id,))
    return []


def _drain(consumer: EventConsumer, expected: int, herald: Herald, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _effects(herald)[1] < expected:
        batch = consumer.consumer.poll(timeout_ms=200, max_records=4)
        if batch:
            consumer.process(batch)
    consumer.consumer.close()


def _event_count(herald: Herald) -> int:
    return len(stored_notifications(herald.app))


def _reread_all(consumer: EventConsumer, expected: int, timeout: float = 15) -> int:
    """Seek back to the start of every partition and process it all again (at least
    ``expected`` records, or until the timeout); returns how many records were read."""
    kafka_io.wait_for_assignment(consumer.consumer)
    consumer.expected.clear()
    consumer.consumer.seek_to_beginning()
    deadline = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < deadline and seen < expected:
        batch = consumer.consumer.poll(timeout_ms=200)
        seen += sum(len(records) for records in batch.values())
        if batch:
            consumer.process(batch)
    consumer.consumer.close()
    return seen


STEPS = ["in_handler_after_effect", "before_offset_commit", "after_offset_commit"]


def _crash_at(step: str, consumer: EventConsumer, crashed: list) -> None:
    """Make the consumer's offset commit die at ``step`` (the handler's own crash is the caller's)."""
    if step == "in_handler_after_effect":
        return
    commit = consumer.consumer.commit

    def crashing_commit(offsets):
        if step == "after_offset_commit":
            commit(offsets)
        if not crashed:
            crashed.append(offsets)
            raise Crash
        return commit(offsets)

    consumer.consumer.commit = crashing_commit


def _crash_resume_and_reread(herald: Herald, name: str, effect, step: str, crash_after: int) -> None:
    """Run ``effect`` on every event in a consumer that dies at ``step``, then in a new consumer
    of the same group (a restarted process), then once more from the start of the topic."""
    total = _event_count(herald)
    crashed: list = []

    def handler(conn, event):
        effect(conn, event)
        _probe(conn, event)
        if step == "in_handler_after_effect" and not crashed and _effects(herald)[1] >= crash_after:
            crashed.append(event.id)
            raise Crash
        return []

    first = herald.event_consumer(name, handler)
    _crash_at(step, first, crashed)
    with pytest.raises(Crash):
        _drain(first, total, herald)
    assert crashed
    # The dead process's group membership ends (here at once; after a real crash, when its
    # session times out). Nothing it had not committed is committed now.
    first.consumer.close(autocommit=False)

    # A new process: new consumer in the same group, resuming from what PostgreSQL recorded.
    _drain(herald.event_consumer(name, handler), total, herald)
    assert _effects(herald) == (total, total), "every event applied, none twice"

    # Redelivery of everything: the consumer seeks back to the start and re-reads.
    assert _reread_all(herald.event_consumer(name, handler), total) >= total, "the whole topic was read again"
    assert _effects(herald) == (total, total)


@pytest.mark.parametrize("step", STEPS)
def test_a_crash_at_any_step_leaves_each_effect_applied_once(herald, step):
    _crash_resume_and_reread(herald, "probe", lambda conn, event: None, step, crash_after=2)


@pytest.mark.parametrize("step", STEPS)
def test_the_queue_projection_crashed_at_any_step_equals_one_rebuilt_from_scratch(herald, pg_url, step):
    """The real read model under the same faults: the queue must equal one built once from the
    event store."""
    _crash_resume_and_reread(herald, "queue-under-faults", queue.apply, step, crash_after=_event_count(herald) // 2)
    statuses = query_all(herald, "SELECT status, count(*) FROM queue_destinations GROUP BY 1 ORDER BY 1")
    assert statuses == [("cancelled", 3), ("pending", 6)]
    assert_queue_equals_rebuilt(herald, pg_url, timeout_s=0)
