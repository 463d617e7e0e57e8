"""API keys: scopes, create/list/revoke/rotate, last use, and each decision attributed to its key."""

from __future__ import annotations

import logging
import time

import pytest

from domain.command import CommandRecord
from gateway import auth
from tests.integration.test_gateway import ADMIN, assert_problem
from tests.integration.test_gateway import gw  # noqa: F401 - the fixtures
from tests.support import bearer

pytestmark = pytest.mark.integration


@pytest.fixture
def ws(gw):
    """Workspace "a" with a sandbox account: (id, its workspace key header, account id)."""
    ws, key = gw.api.open_workspace("a", tier="pro")
    return ws, key, gw.api.connect(ws, key)


def _create(gw, headers, **body):
    return gw.http.post("/v1/api-keys", json=body, headers=headers)


def test_a_workspace_key_cannot_grant_its_workspace_credits(gw, ws):
    ws_id, key, _ = ws
    paying_itself = gw.http.post(f"/v1/workspaces/{ws_id}/credits/grants", json={"amount": 100}, headers=key)
    assert assert_problem(paying_itself, 403, "forbidden")["required_scope"] == "credits:grant"
    envelope = {"command_id": "c", "type": "grant_credits.v1", "workspace_id": ws_id, "issued_by": "me",
                "issued_at": "2030-01-01T00:00:00Z", "payload": {"amount": 100}}
    assert_problem(gw.http.post("/v1/commands", json=envelope, headers=key), 403, "forbidden")
    assert gw.get(f"/v1/workspaces/{ws_id}/wallet", headers=key).json()["granted"] == 0

    # A billing service's key, bound to no workspace, holding credits:grant only.
    billing = _create(gw, ADMIN, scopes=["credits:grant"], name="billing")
    assert billing.status_code == 201, billing.text
    billing_key = bearer(billing.json()["api_key"])
    granted = gw.http.post(f"/v1/workspaces/{ws_id}/credits/grants", json={"amount": 7}, headers=billing_key)
    assert granted.status_code == 201 and granted.json()["available"] == 7
    assert_problem(gw.get(f"/v1/workspaces/{ws_id}/wallet", headers=billing_key), 403, "forbidden")
    assert_problem(gw.api.schedule(ws_id, billing_key, ["x"]), 403, "forbidden")


def test_a_revoked_key_is_refused(gw, ws):
    ws_id, key, _ = ws
    made = _create(gw, key, scopes=["workspace:read"], name="dashboard").json()
    reader = bearer(made["api_key"])
    assert gw.get(f"/v1/workspaces/{ws_id}", headers=reader).status_code == 200
    revoked = gw.http.post(f"/v1/api-keys/{made['key_id']}/revoke", headers=key)
    assert revoked.status_code == 200 and revoked.json()["active"] is False and revoked.json()["revoked_at"]
    again = gw.get(f"/v1/workspaces/{ws_id}", headers=reader)
    assert assert_problem(again, 401, "unauthenticated")


def test_scopes_limit_what_a_key_may_do(gw, ws):
    ws_id, key, account = ws
    reader = bearer(_create(gw, key, scopes=["workspace:read"]).json()["api_key"])
    assert gw.get(f"/v1/workspaces/{ws_id}/queue", headers=reader).status_code == 200
    assert_problem(gw.api.schedule(ws_id, reader, [account]), 403, "forbidden")
    assert_problem(gw.http.post(f"/v1/workspaces/{ws_id}/social-accounts", headers=reader,
                                json={"platform": "sandbox", "handle": "b"}), 403, "forbidden")
    # A key gives no scope it lacks, and creates no key for another workspace.
    assert_problem(_create(gw, key, scopes=["credits:grant"]), 403, "forbidden")
    assert_problem(_create(gw, key, scopes=["admin"]), 403, "forbidden")
    gw.api.open_workspace("b")
    assert_problem(_create(gw, key, scopes=["workspace:read"], workspace_id="b"), 404, "unknown_workspace")
    assert_problem(_create(gw, reader, scopes=["workspace:read"]), 403, "forbidden")
    # Another workspace answers 404 before any scope is looked at.
    assert_problem(gw.get("/v1/workspaces/b/queue", headers=reader), 404, "unknown_workspace")


