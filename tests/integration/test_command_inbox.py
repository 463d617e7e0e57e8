"""Accepted means kept: a command answered 202 survives the memory-only broker restarting
before the handler read it."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from domain.wallet import Wallet
from herald.storage.embedded import EmbeddedBroker
from herald.runtime.wiring import Herald, run_loops

pytestmark = pytest.mark.integration


def _inbox(herald: Herald) -> list[tuple]:
    with herald.pool.connection() as conn:
        return conn.execute("SELECT command_id, relayed_at IS NOT NULL, decided_at IS NOT NULL FROM command_inbox").fetchall()


def test_a_202_command_survives_a_broker_restart_before_the_handler(settings, tmp_path):
    with EmbeddedBroker(tmp_path / "broker") as broker:
        settings = settings.model_copy(update={"kafka_bootstrap": broker.bootstrap})
        herald = Herald(settings, settings.database_url, broker.bootstrap)
        herald.resume_relays(herald.prepare())
        http = TestClient(herald.gateway())
        opened = http.post("/v1/workspaces", json={"name": "Kept"}, headers={"Authorization": "Bearer test-admin-key"})
        assert opened.status_code == 201, opened.text
        ws, key = opened.json()["workspace_id"], opened.json()["api_key"]
        envelope = {
            "command_id": "grant-7",
            "type": "grant_credits.v1",
            "workspace_id": ws,
            "issued_at": datetime.now(UTC).isoformat(),
            "issued_by": "billing",
            "payload": {"amount": 7},
        }
        accepted = http.post("/v1/commands", json=envelope, headers={"Authorization": f"Bearer {key}"})
        assert accepted.status_code == 202, accepted.text
        assert _inbox(herald) == [("grant-7", False, False)], "kept in PostgreSQL before the 202"

        assert herald.inbox_relay().relay_once() == 1  # now only in the broker, not yet handled
        assert _inbox(herald) == [("grant-7", True, False)]
        herald.close()

        broker.restart()  # the commands topic and the command in it are gone

        herald = Herald(settings, settings.database_url, broker.bootstrap)
        herald.resume_relays(herald.prepare())
        stop = threading.Event()
        threads = run_loops(herald.loops("relay") + herald.loops("handler"), stop)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and herald.app.find(Wallet, ws).available != 7:
                time.sleep(0.2)
            assert herald.app.find(Wallet, ws).available == 7, "the accepted command was applied after the restart"
            while time.monotonic() < deadline and _inbox(herald) != [("grant-7", True, True)]:
                time.sleep(0.2)
            assert _inbox(herald) == [("grant-7", True, True)]
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=20)
            herald.close()
