"""An event a consumer could not apply is parked; replayed after the fix, that consumer applies
it exactly once, and a second replay changes nothing."""

from __future__ import annotations

import time

import pytest

from herald.messaging.dead_letters import list_dead_letters, replay_dead_letter
from herald.runtime.wiring import Herald
from schemas import commands as cmd
from tests.support import decide, query_all, query_one, running, wait_until

pytestmark = pytest.mark.integration


def _applied(herald: Herald) -> list[str]:
    return [r[0] for r in query_all(herald, "SELECT type FROM replay_probe ORDER BY type")]


def test_a_replayed_event_is_applied_once_by_the_consumer_that_parked_it(herald, settings):
    with herald.pool.connection() as conn:
        conn.execute("CREATE TABLE replay_probe (type text PRIMARY KEY)")
    broken = {"herald.wallet.opened.v1"}

    def probe(conn, event):
        if event.type in broken:
            raise RuntimeError("cannot apply this yet")
        conn.execute("INSERT INTO replay_probe VALUES (%s)", (event.type,))
        return []

    with running([herald.relay().run, herald.event_consumer("probe", probe).run]):
        decide(herald.app, "ws-r", "open", cmd.OpenWorkspace(name="R"))
        wait_until(lambda: "herald.command.accepted.v1" in _applied(herald), "the probe applied the events", timeout=40)
        [parked] = [d for d in list_dead_letters(settings.kafka_bootstrap, settings.dlq_topic) if d.consumer == "probe"]
        assert "cannot apply this yet" in parked.cause
        assert "herald.wallet.opened.v1" not in _applied(herald)

        broken.clear()  # the fix
        replay_dead_letter(settings.kafka_bootstrap, settings.dlq_topic, parked.id, herald.producer)
        wait_until(lambda: "herald.wallet.opened.v1" in _applied(herald), "the replayed event was applied", timeout=40)
        replay_dead_letter(settings.kafka_bootstrap, settings.dlq_topic, parked.id, herald.producer)
        time.sleep(2)
        replays = query_one(herald, "SELECT count(*) FROM consumer_replays WHERE consumer = 'probe'")
        assert replays == 1, "the second replay was recognised and skipped"
        # replay_probe's primary key would have parked a second application as a new dead letter
        assert len([d for d in list_dead_letters(settings.kafka_bootstrap, settings.dlq_topic)
                    if d.consumer == "probe"]) == 1
