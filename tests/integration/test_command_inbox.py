"""Accepted means kept: a command answered 202 survives the memory-only broker restarting
before the handler read it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from domain.wallet import Wallet
from herald.runtime.wiring import Herald
from tests.support import Api, close_herald, query_all, running, wait_until

pytestmark = pytest.mark.integration


def _inbox(herald: Herald) -> list[tuple]:
    return query_all(herald, "SELECT command_id, relayed_at IS NOT NULL, decided_at IS NOT NULL FROM command_inbox")


def test_a_202_command_survives_a_broker_restart_before_the_handler(heralds):
    broker = heralds.own_broker()
    herald = heralds.start(broker=broker)
    with TestClient(herald.gateway()) as http:
        api = Api(http)
        ws, _ = api.open_workspace(name="Kept")
        envelope = {
            "command_id": "grant-7",
            "type": "grant_credits.v1",
            "workspace_id": ws,
            "issued_at": datetime.now(UTC).isoformat(),
            "issued_by": "billing",
            "payload": {"amount": 7},
        }
        accepted = http.post("/v1/commands", json=envelope, headers=api.admin)  # granting needs the admin key
        assert accepted.status_code == 202, accepted.text
    assert _inbox(herald) == [("grant-7", False, False)], "kept in PostgreSQL before the 202"

    assert herald.inbox_relay().relay_once() == 1  # now only in the broker, not yet handled
    assert _inbox(herald) == [("grant-7", True, False)]
    close_herald(herald)

    broker.restart()  # the commands topic and the command in it are gone

    herald = heralds.start(broker=broker)
    with running(herald.loops("relay") + herald.loops("handler")):
        wait_until(lambda: herald.app.find(Wallet, ws).available == 7, "the accepted command was applied after the restart")
        wait_until(lambda: _inbox(herald) == [("grant-7", True, True)], "the inbox shows it relayed and decided")
