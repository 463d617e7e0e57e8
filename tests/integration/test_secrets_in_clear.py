"""No platform token in clear on the generic command inlet: not in the command inbox, not on the
commands topic, not in a dead letter's listing or cause, nor in the gateway's log."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from types import SimpleNamespace

import psycopg
import pytest
from fastapi.testclient import TestClient

from herald.messaging import inbox
from herald.messaging.consumer import dead_letter
from herald.messaging.dead_letters import list_dead_letters
from herald.storage import db
from schemas.commands import CommandEnvelope
from tests.support import ADMIN_KEY, bearer, read_topic

pytestmark = pytest.mark.integration

TOKEN = "tok-5ecret-never-in-clear"
ADMIN = bearer(ADMIN_KEY)


def _connect(workspace_id: str, command_id: str = "connect-1") -> dict:
    return {"command_id": command_id, "type": "connect_social_account.v1", "workspace_id": workspace_id,
            "issued_at": datetime.now(UTC).isoformat(), "issued_by": "crm",
            "payload": {"platform": "mastodon", "handle": "acme", "access_token": TOKEN,
                        "instance_url": "https://mastodon.example"}}


@pytest.fixture
def herald(heralds):
    return heralds.start()


def _inbox_text(herald) -> str:
    with herald.pool.connection() as conn:
        return json.dumps([r[0] for r in conn.execute("SELECT envelope FROM command_inbox").fetchall()])


def test_the_generic_inlet_refuses_a_command_carrying_a_token(herald, caplog):
    caplog.set_level(logging.DEBUG)
    with TestClient(herald.gateway()) as http:
        opened = http.post("/v1/workspaces", json={"name": "A", "workspace_id": "a"}, headers=ADMIN).json()
        for key in (bearer(opened["api_key"]), ADMIN):
            refused = http.post("/v1/commands", json=_connect("a"), headers=key)
            assert refused.status_code == 422 and refused.json()["reason_code"] == "secret_not_accepted"
            assert TOKEN not in refused.text
        # The same command without a token is fine; the token goes to the endpoint that seals it.
        tokenless = _connect("a", "connect-2")
        del tokenless["payload"]["access_token"]
        assert http.post("/v1/commands", json=tokenless, headers=ADMIN).status_code == 202
        connected = http.post("/v1/workspaces/a/social-accounts", headers=ADMIN,
                              json={"platform": "sandbox", "handle": "b", "access_token": TOKEN})
        assert connected.status_code == 201 and TOKEN not in connected.text

    herald.inbox_relay().relay_once()
    assert TOKEN not in _inbox_text(herald)
    commands = read_topic(herald.kafka_bootstrap, herald.settings.commands_topic)
    assert commands and not any(TOKEN.encode() in (r.value or b"") for r in commands)
    assert TOKEN not in caplog.text


def test_the_inbox_keeps_no_token_even_when_asked_to(herald):
    with pytest.raises(ValueError, match="secret"):
        inbox.accept(herald.pool, CommandEnvelope.model_validate(_connect("a")))
    assert _inbox_text(herald) == "[]"


def test_a_token_kept_in_the_inbox_by_an_older_version_is_scrubbed_at_the_first_start(heralds, settings):
    db.apply_ddl(settings.database_url, inbox.DDL)
    with psycopg.connect(settings.database_url, autocommit=True) as conn:  # as the previous version wrote it
        conn.execute("INSERT INTO command_inbox (workspace_id, command_id, envelope) VALUES ('a', 'old', %s)",
                     (json.dumps(_connect("a", "old")),))
    herald = heralds.start()
    kept = _inbox_text(herald)
    assert TOKEN not in kept and '"handle": "acme"' in kept
    with herald.pool.connection() as conn:
        assert conn.execute("SELECT 1 FROM herald_upgrades WHERE name = 'inbox-secrets-scrubbed-v1'").fetchone()


def test_dead_letters_never_show_a_token(herald):
    s = herald.settings
    value = json.dumps(_connect("a")).encode()
    cause = f"invalid payload: 1 validation error ... input_value={{'access_token': '{TOKEN}', 'handle': 'acme'}}"
    record = SimpleNamespace(topic=s.commands_topic, partition=0, offset=7, key=b"a", value=value)
    dead_letter(herald.producer, s.dlq_topic, record, "handler", cause)

    [parked] = list_dead_letters(s.kafka_bootstrap, s.dlq_topic)
    assert TOKEN not in json.dumps(parked.to_dict())
    assert TOKEN not in parked.cause, "the cause header itself is stored redacted"
    assert parked.raw_value == value, "replay still sends the original message back"
    with TestClient(herald.gateway()) as http:
        listed = http.get("/v1/admin/dead-letters", headers=ADMIN)
    assert listed.status_code == 200 and listed.json()["dead_letters"]
    assert TOKEN not in listed.text and "[redacted]" in listed.text
