"""Connecting a social account through the platform's OAuth page: the gateway's oauth/start and
oauth/callback against the fake Mastodon's /oauth/authorize and /oauth/token (a real HTTP server),
on real PostgreSQL and broker. The account is connected through the connect endpoint's own code
path, its tokens sealed in the credentials store and nowhere in clear; a state works once, in time,
in its own workspace; a code the platform refuses (a wrong PKCE verifier) answers 422."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from psycopg import sql
from pydantic import SecretStr

from domain.account import SocialAccount
from herald.settings import OAuthClientSettings
from processors.accounts import vault
from processors.platforms import oauth
from tests.fakes.mastodon_server import FakeMastodon
from tests.support import event_types, query_all, query_one, role_loops, running, wait_until

pytestmark = pytest.mark.integration

CLIENT = ("herald-test-client", "herald-test-secret")
REDIRECT = "https://app.example/oauth/done"
FAST = {"dispatch_interval_s": 0.1, "publish_lead_s": 1.0, "retry_delays_s": [1.0, 1.0, 1.0],
        "publish_maintain_every_s": 0.5,
        "oauth_clients": {"mastodon": OAuthClientSettings(client_id=CLIENT[0], client_secret=SecretStr(CLIENT[1]))}}
ROLES = ("handler", "relay", "processors", "projections")
PROBLEM = "application/problem+json"


@pytest.fixture
def mastodon():
    with FakeMastodon(valid_tokens=(), oauth_client=CLIENT, redirect_uris=[REDIRECT]) as fake:
        yield fake


class Client:
    """The gateway over HTTP (TestClient), with an admin-opened workspace or two."""

    def __init__(self, herald) -> None:
        self.herald = herald
        self.http = TestClient(herald.gateway())
        self.admin = {"Authorization": f"Bearer {herald.admin_api_key}"}

    def open(self, ws: str) -> dict[str, str]:
        opened = self.http.post("/v1/workspaces", json={"workspace_id": ws, "name": ws, "tier": "business"},
                                headers=self.admin)
        assert opened.status_code == 201, opened.text
        return {"Authorization": f"Bearer {opened.json()['api_key']}"}

    def start(self, ws: str, key: dict, **body):
        return self.http.post(f"/v1/workspaces/{ws}/social-accounts/oauth/start", headers=key,
                              json={"platform": "mastodon", "redirect_uri": REDIRECT, **body})

    def callback(self, ws: str, key: dict, state: str, code: str):
        return self.http.post(f"/v1/workspaces/{ws}/social-accounts/oauth/callback", headers=key,
                              json={"state": state, "code": code})


@pytest.fixture
def gw(heralds):
    client = Client(heralds.start(**FAST))
    yield client
    client.http.close()


def _problem(response, status: int, reason_code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["reason_code"] == reason_code, body
    return body


def _started(gw: Client, ws: str, key: dict, mastodon: FakeMastodon, **body) -> dict:
    started = gw.start(ws, key, instance_url=mastodon.base_url, **body)
    assert started.status_code == 201, started.text
    return started.json()


def test_start_authorize_callback_connects_the_account_with_sealed_tokens_and_it_publishes(gw, mastodon):
    key = gw.open("ws-a")
    gw.http.post("/v1/workspaces/ws-a/credits/grants", json={"amount": 5}, headers=gw.admin).raise_for_status()
    started = _started(gw, "ws-a", key, mastodon, social_account_id="ws-a-masto")

    url = urlsplit(started["authorization_url"])
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{mastodon.base_url}/oauth/authorize"
    assert query["client_id"] == CLIENT[0] and query["redirect_uri"] == REDIRECT
    assert query["state"] == started["state"] and query["response_type"] == "code"
    assert query["scope"] == "write:statuses write:media read:accounts"
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert CLIENT[1] not in started["authorization_url"], "the client secret never leaves Herald"
    expires_at = datetime.fromisoformat(started["expires_at"])
    assert timedelta(minutes=9) < expires_at - datetime.now(UTC) <= timedelta(minutes=10)

    # What Herald keeps meanwhile: the state's digest and the verifier sealed, matching the challenge.
    (digest, sealed_verifier), = query_all(gw.herald, "SELECT state_sha256, sealed_code_verifier"
                                                      " FROM oauth_authorizations")
    verifier = gw.herald.cipher.unseal(sealed_verifier)
    assert oauth.s256_challenge(verifier) == query["code_challenge"] and digest != started["state"]

    approved = mastodon.approve(started["authorization_url"], username="alice")
    assert approved["state"] == started["state"]
    answer = gw.callback("ws-a", key, approved["state"], approved["code"])
    assert answer.status_code == 201, answer.text
    connected = answer.json()
    assert connected["social_account_id"] == "ws-a-masto" and connected["platform"] == "mastodon"
    assert connected["handle"] == "alice@127.0.0.1", "asked of the platform: no handle was given"
    assert connected["instance_url"] == mastodon.base_url

    (exchange,) = mastodon.code_exchanges
    assert exchange["http_status"] == 200 and exchange["with_verifier"]
    access_token = exchange["access_token"]
    with gw.herald.pool.connection() as conn:
        row = vault.current(conn, "ws-a-masto", "ws-a")
    assert row is not None and gw.herald.cipher.unseal(row.sealed_access_token) == access_token
    refresh_token = gw.herald.cipher.unseal(row.sealed_refresh_token)
    assert gw.herald.app.find(SocialAccount, "ws-a-masto").credential_version == row.version
    assert access_token not in answer.text and refresh_token not in answer.text

    # Publishing with those tokens.
    with running(role_loops(gw.herald, *ROLES)):
        due = (datetime.now(UTC) + timedelta(seconds=1.5)).isoformat()
        scheduled = gw.http.post("/v1/workspaces/ws-a/posts", headers=key,
                                 json={"text": "via oauth", "destinations": ["ws-a-masto"], "publish_at": due})
        assert scheduled.status_code == 201, scheduled.text
        wait_until(lambda: mastodon.count_for("via oauth") == 1 and event_types(gw.herald)[
            "herald.wallet.hold_consumed.v1"] == 1, "published and settled", timeout=40)
    assert [s["token"] for s in mastodon.statuses] == [access_token]

    # No secret in clear in any table: tokens, verifier, state, client secret (text or bytes).
    secrets = {access_token, refresh_token, verifier, started["state"], approved["code"], CLIENT[1]}
    tables = query_all(gw.herald, "SELECT table_schema, table_name FROM information_schema.tables"
                                  " WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog',"
                                  " 'information_schema')")
    assert len(tables) > 10
    with gw.herald.pool.connection() as conn:
        for schema, table in tables:
            rows = conn.execute(sql.SQL("SELECT t::text FROM {}.{} t").format(
                sql.Identifier(schema), sql.Identifier(table))).fetchall()
            text = "\n".join(r[0] for r in rows)
            leaked = [s for s in secrets if s in text or s.encode().hex() in text]
            assert not leaked, f"{schema}.{table} holds a secret in clear"


def test_a_state_works_once(gw, mastodon):
    key = gw.open("ws-a")
    started = _started(gw, "ws-a", key, mastodon, handle="once")
    approved = mastodon.approve(started["authorization_url"])
    assert gw.callback("ws-a", key, approved["state"], approved["code"]).status_code == 201
    again = gw.callback("ws-a", key, approved["state"], approved["code"])
    _problem(again, 410, "oauth_state_used")
    assert len(mastodon.code_exchanges) == 1, "a replayed callback never reaches the platform"
    assert query_one(gw.herald, "SELECT count(*) FROM account_credentials") == 1


def test_an_expired_state_is_refused(gw, mastodon):
    key = gw.open("ws-a")
    started = _started(gw, "ws-a", key, mastodon, handle="late")
    approved = mastodon.approve(started["authorization_url"])
    with gw.herald.pool.connection() as conn:  # ten minutes later
        conn.execute("UPDATE oauth_authorizations SET expires_at = now() - interval '1 second'")
    _problem(gw.callback("ws-a", key, approved["state"], approved["code"]), 410, "oauth_state_expired")
    assert mastodon.code_exchanges == [] and query_one(gw.herald, "SELECT count(*) FROM account_credentials") == 0


def test_a_wrong_pkce_verifier_is_refused_by_the_platform_and_nothing_is_connected(gw, mastodon):
    key = gw.open("ws-a")
    started = _started(gw, "ws-a", key, mastodon, handle="wrong", social_account_id="ws-a-wrong")
    approved = mastodon.approve(started["authorization_url"])
    with gw.herald.pool.connection() as conn:  # the verifier Herald will present is not the challenged one
        conn.execute("UPDATE oauth_authorizations SET sealed_code_verifier = %s",
                     (gw.herald.cipher.seal(oauth.new_pkce().verifier),))
    body = _problem(gw.callback("ws-a", key, approved["state"], approved["code"]), 422, "oauth_code_refused")
    assert body["platform_error"] == "invalid_grant" and "invalid" in body["platform_error_description"]
    (exchange,) = mastodon.code_exchanges
    assert exchange["http_status"] == 400 and exchange["with_verifier"]
    assert query_one(gw.herald, "SELECT count(*) FROM account_credentials") == 0
    assert gw.herald.app.find(SocialAccount, "ws-a-wrong") is None


def test_another_workspace_cannot_complete_or_spend_a_state(gw, mastodon):
    key_a, key_b = gw.open("ws-a"), gw.open("ws-b")
    started = _started(gw, "ws-a", key_a, mastodon, handle="mine")
    approved = mastodon.approve(started["authorization_url"])
    # B's key on A's path: A does not exist for it.
    _problem(gw.callback("ws-a", key_b, approved["state"], approved["code"]), 404, "unknown_workspace")
    # B's key on B's path with A's state: no such authorization in B, and A's is not spent.
    _problem(gw.callback("ws-b", key_b, approved["state"], approved["code"]), 400, "oauth_state_unknown")
    assert mastodon.code_exchanges == []
    answer = gw.callback("ws-a", key_a, approved["state"], approved["code"])
    assert answer.status_code == 201, answer.text
    assert query_all(gw.herald, "SELECT workspace_id FROM account_credentials") == [("ws-a",)]


def test_refusals_before_the_platform_is_asked(gw, mastodon):
    key = gw.open("ws-a")
    _problem(gw.start("ws-a", key, platform="sandbox"), 422, "oauth_not_supported")
    _problem(gw.start("ws-a", key, redirect_uri="not a uri", instance_url=mastodon.base_url), 422,
             "validation_error")
    _problem(gw.start("ws-a", key), 422, "instance_url_required")  # no instance and no default one
    _problem(gw.callback("ws-a", key, "never-issued", "code"), 400, "oauth_state_unknown")
    assert query_one(gw.herald, "SELECT count(*) FROM oauth_authorizations") == 0


def test_a_platform_without_a_configured_client_is_a_configuration_error(heralds, mastodon):
    gw = Client(heralds.start(**{**FAST, "oauth_clients": {}}))
    with gw.http:
        key = gw.open("ws-a")
        body = _problem(gw.start("ws-a", key, instance_url=mastodon.base_url), 503, "oauth_not_configured")
    assert "mastodon" in body["detail"]


def test_a_token_endpoint_outage_answers_503_and_an_injected_refusal_422(gw, mastodon):
    key = gw.open("ws-a")
    mastodon.fail_code_next(1, error="server_error", status=503)
    started = _started(gw, "ws-a", key, mastodon, handle="outage")
    approved = mastodon.approve(started["authorization_url"])
    _problem(gw.callback("ws-a", key, approved["state"], approved["code"]), 503, "platform_unavailable")
    mastodon.fail_code_next(1, error="invalid_client", status=401)
    started = _started(gw, "ws-a", key, mastodon, handle="refused")
    approved = mastodon.approve(started["authorization_url"])
    body = _problem(gw.callback("ws-a", key, approved["state"], approved["code"]), 422, "oauth_code_refused")
    assert body["platform_error"] == "invalid_client"
    assert [e["http_status"] for e in mastodon.code_exchanges] == [503, 401]
    assert query_one(gw.herald, "SELECT count(*) FROM account_credentials") == 0


def test_a_client_registered_at_one_instance_is_used_there_and_reconnects_an_account(heralds, mastodon):
    client = OAuthClientSettings(client_id=CLIENT[0], client_secret=SecretStr(CLIENT[1]))
    gw = Client(heralds.start(**{**FAST, "oauth_clients": {f"mastodon@{mastodon.base_url}": client}}))
    with gw.http:
        key = gw.open("ws-a")
        for n in range(2):  # the second connect of the same account is a reconnect with new tokens
            started = _started(gw, "ws-a", key, mastodon, social_account_id="ws-a-inst", handle="inst")
            approved = mastodon.approve(started["authorization_url"])
            answer = gw.callback("ws-a", key, approved["state"], approved["code"])
            assert answer.status_code == 201, answer.text
            assert answer.json()["reconnected"] is (n == 1)
    issued = [e["access_token"] for e in mastodon.code_exchanges]
    assert len(issued) == 2 and all(issued)
    with gw.herald.pool.connection() as conn:
        row = vault.current(conn, "ws-a-inst", "ws-a")
    assert gw.herald.cipher.unseal(row.sealed_access_token) == issued[1]
    assert query_one(gw.herald, "SELECT count(*) FROM account_credentials") == 1, "the older tokens went"
