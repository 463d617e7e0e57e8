"""The broker restarts empty while the relay runs: afterwards the events topic holds every stored
event, and a consumer reading it from the start applies each one (no event sits behind a later
position in its partition, where consumers would skip it)."""

from __future__ import annotations

import threading
import time
from collections import defaultdict

import pytest

from herald.runtime.wiring import Herald
from schemas import commands as cmd
from schemas.events import position_of
from tests.support import decide, query_one, read_topic, relay_everything, running, stored_notifications, wait_until

pytestmark = pytest.mark.integration

WORKSPACES = [f"ws-{n}" for n in range(6)]  # keys spread over the topic's partitions


def _open_workspaces(herald: Herald) -> None:
    for ws in WORKSPACES:
        decide(herald.app, ws, f"open-{ws}", cmd.OpenWorkspace(name=ws))


def _keep_writing(herald: Herald, writing: threading.Event) -> None:
    n = 0
    while writing.is_set():
        n += 1
        decide(herald.app, WORKSPACES[n % len(WORKSPACES)], f"grant-{n}", cmd.GrantCredits(amount=1))
        time.sleep(0.01)


def _relayed(herald: Herald) -> int:
    return query_one(herald, "SELECT position FROM relay_positions WHERE relay = 'events'") or 0


def _stored(herald: Herald) -> list[int]:
    return [n.id for n in stored_notifications(herald.app)]


def _positions_by_partition(bootstrap: str, topic: str, expected: set[int]) -> dict[int, list[int]]:
    """Every record's event position, per partition in offset order: read from the start until all
    expected positions arrived and then nothing more for a second, or nothing for five seconds."""
    records = read_topic(bootstrap, topic, idle_s=1.0, patience_s=5.0,
                         until=lambda got: expected <= {position_of(r.value) for r in got})
    found: dict[int, list[int]] = defaultdict(list)
    for r in records:
        found[r.partition].append(position_of(r.value))
    return found


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


def test_a_broker_that_restarts_empty_under_a_running_relay_gets_every_event_in_order(heralds):
    broker = heralds.own_broker(stop_timeout_s=1)
    herald = heralds.start(broker=broker)
    _open_workspaces(herald)
    writing = threading.Event()
    writing.set()
    with running([herald.relay().run]):
        writer = threading.Thread(target=_keep_writing, args=(herald, writing), daemon=True)
        writer.start()
        try:
            wait_until(lambda: _relayed(herald) > 100, "the relay published events before the outage")

            broker.stop()  # a lost broker: memory only, it comes back with no topics
            time.sleep(3)  # the outage lasts a while, and events keep being stored meanwhile
            broker.start()
            at_restart = herald.app.recorder.max_notification_id()
            wait_until(lambda: _relayed(herald) > at_restart, "events stored after the restart were relayed")
            writing.clear()
            writer.join(timeout=10)
            last = herald.app.recorder.max_notification_id()
            wait_until(lambda: _relayed(herald) >= last, "the relay caught up")

            stored = _stored(herald)
            assert stored[-1] == last
            by_partition = _positions_by_partition(broker.bootstrap, herald.settings.events_topic, set(stored))
            on_topic = {p for positions in by_partition.values() for p in positions}
            assert sorted(set(stored) - on_topic) == [], "every stored event is on the events topic"
            assert on_topic <= set(stored), "nothing else is"
            # Duplicates may follow (a batch cut short by the outage is sent again), but a consumer
            # reading from the start of each partition applies every stored event, exactly once.
            assert _applied_by_a_consumer_from_the_start(by_partition) == stored
        finally:
            writing.clear()


def test_sends_cut_off_by_the_loss_do_not_land_ahead_of_the_history(heralds):
    """The broker dies just as the relay sends a batch: those sends must not reach the new broker
    before the republished history."""
    broker = heralds.own_broker(stop_timeout_s=0)
    herald = heralds.start(broker=broker)
    _open_workspaces(herald)
    relay = relay_everything(herald.relay())
    for ws in WORKSPACES:
        decide(herald.app, ws, f"grant-{ws}", cmd.GrantCredits(amount=1))
    last = herald.app.recorder.max_notification_id()

    killed, send = threading.Event(), relay.producer.send  # this producer already knows the topic

    def send_after_the_broker_died(*args, **kwargs):
        if not killed.is_set():
            broker.stop()
            killed.set()
        return send(*args, **kwargs)

    relay.producer.send = send_after_the_broker_died
    with running([relay.run]):
        assert killed.wait(30)
        time.sleep(3)  # the outage lasts a while
        broker.start()
        wait_until(lambda: _relayed(herald) >= last, "the relay caught up")

        stored = _stored(herald)
        by_partition = _positions_by_partition(broker.bootstrap, herald.settings.events_topic, set(stored))
        assert _applied_by_a_consumer_from_the_start(by_partition) == stored