def test_keys_are_listed_without_secrets_and_with_their_last_use(gw, ws):
    ws_id, key, _ = ws
    made = _create(gw, key, scopes=["workspace:read"], name="dashboard").json()
    gw.get(f"/v1/workspaces/{ws_id}", headers=bearer(made["api_key"]))
    listed = gw.http.get("/v1/api-keys", headers=key)
    assert listed.status_code == 200, listed.text
    by_name = {k["name"]: k for k in listed.json()["api_keys"]}
    assert set(by_name) == {"workspace key", "dashboard"}
    assert by_name["dashboard"]["last_used_at"] is not None and by_name["dashboard"]["scopes"] == ["workspace:read"]
    assert by_name["workspace key"]["scopes"] == ["approver", "workspace:read", "workspace:write"]
    assert made["api_key"] not in listed.text and "sha256" not in listed.text
    with gw.pool.connection() as conn:
        stored = conn.execute("SELECT key_sha256 FROM gateway_api_keys WHERE key_id = %s", (made["key_id"],)).fetchone()
    assert stored == (auth.digest(made["api_key"]),), "only the hash is stored"

    _, other = gw.api.open_workspace("b")
    assert [k["workspace_id"] for k in gw.http.get("/v1/api-keys", headers=other).json()["api_keys"]] == ["b"]
    assert_problem(gw.http.post(f"/v1/api-keys/{made['key_id']}/revoke", headers=other), 404, "unknown_api_key")
    everything = gw.http.get("/v1/api-keys", headers=ADMIN).json()["api_keys"]
    assert {k["workspace_id"] for k in everything} == {"a", "b"}


def test_rotation_keeps_the_old_key_for_the_overlap_then_refuses_it(gw, ws):
    ws_id, key, _ = ws
    old = _create(gw, ADMIN, scopes=["workspace:read"], workspace_id=ws_id).json()
    rotated = gw.http.post(f"/v1/api-keys/{old['key_id']}/rotate", json={"overlap_s": 1}, headers=ADMIN)
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()
    assert new["scopes"] == ["workspace:read"] and new["workspace_id"] == ws_id and new["api_key"] != old["api_key"]
    assert gw.get(f"/v1/workspaces/{ws_id}", headers=bearer(old["api_key"])).status_code == 200, "overlap"
    assert gw.get(f"/v1/workspaces/{ws_id}", headers=bearer(new["api_key"])).status_code == 200
    time.sleep(1.2)
    assert_problem(gw.get(f"/v1/workspaces/{ws_id}", headers=bearer(old["api_key"])), 401, "unauthenticated")
    assert gw.get(f"/v1/workspaces/{ws_id}", headers=bearer(new["api_key"])).status_code == 200
    assert_problem(gw.http.post(f"/v1/api-keys/{old['key_id']}/rotate", headers=ADMIN), 409, "api_key_inactive")

    # A retried rotation (same Idempotency-Key) answers the same successor, without its key.
    headers = {**ADMIN, "Idempotency-Key": "rotate-1"}
    first = gw.http.post(f"/v1/api-keys/{new['key_id']}/rotate", headers=headers).json()
    second = gw.http.post(f"/v1/api-keys/{new['key_id']}/rotate", headers=headers).json()
    assert first["key_id"] == second["key_id"] and first["api_key"] and second["api_key"] is None


def test_every_decision_names_the_key_that_asked_for_it(gw, ws):
    ws_id, key, account = ws
    gw.api.grant(ws_id, key, 3)
    scheduled = gw.api.schedule(ws_id, key, [account])
    listed = gw.http.get("/v1/api-keys", headers=key).json()["api_keys"]
    [workspace_key] = [k["key_id"] for k in listed if k["name"] == "workspace key"]
    record = gw.app.find(CommandRecord, CommandRecord.key(ws_id, scheduled.json()["command_id"]))
    assert record.outcome.issued_by == f"api-key:{workspace_key}"
    rejected = gw.api.schedule(ws_id, key, ["nobody"])
    record = gw.app.find(CommandRecord, CommandRecord.key(ws_id, rejected.json()["command_id"]))
    assert record.outcome.reason_code == "unknown_social_account"
    assert record.outcome.issued_by == f"api-key:{workspace_key}"


def test_every_authenticated_request_is_logged_with_its_key_id(gw, ws, caplog):
    ws_id, key, _ = ws
    caplog.set_level(logging.INFO, logger="herald.audit")
    gw.get(f"/v1/workspaces/{ws_id}/queue", headers=key)
    gw.http.get("/v1/workspaces/nope/wallet", headers=key)
    gw.http.get(f"/v1/workspaces/{ws_id}/wallet", headers=bearer("hk_unknown"))
    listed = gw.http.get("/v1/api-keys", headers=key).json()["api_keys"]
    [workspace_key] = [k["key_id"] for k in listed if k["name"] == "workspace key"]
    lines = [r.getMessage() for r in caplog.records if r.name == "herald.audit"]
    assert f"key={workspace_key} GET /v1/workspaces/{ws_id}/queue 200" in lines
    assert f"key={workspace_key} GET /v1/workspaces/nope/wallet 404" in lines
    assert not any("hk_" in line for line in lines), "never a key in the log"
    assert len(lines) == 3, "the unauthenticated request is not attributed"
