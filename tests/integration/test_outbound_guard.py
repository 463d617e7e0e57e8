"""A Mastodon account's ``instance_url`` is checked when Herald calls it, not only when it was
connected: a name that was fine then and resolves inside now (DNS rebinding, or a record the
client changed) fails the call clearly and sends nothing, at publish, at token refresh and at
the OAuth code exchange. Real PostgreSQL, broker and HTTP (the fake Mastodon on 127.0.0.1, which
the tests' ``outbound_allowed_networks`` let through); DNS is the one thing played
(``Herald.resolve``), so a name can be made to resolve to the fake and then elsewhere."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from herald.settings import OAuthClientSettings
from processors.accounts import vault
from processors.accounts.credentials import CredentialsError, connect_with_tokens
from schemas import commands as cmd
from tests.fakes.mastodon_server import FakeMastodon
from tests.support import decide, envelope, event_types, query_one, role_loops, running, wait_until

pytestmark = pytest.mark.integration

CLIENT = ("herald-test-client", "herald-test-secret")
REDIRECT = "https://app.example/oauth/done"
TOKEN = "guarded-token"
WS = "ws-guard"
ACCOUNT = f"{WS}-masto"
FAST = {"dispatch_interval_s": 0.1, "publish_lead_s": 1.0, "retry_delays_s": [1.0, 1.0, 1.0],
        "publish_maintain_every_s": 0.5,
        "oauth_clients": {"mastodon": OAuthClientSettings(client_id=CLIENT[0], client_secret=SecretStr(CLIENT[1]))}}
NAME = "mastodon.test"
METADATA = "169.254.169.254"


class Dns:
    def __init__(self) -> None:
        self.answers = {NAME: ["127.0.0.1"]}  # the fake Mastodon, allowed in tests as a public host would be

    def __call__(self, host: str, port: int) -> list[str]:
        if host not in self.answers:
            raise OSError(f"{host}: name or service not known")
        return self.answers[host]

    def rebind(self, *addresses: str) -> None:
        self.answers[NAME] = list(addresses)


@pytest.fixture
def mastodon():
    with FakeMastodon(valid_tokens={TOKEN}, oauth_client=CLIENT, redirect_uris=[REDIRECT]) as fake:
        yield fake


@pytest.fixture
def dns() -> Dns:
    return Dns()


@pytest.fixture
def herald(heralds, dns):
    herald = heralds.start(**FAST)
    herald.resolve = dns  # before any outgoing client is built
    return herald


def _instance(mastodon: FakeMastodon) -> str:
    return mastodon.base_url.replace("127.0.0.1", NAME)


def _admin(herald) -> dict[str, str]:
    return {"Authorization": f"Bearer {herald.admin_api_key}"}


@pytest.mark.parametrize("rebound_to", [METADATA, "::1", "10.0.0.5"])
def test_an_instance_url_rebound_inside_fails_the_destination_without_a_call(herald, mastodon, dns, rebound_to):
    with TestClient(herald.gateway()) as http:
        opened = http.post("/v1/workspaces", json={"workspace_id": WS, "name": WS, "tier": "business"},
                           headers=_admin(herald))
        key = {"Authorization": f"Bearer {opened.json()['api_key']}"}
        http.post(f"/v1/workspaces/{WS}/credits/grants", json={"amount": 5},
                  headers=_admin(herald)).raise_for_status()
        connected = http.post(f"/v1/workspaces/{WS}/social-accounts", headers=key, json={
            "social_account_id": ACCOUNT, "platform": "mastodon", "handle": "guard", "access_token": TOKEN,
            "instance_url": _instance(mastodon)})
        assert connected.status_code == 201, "a public-looking name passes the check at connect"
    dns.rebind(rebound_to)
    with running(role_loops(herald, "handler", "relay", "processors", "projections")):
        decide(herald.app, WS, "schedule", cmd.SchedulePost(
            post_id="p-guard", text="never sent", destinations=[ACCOUNT],
            publish_at=datetime.now(UTC) + timedelta(seconds=1.5)))
        wait_until(lambda: query_one(herald, "SELECT status FROM queue_destinations WHERE post_id = 'p-guard'")
                   == "failed", "the destination failed", timeout=40)
    reason = query_one(herald, "SELECT reason FROM queue_destinations WHERE post_id = 'p-guard'")
    assert "may not call" in reason and rebound_to in reason, reason
    types = event_types(herald)
    assert types["herald.post.attempt_started.v1"] == 1 and types["herald.post.retry_scheduled.v1"] == 0, \
        "refused for good: not retried"
    assert mastodon.requests == 0 and mastodon.received() == [], "the instance got nothing"


def test_a_token_refresh_at_a_rebound_instance_is_refused_without_a_call(herald, mastodon, dns):
    decide(herald.app, WS, "open", cmd.OpenWorkspace(name=WS, tier="business"))
    tokens = mastodon.issue_tokens(expires_in=3600)
    connect = cmd.ConnectSocialAccount(social_account_id=ACCOUNT, platform="mastodon", handle="guard",
                                       instance_url=_instance(mastodon))
    assert connect_with_tokens(herald.app, herald.credentials, envelope(connect, workspace_id=WS, command_id="c"),
                               access_token=tokens["access_token"], refresh_token=tokens["refresh_token"],
                               access_expires_at=datetime.now(UTC) + timedelta(hours=1)).accepted
    dns.rebind(METADATA)
    with pytest.raises(CredentialsError):  # the platform "refused" the token: Herald refreshes it
        herald.credentials.for_call(account_id=ACCOUNT, workspace_id=WS, platform="mastodon", handle="guard",
                                    instance_url=_instance(mastodon), refused=tokens["access_token"])
    assert mastodon.refreshes == [], "the token endpoint got nothing, the refresh token never left"
    with herald.pool.connection() as conn:
        row = vault.current(conn, ACCOUNT, WS)
    assert row is not None and row.status == "needs_reconnect" and row.reason == "destination_refused"


def test_an_oauth_code_exchange_at_a_rebound_instance_is_refused_without_a_call(herald, mastodon, dns):
    with TestClient(herald.gateway()) as http:
        opened = http.post("/v1/workspaces", json={"workspace_id": WS, "name": WS, "tier": "business"},
                           headers=_admin(herald))
        key = {"Authorization": f"Bearer {opened.json()['api_key']}"}
        started = http.post(f"/v1/workspaces/{WS}/social-accounts/oauth/start", headers=key, json={
            "platform": "mastodon", "redirect_uri": REDIRECT, "instance_url": _instance(mastodon)})
        assert started.status_code == 201, started.text
        # The user approves at the instance (the browser's DNS is not Herald's).
        approved = mastodon.approve(started.json()["authorization_url"].replace(NAME, "127.0.0.1"))
        dns.rebind(METADATA)
        answer = http.post(f"/v1/workspaces/{WS}/social-accounts/oauth/callback", headers=key,
                           json={"state": approved["state"], "code": approved["code"]})
    assert answer.status_code == 422 and answer.headers["content-type"] == "application/problem+json", answer.text
    problem = answer.json()
    assert problem["reason_code"] == "instance_url_not_allowed" and METADATA in problem["detail"], problem
    assert mastodon.code_exchanges == [], "the code never left Herald"
