"""Per-account settings and platform capabilities through the gateway, the domain, the read model
and the publishing journal, on a real PostgreSQL: GET /v1/platforms, connects refused without a
platform's required settings, settings on the connected event (never the token), replaced by a
reconnect that gives new ones, and carried to the attempt the engine calls the adapter with."""

from __future__ import annotations

import httpx
import pytest

from herald.messaging.relay import to_cloud_event
from herald.storage import db
from processors.commands import command_for
from processors.platforms.base import AdapterRegistry
from processors.platforms.facebook import FacebookAdapter
from processors.platforms.mastodon import MastodonAdapter
from processors.publishing import journal, publisher
from schemas import events as ev
from schemas.commands import ConnectSocialAccount, StartPublishAttempt
from tests.integration.test_gateway import Gateway, gw  # noqa: F401 - the gateway fixture

pytestmark = pytest.mark.integration

PAGE = {"page_id": "104000000000001"}


@pytest.fixture
def platforms_gw(database_url):
    gateway = Gateway(database_url)
    http = httpx.Client()
    gateway.deps.adapters = lambda: AdapterRegistry([MastodonAdapter(http), FacebookAdapter(http)])
    yield gateway
    gateway.close()
    http.close()


def connect(gw: Gateway, ws: str, key: dict, **body) -> httpx.Response:
    return gw.http.post(f"/v1/workspaces/{ws}/social-accounts",
                        json={"platform": "facebook", "handle": "Acme Page", "access_token": "page-token-1", **body},
                        headers=key)


def events_of(gw: Gateway, event_type: type) -> list[dict]:
    notifications = gw.app.recorder.select_notifications(start=1, limit=1_000_000)
    cloud = [to_cloud_event(gw.app, n) for n in notifications]
    return [e for e in cloud if e.type == event_type.type]


def test_platforms_lists_each_adapter_with_its_capabilities(platforms_gw):
    gw = platforms_gw
    _, key = gw.api.open_workspace("a")

    answer = gw.http.get("/v1/platforms", headers=key)

    assert answer.status_code == 200, answer.text
    by_name = {p["platform"]: p for p in answer.json()["platforms"]}
    assert sorted(by_name) == ["facebook", "mastodon"]
    facebook = by_name["facebook"]
    assert facebook["required_settings"] == ["page_id"] and facebook["reconcile"] == "lookup"
    assert facebook["max_length"] == 63_206 and facebook["media_kinds"] == ["gif", "image", "video"]
    assert facebook["rate_budgets"][0]["requests"] == 200 and facebook["rate_budgets"][0]["source"].startswith("https://")
    assert facebook["oauth"] is False and facebook["token_refresh"] is False
    mastodon = by_name["mastodon"]
    assert mastodon["reconcile"] == "idempotency_key" and mastodon["oauth"] is True and mastodon["max_length"] == 500
    assert gw.http.get("/v1/platforms").status_code == 401


def test_platforms_without_adapters_is_unavailable(gw):
    _, key = gw.api.open_workspace("a")

    answer = gw.http.get("/v1/platforms", headers=key)

    assert answer.status_code == 503 and answer.json()["reason_code"] == "platforms_unavailable"


def test_platforms_is_in_the_openapi_description(platforms_gw):
    spec = platforms_gw.http.get("/openapi.json").json()
    assert "/v1/platforms" in spec["paths"]
    assert "required_settings" in spec["components"]["schemas"]["PlatformView"]["properties"]


def test_a_connect_without_the_platforms_required_settings_is_refused(platforms_gw):
    gw = platforms_gw
    ws, key = gw.api.open_workspace("a", tier="pro")

    missing = connect(gw, ws, key)
    blank = connect(gw, ws, key, settings={"page_id": " "})

    assert missing.status_code == 422 and missing.json()["reason_code"] == "missing_settings"
    assert missing.json()["missing_settings"] == ["page_id"]
    assert blank.status_code == 422 and blank.json()["reason_code"] == "missing_settings"
    assert events_of(gw, ev.SocialAccountConnected) == []


def test_a_connect_to_a_platform_without_an_adapter_is_refused(platforms_gw):
    gw = platforms_gw
    ws, key = gw.api.open_workspace("a", tier="pro")

    answer = connect(gw, ws, key, platform="bluesky")

    assert answer.status_code == 422 and answer.json()["reason_code"] == "platform_unavailable"
    assert "facebook, mastodon" in answer.json()["detail"]


