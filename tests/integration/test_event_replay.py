"""An event a consumer could not apply is parked; replayed after the fix, that consumer applies
it exactly once, and a second replay changes nothing."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest

from herald.messaging.dead_letters import list_dead_letters, replay_dead_letter
from herald.runtime.wiring import Herald, run_loops
from schemas import commands as cmd

pytestmark = pytest.mark.integration


def _applied(herald: Herald) -> list[str]:
    with herald.pool.connection() as conn:
        return [r[0] for r in conn.execute("SELECT type FROM replay_probe ORDER BY type").fetchall()]


def _wait(check, timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def test_a_replayed_event_is_applied_once_by_the_consumer_that_parked_it(settings):
    herald = Herald(settings, settings.database_url, settings.kafka_bootstrap)
    herald.resume_relays(herald.prepare())
    with herald.pool.connection() as conn:
        conn.execute("CREATE TABLE replay_probe (type text PRIMARY KEY)")
    broken = {"herald.wallet.opened.v1"}

    def probe(conn, event):
        if event.type in broken:
            raise RuntimeError("cannot apply this yet")
        conn.execute("INSERT INTO replay_probe VALUES (%s)", (event.type,))
        return []

    stop = threading.Event()
    threads = run_loops([herald.messaging.relay().run, herald.event_consumer("probe", probe).run], stop)
    try:
        herald.app.handle(cmd.CommandEnvelope.wrap(cmd.OpenWorkspace(name="R"), command_id="open", workspace_id="ws-r",
                                                   issued_by="t", issued_at=datetime.now(UTC)))
        _wait(lambda: "herald.command.accepted.v1" in _applied(herald))
        [parked] = [d for d in list_dead_letters(settings.kafka_bootstrap, settings.dlq_topic) if d.consumer == "probe"]
        assert "cannot apply this yet" in parked.cause
        assert "herald.wallet.opened.v1" not in _applied(herald)

        broken.clear()  # the fix
        replay_dead_letter(settings.kafka_bootstrap, settings.dlq_topic, parked.id, herald.producer)
        _wait(lambda: "herald.wallet.opened.v1" in _applied(herald))
        replay_dead_letter(settings.kafka_bootstrap, settings.dlq_topic, parked.id, herald.producer)
        time.sleep(2)
        with herald.pool.connection() as conn:
            replays = conn.execute("SELECT count(*) FROM consumer_replays WHERE consumer = 'probe'").fetchone()[0]
        assert replays == 1, "the second replay was recognised and skipped"
        # replay_probe's primary key would have parked a second application as a new dead letter
        assert len([d for d in list_dead_letters(settings.kafka_bootstrap, settings.dlq_topic)
                    if d.consumer == "probe"]) == 1
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=20)
        herald.close()
