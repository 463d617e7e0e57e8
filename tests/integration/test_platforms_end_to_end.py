"""Herald as wired (herald/runtime/wiring.py) publishing to the fakes of X, LinkedIn, Facebook,
Instagram and Threads: accounts connected with their settings, one post to several platforms
published once on each with each hold consumed, a platform refusing for good releasing only its own
hold, GET /v1/platforms listing every adapter Herald runs, and an X account connected through
Herald's OAuth flow with PKCE. Real PostgreSQL, broker and HTTP."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from herald.settings import OAuthClientSettings
from processors.accounts.credentials import connect_with_tokens
from schemas import commands as cmd
from schemas.commands import Platform
from tests.fakes.facebook_server import PAGE_ID, FakeFacebook
from tests.fakes.instagram_server import IG_USER_ID, FakeInstagram
from tests.fakes.linkedin_server import MEMBER, FakeLinkedIn
from tests.fakes.threads_server import THREADS_USER_ID, FakeThreads
from tests.fakes.x_server import CLIENT, FakeX
from tests.support import decide, envelope, event_types, query_all, role_loops, running, wait_until

pytestmark = pytest.mark.integration

WS = "ws-platforms"
FAST = {"dispatch_interval_s": 0.1, "publish_lead_s": 1.0, "retry_delays_s": [1.0], "publish_maintain_every_s": 0.5}
IMAGE = "https://cdn.example.org/launch.jpg"  # Facebook, Instagram and Threads fetch it themselves; the fakes do not


@pytest.fixture
def fakes():
    with contextlib.ExitStack() as stack:
        yield {name: stack.enter_context(fake) for name, fake in (
            ("x", FakeX()), ("linkedin", FakeLinkedIn()), ("facebook", FakeFacebook()),
            ("instagram", FakeInstagram()), ("threads", FakeThreads()))}


ACCOUNTS = {"x": {}, "linkedin": {"author_urn": MEMBER}, "facebook": {"page_id": PAGE_ID},
            "instagram": {"ig_user_id": IG_USER_ID}, "threads": {"threads_user_id": THREADS_USER_ID}}


def _herald(heralds, fakes):
    urls = {"x": fakes["x"].base_url, "linkedin": fakes["linkedin"].base_url,
            "facebook": fakes["facebook"].graph_url, "instagram": fakes["instagram"].graph_url,
            "threads": fakes["threads"].api_url}
    herald = heralds.start(**FAST, platform_api_urls=urls)
    decide(herald.app, WS, "open", cmd.OpenWorkspace(name=WS, tier="business"))
    for platform, settings in ACCOUNTS.items():
        connect = cmd.ConnectSocialAccount(social_account_id=f"{WS}-{platform}", platform=platform,
                                           handle=f"herald-{platform}", settings=settings)
        decision = connect_with_tokens(herald.app, herald.credentials,
                                       envelope(connect, workspace_id=WS, command_id=f"connect-{platform}"),
                                       access_token=fakes[platform].token)
        assert decision.accepted, decision
    decide(herald.app, WS, "grant", cmd.GrantCredits(amount=20))
    return herald


def _schedule(herald, post_id: str, text: str, platforms: list[str], media: list[str]) -> None:
    decide(herald.app, WS, f"schedule-{post_id}", cmd.SchedulePost(
        post_id=post_id, text=text, media_urls=media, destinations=[f"{WS}-{p}" for p in platforms],
        publish_at=datetime.now(UTC) + timedelta(seconds=1.5)))


def _statuses(herald, post_id: str) -> dict[str, str]:
    rows = query_all(herald, "SELECT destination_id, status FROM queue_destinations WHERE post_id = %s", (post_id,))
    return {destination.removeprefix(f"{WS}-"): status for destination, status in rows}


def test_one_post_to_every_platform_publishes_once_each_and_a_permanent_refusal_releases_only_its_hold(
        heralds, fakes):
    herald = _herald(heralds, fakes)
    fakes["linkedin"].fail_next("posts", 422, body={"status": 422, "code": "INVALID_CONTENT", "message": "refused"})
    with running(role_loops(herald, "handler", "relay", "processors", "projections")):
        _schedule(herald, "p-text", "Launch day for Herald", ["x", "linkedin", "facebook", "threads"], [])
        _schedule(herald, "p-image", "Launch day, in pictures", ["facebook", "instagram", "threads"], [IMAGE])
        wait_until(lambda: set(_statuses(herald, "p-text").values()) <= {"published", "failed"}
                   and set(_statuses(herald, "p-image").values()) == {"published"}, "every destination settled",
                   timeout=60)
        wait_until(lambda: event_types(herald)["herald.wallet.hold_consumed.v1"] == 6
                   and event_types(herald)["herald.wallet.hold_released.v1"] == 1, "every hold settled", timeout=30)
    assert _statuses(herald, "p-text") == {"x": "published", "linkedin": "failed", "facebook": "published",
                                           "threads": "published"}
    assert fakes["x"].count_for("Launch day for Herald") == 1
    assert fakes["facebook"].count_for("Launch day for Herald") == 1
    assert fakes["facebook"].count_for("Launch day, in pictures") == 1
    assert fakes["threads"].count_for("Launch day for Herald") == 1
    assert fakes["threads"].count_for("Launch day, in pictures") == 1
    assert fakes["instagram"].count_for("Launch day, in pictures") == 1
    assert fakes["instagram"].media[0]["url"] == IMAGE
    assert fakes["linkedin"].posts == []
    types = event_types(herald)
    assert types["herald.wallet.hold_placed.v1"] == 7
    assert types["herald.wallet.hold_consumed.v1"] == 6 and types["herald.wallet.hold_released.v1"] == 1
    for fake in fakes.values():
        fake.assert_no_violations()


def test_platforms_lists_every_adapter_herald_runs(heralds, fakes):
    herald = heralds.start()
    with TestClient(herald.gateway(), headers={"Authorization": f"Bearer {herald.admin_api_key}"}) as http:
        answer = http.get("/v1/platforms")
    assert answer.status_code == 200, answer.text
    listed = {p["platform"]: p for p in answer.json()["platforms"]}
    assert set(listed) == {"sandbox", "mastodon", "x", "linkedin", "facebook", "instagram", "threads"}
    assert set(listed) <= {str(p) for p in Platform}
    assert listed["x"]["threads"] is True and listed["x"]["oauth"] is True
    assert {name: p["required_settings"] for name, p in listed.items() if p["required_settings"]} == {
        "linkedin": ["author_urn"], "facebook": ["page_id"], "instagram": ["ig_user_id"],
        "threads": ["threads_user_id"]}
    assert all(p["doc_url"] and p["rate_budgets"] for name, p in listed.items() if name != "sandbox")


def test_an_x_account_connects_through_herald_with_pkce_then_publishes(heralds, fakes):
    x = fakes["x"]
    herald = heralds.start(**FAST, platform_api_urls={"x": x.base_url}, oauth_clients={"x": OAuthClientSettings(
        client_id=CLIENT[0], client_secret=SecretStr(CLIENT[1]), auth_method="client_secret_basic")})
    with TestClient(herald.gateway()) as http:
        opened = http.post("/v1/workspaces", json={"workspace_id": WS, "name": WS, "tier": "business"},
                           headers={"Authorization": f"Bearer {herald.admin_api_key}"})
        key = {"Authorization": f"Bearer {opened.json()['api_key']}"}
        started = http.post(f"/v1/workspaces/{WS}/social-accounts/oauth/start", headers=key,
                            json={"platform": "x", "redirect_uri": "https://app.example/done"})
        assert started.status_code == 201, started.text
        assert "code_challenge_method=S256" in started.json()["authorization_url"]
        answer = x.approve(started.json()["authorization_url"])
        connected = http.post(f"/v1/workspaces/{WS}/social-accounts/oauth/callback", headers=key,
                              json={"state": answer["state"], "code": answer["code"]})
        assert connected.status_code == 201, connected.text
        assert connected.json()["handle"] == "@herald"
        account = connected.json()["social_account_id"]
        decide(herald.app, WS, "grant", cmd.GrantCredits(amount=5))
        with running(role_loops(herald, "handler", "relay", "processors", "projections")):
            decide(herald.app, WS, "schedule-x", cmd.SchedulePost(
                post_id="p-x", text="Connected through OAuth", destinations=[account],
                publish_at=datetime.now(UTC) + timedelta(seconds=1.5)))
            wait_until(lambda: set(_statuses(herald, "p-x").values()) == {"published"}, "published", timeout=40)
    assert x.count_for("Connected through OAuth") == 1
    x.assert_no_violations()