@pytest.mark.parametrize("settings", [{"Page_ID": "1"}, {"page_id": ""}, {"page_id": "1\n2"},
                                      {f"s{i}": "v" for i in range(21)}, {"page_id": "x" * 501}, {"page_id": 5},
                                      {"page_id": "1", "webhook_token": "abc"}, {"page_id": "1", "signing_secret": "s"}],
                         ids=["name", "empty", "control", "too-many", "too-long", "not-a-string", "a-token",
                              "a-secret"])
def test_malformed_settings_are_refused(platforms_gw, settings):
    gw = platforms_gw
    ws, key = gw.api.open_workspace("a", tier="pro")

    answer = connect(gw, ws, key, settings=settings)

    assert answer.status_code == 422, answer.text


def test_settings_are_on_the_account_and_its_event_but_the_token_is_not(platforms_gw):
    gw = platforms_gw
    ws, key = gw.api.open_workspace("a", tier="pro")

    answer = connect(gw, ws, key, settings=PAGE)

    assert answer.status_code == 201, answer.text
    account_id = answer.json()["social_account_id"]
    assert answer.json()["settings"] == PAGE
    view = gw.get(f"/v1/workspaces/{ws}/social-accounts/{account_id}", headers=key).json()
    assert view["settings"] == PAGE
    listed = gw.get(f"/v1/workspaces/{ws}/social-accounts", headers=key).json()["social_accounts"]
    assert listed[0]["settings"] == PAGE
    [connected] = events_of(gw, ev.SocialAccountConnected)
    assert connected.data["settings"] == PAGE
    assert "page-token-1" not in connected.model_dump_json()


def test_a_reconnect_with_settings_replaces_them_and_one_without_keeps_them(platforms_gw):
    gw = platforms_gw
    ws, key = gw.api.open_workspace("a", tier="pro")
    account_id = connect(gw, ws, key, settings=PAGE).json()["social_account_id"]

    moved = connect(gw, ws, key, social_account_id=account_id, access_token="page-token-2",
                    settings={"page_id": "204000000000002"})
    assert moved.status_code == 201 and moved.json()["reconnected"] is True
    assert gw.get(f"/v1/workspaces/{ws}/social-accounts/{account_id}", headers=key).json()["settings"] == {
        "page_id": "204000000000002"}

    # Without settings: the gateway checks the platform's required ones against the body, so only a
    # command from elsewhere can reconnect without them; the domain then keeps the account's.
    envelope = command_for(ConnectSocialAccount(social_account_id=account_id, platform="facebook", handle="Acme",
                                                credential_version="credential-3"),
                           workspace_id=ws, id_parts=("reconnect", account_id), issued_by="tool")
    assert gw.app.handle(envelope).accepted
    assert gw.get(f"/v1/workspaces/{ws}/social-accounts/{account_id}", headers=key).json()["settings"] == {
        "page_id": "204000000000002"}
    reconnected = events_of(gw, ev.SocialAccountReconnected)
    assert [e.data["settings"] for e in reconnected] == [{"page_id": "204000000000002"}, None]


def test_settings_travel_to_the_attempt_and_the_journal(platforms_gw, database_url):
    gw = platforms_gw
    ws, key = gw.api.open_workspace("a", tier="pro")
    account_id = connect(gw, ws, key, settings=PAGE).json()["social_account_id"]
    gw.api.grant(ws, key, 5)
    scheduled = gw.api.schedule(ws, key, [account_id], text="Hello page", in_s=5)
    assert scheduled.status_code in (201, 202), scheduled.text
    post_id = scheduled.json()["post_id"]

    decision = gw.app.handle(command_for(StartPublishAttempt(post_id=post_id, destination_id=account_id, attempt=1),
                                         workspace_id=ws, id_parts=("start", post_id), issued_by="dispatcher"))

    assert decision.accepted, decision
    [started] = events_of(gw, ev.AttemptStarted)
    assert started.data["account_settings"] == PAGE
    db.apply_ddl(database_url, publisher.DDL)
    with gw.pool.connection() as conn:
        journal.schedule(conn, started, ev.AttemptStarted.model_validate(started.data))
        [entry] = journal.claim_due(conn, "engine-1", lead_s=3600, lease_s=30, limit=10)
    assert entry.account_settings == PAGE
    account = gw.deps.credentials.for_call(account_id=account_id, workspace_id=ws, platform="facebook", handle="Acme Page",
                             instance_url=None, settings=entry.account_settings)
    assert account.settings == PAGE and account.setting("page_id") == PAGE["page_id"]
    assert account.access_token == "page-token-1"
