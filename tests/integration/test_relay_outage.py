"""The broker restarts empty while the relay runs: afterwards the events topic holds every stored
event, and a consumer reading it from the start applies each one (no event sits behind a later
position in its partition, where consumers would skip it)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from kafka import KafkaConsumer, TopicPartition

from herald.storage.embedded import EmbeddedBroker
from herald.runtime.wiring import Herald, run_loops
from schemas import commands as cmd

pytestmark = pytest.mark.integration

WORKSPACES = [f"ws-{n}" for n in range(6)]  # keys spread over the topic's partitions


def _handle(herald: Herald, workspace_id: str, command_id: str, payload: cmd.Payload) -> None:
    decision = herald.app.handle(cmd.CommandEnvelope.wrap(
        payload, command_id=command_id, workspace_id=workspace_id, issued_by="test", issued_at=datetime.now(UTC)))
    assert decision.accepted, decision


def _keep_writing(herald: Herald, writing: threading.Event) -> None:
    n = 0
    while writing.is_set():
        n += 1
        _handle(herald, WORKSPACES[n % len(WORKSPACES)], f"grant-{n}", cmd.GrantCredits(amount=1))
        time.sleep(0.01)


def _relayed(herald: Herald) -> int:
    with herald.pool.connection() as conn:
        row = conn.execute("SELECT position FROM relay_positions WHERE relay = 'events'").fetchone()
    return row[0] if row else 0


def _wait_until(check, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.1)


def _positions_by_partition(bootstrap: str, topic: str, expected: set[int]) -> dict[int, list[int]]:
    """Every record's ce_position, per partition in offset order: read from the start until all
    expected positions arrived and then nothing more for a second, or nothing for five seconds
    (Tansu under-reports end offsets)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        found: dict[int, list[int]] = {tp.partition: [] for tp in partitions}
        deadline, quiet_since = time.monotonic() + 60, time.monotonic()
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=200)
            for tp, records in batch.items():
                found[tp.partition] += [int(dict(r.headers)["ce_position"]) for r in records]
            if batch:
                quiet_since = time.monotonic()
            seen = {p for positions in found.values() for p in positions}
            quiet = time.monotonic() - quiet_since
            if quiet > 1.0 and expected <= seen or quiet > 5.0:
                break
        return found
    finally:
        consumer.close()


def _applied_by_a_consumer_from_the_start(by_partition: dict[int, list[int]]) -> list[int]:
    """herald/consumer.py's rule: in a partition, an event at or below the highest position applied
    so far is skipped."""
    applied = []
    for positions in by_partition.values():
        highest = 0
        for position in positions:
            if position > highest:
                applied.append(position)
                highest = position
    return sorted(applied)


def test_a_broker_that_restarts_empty_under_a_running_relay_gets_every_event_in_order(settings, tmp_path):
    with EmbeddedBroker(tmp_path / "broker", stop_timeout_s=1) as broker:
        settings = settings.model_copy(update={"kafka_bootstrap": broker.bootstrap})
        herald = Herald(settings, settings.database_url, broker.bootstrap)
        herald.resume_relays(herald.prepare())
        for ws in WORKSPACES:
            _handle(herald, ws, f"open-{ws}", cmd.OpenWorkspace(name=ws))
        writing, stop = threading.Event(), threading.Event()
        writing.set()
        threads = run_loops([herald.messaging.relay().run], stop)
        writer = threading.Thread(target=_keep_writing, args=(herald, writing), daemon=True)
        writer.start()
        try:
            _wait_until(lambda: _relayed(herald) > 100, "the relay published events before the outage")

            broker.stop()  # a lost broker: memory only, it comes back with no topics
            time.sleep(3)  # the outage lasts a while, and events keep being stored meanwhile
            broker.start()
            at_restart = herald.app.recorder.max_notification_id()
            _wait_until(lambda: _relayed(herald) > at_restart, "events stored after the restart were relayed")
            writing.clear()
            writer.join(timeout=10)
            last = herald.app.recorder.max_notification_id()
            _wait_until(lambda: _relayed(herald) >= last, "the relay caught up")

            stored = [n.id for n in herald.app.recorder.select_notifications(start=None, limit=1_000_000)]
            assert stored[-1] == last
            by_partition = _positions_by_partition(broker.bootstrap, settings.events_topic, set(stored))
            on_topic = {p for positions in by_partition.values() for p in positions}
            assert sorted(set(stored) - on_topic) == [], "every stored event is on the events topic"
            assert on_topic <= set(stored), "nothing else is"
            # Duplicates may follow (a batch cut short by the outage is sent again), but a consumer
            # reading from the start of each partition applies every stored event, exactly once.
            assert _applied_by_a_consumer_from_the_start(by_partition) == stored
        finally:
            writing.clear()
            stop.set()
            for thread in threads:
                thread.join(timeout=20)
            herald.close()


def test_sends_cut_off_by_the_loss_do_not_land_ahead_of_the_history(settings, tmp_path):
    """The broker dies just as the relay sends a batch: those sends must not reach the new broker
    before the republished history."""
    with EmbeddedBroker(tmp_path / "broker", stop_timeout_s=0) as broker:
        settings = settings.model_copy(update={"kafka_bootstrap": broker.bootstrap})
        herald = Herald(settings, settings.database_url, broker.bootstrap)
        herald.resume_relays(herald.prepare())
        for ws in WORKSPACES:
            _handle(herald, ws, f"open-{ws}", cmd.OpenWorkspace(name=ws))
        relay = herald.messaging.relay()
        while relay.relay_once():
            pass
        for ws in WORKSPACES:
            _handle(herald, ws, f"grant-{ws}", cmd.GrantCredits(amount=1))
        last = herald.app.recorder.max_notification_id()

        killed, send = threading.Event(), relay.producer.send  # this producer already knows the topic

        def send_after_the_broker_died(*args, **kwargs):
            if not killed.is_set():
                broker.stop()
                killed.set()
            return send(*args, **kwargs)

        relay.producer.send = send_after_the_broker_died
        stop = threading.Event()
        threads = run_loops([relay.run], stop)
        try:
            assert killed.wait(30)
            time.sleep(3)  # the outage lasts a while
            broker.start()
            _wait_until(lambda: _relayed(herald) >= last, "the relay caught up")

            stored = [n.id for n in herald.app.recorder.select_notifications(start=None, limit=1_000_000)]
            by_partition = _positions_by_partition(broker.bootstrap, settings.events_topic, set(stored))
            assert _applied_by_a_consumer_from_the_start(by_partition) == stored
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=20)
            herald.close()
