"""The relays wake on NOTIFY: with a one-minute polling watchdog, a new event (or an accepted
command) still reaches its topic within seconds, also after the LISTEN connection was broken."""

from __future__ import annotations

import time

import pytest
from kafka import KafkaConsumer

from herald.messaging import inbox
from herald.runtime.wiring import Herald
from schemas import commands as cmd
from schemas.events import position_of
from tests.support import decide, envelope, query_one, running, topic_consumer, wait_until

pytestmark = pytest.mark.integration

WATCHDOG_S = 60.0
WITHIN_S = 15.0  # a generous bound for a functional check, well below the watchdog


@pytest.fixture
def herald(heralds) -> Herald:
    return heralds.start(relay_poll_interval_s=WATCHDOG_S)


def _store(herald: Herald, command_id: str) -> int:
    decide(herald.app, "ws-w", command_id, cmd.GrantCredits(amount=1))
    return herald.app.recorder.max_notification_id()


def _listener_pid(herald: Herald, channel: str) -> int | None:
    return query_one(herald, "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query = %s",
                     (f'LISTEN "{channel}"',))


def _reaches_topic(consumer: KafkaConsumer, position: int) -> None:
    deadline = time.monotonic() + WITHIN_S
    while time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=200).values():
            if any(position_of(r.value) == position for r in records):
                return
    raise AssertionError(f"event {position} not on the topic within {WITHIN_S}s (watchdog {WATCHDOG_S}s)")


def test_a_new_event_wakes_the_relay_long_before_its_watchdog(herald):
    decide(herald.app, "ws-w", "open", cmd.OpenWorkspace(name="W"))
    consumer = topic_consumer(herald.kafka_bootstrap, herald.settings.events_topic)
    channel = herald.app.recorder.channel_name
    try:
        with running([herald.relay().run]):
            wait_until(lambda: _listener_pid(herald, channel) is not None, "the relay listens", timeout=WITHIN_S,
                       interval=0.05)
            # The first event may be picked up by the pass the relay makes right after it started
            # listening; once it is out, only a notification (or the watchdog) wakes the relay.
            _reaches_topic(consumer, _store(herald, "grant-1"))
            _reaches_topic(consumer, _store(herald, "grant-2"))

            first_listener = _listener_pid(herald, channel)
            with herald.pool.connection() as conn:
                conn.execute("SELECT pg_terminate_backend(%s)", (first_listener,))
            wait_until(lambda: _listener_pid(herald, channel) not in (None, first_listener), "the relay listens again",
                       timeout=WITHIN_S, interval=0.05)
            _reaches_topic(consumer, _store(herald, "grant-3"))
            _reaches_topic(consumer, _store(herald, "grant-4"))
    finally:
        consumer.close()


def _relayed_from_inbox(herald: Herald, command_id: str) -> bool:
    return bool(query_one(herald, "SELECT relayed_at IS NOT NULL FROM command_inbox WHERE command_id = %s",
                          (command_id,)))


def test_an_accepted_command_wakes_the_inbox_relay_long_before_its_watchdog(herald):
    with running([herald.inbox_relay().run]):
        wait_until(lambda: _listener_pid(herald, inbox.CHANNEL) is not None, "the inbox relay listens",
                   timeout=WITHIN_S, interval=0.05)
        for command_id in ("c-1", "c-2"):  # c-1 may go with the pass right after LISTEN; c-2 needs the NOTIFY
            inbox.accept(herald.pool, envelope(cmd.GrantCredits(amount=1), workspace_id="ws-i", command_id=command_id))
            wait_until(lambda c=command_id: _relayed_from_inbox(herald, c), f"{command_id} produced", timeout=WITHIN_S,
                       interval=0.05)
