"""Dead letters on the real broker: the handler parks an unparseable command and goes on;
listing shows it with its cause; replaying sends it back to the commands topic; the CLI and
the gateway's admin endpoints do the same."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from domain.workspace import Workspace
from gateway.app import GatewayDeps, create_app
from herald.messaging import kafka_io
from herald.cli import cli
from herald.messaging.consumer import dead_letter, produce_commands
from herald.messaging.dead_letters import UnknownDeadLetter, list_dead_letters, replay_dead_letter
from herald.runtime.wiring import Herald
from schemas import commands as cmd
from tests.support import ADMIN_KEY, bearer, envelope, read_topic, running, wait_until

pytestmark = pytest.mark.integration

ADMIN = bearer(ADMIN_KEY)
GARBAGE = b'{"this is": not json'


@pytest.fixture
def herald(heralds):
    return heralds.start(resume_relays=False)


def _replayed_copies(bootstrap: str, topic: str, dead_letter_id: str) -> list:
    return [r for r in read_topic(bootstrap, topic)
            if (("herald_replayed_from", dead_letter_id.encode()) in (r.headers or []))]


def _park(herald: Herald, value: bytes = GARBAGE, cause: str = "unparseable command: boom") -> str:
    """Dead-letter a message as the handler would (no handler loop needed); returns its id."""
    s = herald.settings
    record = SimpleNamespace(topic=s.commands_topic, partition=2, offset=41, key=b"ws-x", value=value)
    before = {d.id for d in list_dead_letters(s.kafka_bootstrap, s.dlq_topic)}
    dead_letter(herald.producer, s.dlq_topic, record, "handler", cause)
    (new,) = [d.id for d in list_dead_letters(s.kafka_bootstrap, s.dlq_topic) if d.id not in before]
    return new


def test_handler_dead_letters_and_goes_on_then_list_and_replay(herald, settings):
    s = settings
    producer = kafka_io.make_producer(s.kafka_bootstrap)
    try:
        producer.send(s.commands_topic, key=b"ws-dlq", value=GARBAGE).get(timeout=30)
        produce_commands(producer, s.commands_topic, [envelope(cmd.OpenWorkspace(name="After the garbage"),
                                                               workspace_id="ws-dlq", command_id="open-after")])
    finally:
        producer.close(timeout=5)

    with running([herald.command_handler().run]) as loops:

        def decided() -> bool:
            loops.assert_running()
            return herald.app.find(Workspace, "ws-dlq") is not None

        wait_until(decided, "the valid command after the dead letter was decided", timeout=30, interval=0.2)

    (found,) = list_dead_letters(s.kafka_bootstrap, s.dlq_topic)
    assert found.id == "0:0"
    assert found.consumer == "handler"
    assert found.cause.startswith("unparseable command:")
    assert found.source_topic == s.commands_topic and found.source_partition is not None
    assert found.source_offset is not None and found.source_offset >= 0
    assert found.key == "ws-dlq" and found.value == GARBAGE.decode()
    assert found.timestamp is not None and abs((datetime.now(UTC) - found.timestamp).total_seconds()) < 120
    assert json.dumps(found.to_dict())  # JSON-safe
    assert list_dead_letters(s.kafka_bootstrap, s.dlq_topic, limit=0) == []

    replayed = replay_dead_letter(s.kafka_bootstrap, s.dlq_topic, found.id, herald.producer)
    assert replayed.id == found.id
    (copy,) = _replayed_copies(s.kafka_bootstrap, s.commands_topic, found.id)
    assert copy.key == b"ws-dlq" and copy.value == GARBAGE
    assert not [name for name, _ in copy.headers if name.startswith("herald_dlq_")]

    for unknown in ("0:999", "5:0", "nope", "1:2:3", "-1:0"):
        with pytest.raises(UnknownDeadLetter):
            replay_dead_letter(s.kafka_bootstrap, s.dlq_topic, unknown, herald.producer)


def test_cli_lists_and_replays(herald, settings):
    s = settings
    dead_id = _park(herald)
    runner = CliRunner()
    env = {"HERALD_KAFKA_BOOTSTRAP": s.kafka_bootstrap, "HERALD_TOPIC_PREFIX": s.topic_prefix}

    table = runner.invoke(cli, ["dlq", "list"], env=env)
    assert table.exit_code == 0, table.output
    assert "CONSUMER" in table.output and dead_id in table.output and "unparseable command: boom" in table.output
    assert f"{s.commands_topic}[2]@41" in table.output

    as_json = runner.invoke(cli, ["dlq", "list", "--json", "--limit", "5"], env=env)
    assert as_json.exit_code == 0, as_json.output
    (entry,) = json.loads(as_json.output)
    assert entry["id"] == dead_id and entry["source_topic"] == s.commands_topic and entry["source_offset"] == 41

    replay = runner.invoke(cli, ["dlq", "replay", dead_id], env=env)
    assert replay.exit_code == 0, replay.output
    assert f"replayed {dead_id} to {s.commands_topic}" in replay.output
    assert len(_replayed_copies(s.kafka_bootstrap, s.commands_topic, dead_id)) == 1

    unknown = runner.invoke(cli, ["dlq", "replay", "0:999"], env=env)
    assert unknown.exit_code == 1 and "no dead letter" in unknown.output

    no_broker = runner.invoke(cli, ["dlq", "list"], env={**env, "HERALD_KAFKA_BOOTSTRAP": ""})
    assert no_broker.exit_code == 2 and "HERALD_KAFKA_BOOTSTRAP" in no_broker.output


def test_admin_endpoints(herald, api, settings):
    s, http = settings, api.http
    dead_id = _park(herald, cause="unparseable command: from the gateway test")
    _, service = api.open_workspace("ws-svc", name="svc")

    listed = http.get("/v1/admin/dead-letters", params={"limit": 10}, headers=ADMIN)
    assert listed.status_code == 200, listed.text
    (entry,) = listed.json()["dead_letters"]
    assert entry["id"] == dead_id and entry["cause"] == "unparseable command: from the gateway test"
    assert entry["consumer"] == "handler" and entry["value"] == GARBAGE.decode()

    for response in (http.get("/v1/admin/dead-letters", headers=service),
                     http.post(f"/v1/admin/dead-letters/{dead_id}/replay", headers=service)):
        assert response.status_code == 403, response.text
        assert response.json()["reason_code"] == "forbidden"
    assert http.get("/v1/admin/dead-letters").status_code == 401
    assert http.get("/v1/admin/dead-letters", params={"limit": 0}, headers=ADMIN).status_code == 422

    missing = http.post("/v1/admin/dead-letters/0:999/replay", headers=ADMIN)
    assert missing.status_code == 404 and missing.json()["reason_code"] == "unknown_dead_letter"
    assert missing.headers["content-type"] == "application/problem+json"

    replayed = http.post(f"/v1/admin/dead-letters/{dead_id}/replay", headers=ADMIN)
    assert replayed.status_code == 200, replayed.text
    assert replayed.json()["replayed"]["source_topic"] == s.commands_topic
    assert len(_replayed_copies(s.kafka_bootstrap, s.commands_topic, dead_id)) == 1

    unwired = create_app(GatewayDeps(app=herald.app, pool=herald.pool, submit_command=lambda _: None,
                                     admin_api_key=ADMIN_KEY))
    with TestClient(unwired) as http:
        response = http.get("/v1/admin/dead-letters", headers=ADMIN)
        assert response.status_code == 503 and response.json()["reason_code"] == "dead_letters_unavailable"
        assert http.post("/v1/admin/dead-letters/0:0/replay", headers=ADMIN).status_code == 503
