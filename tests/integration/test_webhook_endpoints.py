"""Webhook endpoints per workspace: register (secret once, sealed at rest, URL checked), list,
rotate with overlap, test-send to a real receiver that verifies with the reference library, delete."""

from __future__ import annotations

import pytest
from standardwebhooks.webhooks import Webhook

from herald.storage import db
from processors.notifications import deliveries, webhooks
from tests.fakes.webhook_server import FakeReceiver
from tests.integration.test_gateway import ADMIN, assert_problem
from tests.integration.test_gateway import gw  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration


@pytest.fixture
def hooks(gw, database_url):
    db.apply_ddl(database_url, webhooks.DDL, deliveries.DDL)
    gw.deps.outbound_allowed_networks = ("127.0.0.1/32",)  # the receiver listens on loopback
    ws, key = gw.api.open_workspace("a", tier="pro")
    return gw, ws, key


@pytest.fixture
def receiver():
    with FakeReceiver(secret="whsec_" + "A" * 44) as server:
        yield server


def _register(gw, ws, key, url):
    return gw.http.post(f"/v1/workspaces/{ws}/webhooks", json={"url": url, "description": "ops"}, headers=key)


def test_the_secret_is_shown_once_and_stored_sealed(hooks, receiver):
    gw, ws, key = hooks
    made = _register(gw, ws, key, receiver.url())
    assert made.status_code == 201, made.text
    secret = made.json()["secret"]
    assert secret.startswith("whsec_") and len(webhooks.secret_key(secret)) == 32
    listed = gw.http.get(f"/v1/workspaces/{ws}/webhooks", headers=key).json()
    assert [e["endpoint_id"] for e in listed] == [made.json()["endpoint_id"]]
    assert "secret" not in listed[0] and secret not in str(listed)
    with gw.pool.connection() as conn:
        stored = conn.execute("SELECT sealed_secret FROM webhook_endpoints").fetchone()[0]
    assert secret not in stored and secret.removeprefix("whsec_") not in stored
    assert gw.deps.credentials.cipher.unseal(stored) == secret


@pytest.mark.parametrize("url", ["http://localhost/hook", "http://10.0.0.5/hook", "http://169.254.169.254/latest",
                                 "ftp://example.com/x", "https://user:pw@example.com/hook", "not a url"])
def test_an_internal_or_odd_url_is_refused_at_registration(hooks, url):
    gw, ws, key = hooks
    gw.deps.outbound_allowed_networks = ()
    assert_problem(_register(gw, ws, key, url), 422, "url_not_allowed")
    assert gw.http.get(f"/v1/workspaces/{ws}/webhooks", headers=key).json() == []


def test_test_send_is_signed_and_verified_by_the_reference_library(hooks, receiver):
    gw, ws, key = hooks
    made = _register(gw, ws, key, receiver.url()).json()
    receiver.verifier = Webhook(made["secret"])
    sent = gw.http.post(f"/v1/workspaces/{ws}/webhooks/{made['endpoint_id']}/test", headers=key)
    assert sent.status_code == 200, sent.text
    assert sent.json()["delivered"] is True and sent.json()["status_code"] == 200
    assert receiver.violations == []
    assert [d["id"] for d in receiver.deliveries] == [sent.json()["webhook_id"]]
    assert receiver.deliveries[0]["envelope"]["type"] == "webhook.test"


def test_a_rotated_secret_overlaps_then_replaces_the_old_one(hooks, receiver):
    gw, ws, key = hooks
    made = _register(gw, ws, key, receiver.url()).json()
    path = f"/v1/workspaces/{ws}/webhooks/{made['endpoint_id']}"
    rotated = gw.http.post(f"{path}/rotate-secret", json={"overlap_s": 3600}, headers=key)
    assert rotated.status_code == 200 and rotated.json()["secret"] != made["secret"]
    for secret in (made["secret"], rotated.json()["secret"]):  # a receiver on either secret accepts
        receiver.verifier = Webhook(secret)
        assert gw.http.post(f"{path}/test", headers=key).json()["delivered"] is True
    again = gw.http.post(f"{path}/rotate-secret", json={"overlap_s": 0}, headers=key).json()
    receiver.verifier = Webhook(rotated.json()["secret"])  # replaced without overlap: no longer signs
    refused = gw.http.post(f"{path}/test", headers=key).json()
    assert refused["delivered"] is False and refused["status_code"] == 401
    receiver.verifier = Webhook(again["secret"])
    assert gw.http.post(f"{path}/test", headers=key).json()["delivered"] is True
    assert receiver.violations == []


def test_a_receiver_failure_is_reported_by_test_send(hooks, receiver):
    gw, ws, key = hooks
    made = _register(gw, ws, key, receiver.url()).json()
    receiver.verifier = Webhook(made["secret"])
    receiver.fail_next("deliver", 500)
    sent = gw.http.post(f"/v1/workspaces/{ws}/webhooks/{made['endpoint_id']}/test", headers=key).json()
    assert sent["delivered"] is False and sent["status_code"] == 500 and sent["error"] == "HTTP 500"


def test_delete_and_another_workspace_sees_nothing(hooks, receiver):
    gw, ws, key = hooks
    made = _register(gw, ws, key, receiver.url()).json()
    other, other_key = gw.api.open_workspace("b", tier="pro")
    path = f"/v1/workspaces/{other}/webhooks/{made['endpoint_id']}"
    assert_problem(gw.http.delete(path, headers=other_key), 404, "unknown_webhook_endpoint")
    assert_problem(gw.http.get(f"/v1/workspaces/{ws}/webhooks", headers=other_key), 404, "unknown_workspace")
    assert gw.http.delete(f"/v1/workspaces/{ws}/webhooks/{made['endpoint_id']}", headers=key).status_code == 204
    assert gw.http.get(f"/v1/workspaces/{ws}/webhooks", headers=ADMIN).json() == []
