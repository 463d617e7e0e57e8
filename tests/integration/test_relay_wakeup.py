"""The relays wake on NOTIFY: with a one-minute polling watchdog, a new event (or an accepted
command) still reaches its topic within seconds, also after the LISTEN connection was broken."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from kafka import KafkaConsumer, TopicPartition

from herald.messaging import inbox
from herald.runtime.wiring import Herald, run_loops
from schemas import commands as cmd

pytestmark = pytest.mark.integration

WATCHDOG_S = 60.0
WITHIN_S = 15.0  # a generous bound for a functional check, well below the watchdog


def _store(herald: Herald, command_id: str) -> int:
    herald.app.handle(cmd.CommandEnvelope.wrap(cmd.GrantCredits(amount=1), command_id=command_id, workspace_id="ws-w",
                                               issued_by="test", issued_at=datetime.now(UTC)))
    return herald.app.recorder.max_notification_id()


def _listener_pid(herald: Herald, channel: str) -> int | None:
    with herald.pool.connection() as conn:
        row = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                           " AND query = %s", (f'LISTEN "{channel}"',)).fetchone()
    return row[0] if row else None


def _wait_until(check, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.05)


def _reaches_topic(consumer: KafkaConsumer, position: int) -> None:
    deadline = time.monotonic() + WITHIN_S
    while time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=200).values():
            if any(int(dict(r.headers)["ce_position"]) == position for r in records):
                return
    raise AssertionError(f"event {position} not on the topic within {WITHIN_S}s (watchdog {WATCHDOG_S}s)")


def test_a_new_event_wakes_the_relay_long_before_its_watchdog(settings):
    settings = settings.model_copy(update={"relay_poll_interval_s": WATCHDOG_S})
    herald = Herald(settings, settings.database_url, settings.kafka_bootstrap)
    herald.resume_relays(herald.prepare())
    herald.app.handle(cmd.CommandEnvelope.wrap(cmd.OpenWorkspace(name="W"), command_id="open", workspace_id="ws-w",
                                               issued_by="test", issued_at=datetime.now(UTC)))
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None, enable_auto_commit=False)
    partitions = [TopicPartition(settings.events_topic, p) for p in consumer.partitions_for_topic(settings.events_topic)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    channel = herald.app.recorder.channel_name
    stop = threading.Event()
    threads = run_loops([herald.messaging.relay().run], stop)
    try:
        _wait_until(lambda: _listener_pid(herald, channel) is not None, "the relay listens", WITHIN_S)
        # The first event may be picked up by the pass the relay makes right after it started
        # listening; once it is out, only a notification (or the watchdog) wakes the relay.
        _reaches_topic(consumer, _store(herald, "grant-1"))
        _reaches_topic(consumer, _store(herald, "grant-2"))

        first_listener = _listener_pid(herald, channel)
        with herald.pool.connection() as conn:
            conn.execute("SELECT pg_terminate_backend(%s)", (first_listener,))
        _wait_until(lambda: _listener_pid(herald, channel) not in (None, first_listener), "the relay listens again",
                    WITHIN_S)
        _reaches_topic(consumer, _store(herald, "grant-3"))
        _reaches_topic(consumer, _store(herald, "grant-4"))
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=20)
        consumer.close()
        herald.close()


def _relayed_from_inbox(herald: Herald, command_id: str) -> bool:
    with herald.pool.connection() as conn:
        row = conn.execute("SELECT relayed_at IS NOT NULL FROM command_inbox WHERE command_id = %s",
                           (command_id,)).fetchone()
    return bool(row and row[0])


def test_an_accepted_command_wakes_the_inbox_relay_long_before_its_watchdog(settings):
    settings = settings.model_copy(update={"relay_poll_interval_s": WATCHDOG_S})
    herald = Herald(settings, settings.database_url, settings.kafka_bootstrap)
    herald.resume_relays(herald.prepare())
    stop = threading.Event()
    threads = run_loops([herald.inbox_relay().run], stop)

    try:
        _wait_until(lambda: _listener_pid(herald, inbox.CHANNEL) is not None, "the inbox relay listens", WITHIN_S)
        for command_id in ("c-1", "c-2"):  # c-1 may go with the pass right after LISTEN; c-2 needs the NOTIFY
            inbox.accept(herald.pool, cmd.CommandEnvelope.wrap(
                cmd.GrantCredits(amount=1), command_id=command_id, workspace_id="ws-i", issued_by="test",
                issued_at=datetime.now(UTC)))
            _wait_until(lambda c=command_id: _relayed_from_inbox(herald, c), f"{command_id} produced", WITHIN_S)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=20)
        herald.close()
