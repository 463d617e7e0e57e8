"""Herald as wired (herald/runtime/wiring.py) publishing to the fakes of every platform it runs an
adapter for: accounts connected with their settings; one post with 13 destinations on 13 platforms
(X, LinkedIn, Facebook, Instagram, Threads, Mastodon, Bluesky, Pinterest, Reddit, TikTok, Discord,
Telegram and a generic webhook) published once on each with each destination's hold consumed, and
LinkedIn refusing for good releasing only its own hold; a video post to YouTube; GET /v1/platforms
listing all 15 adapters with their capabilities; and an X account connected through Herald's OAuth
flow with PKCE. Real PostgreSQL, broker and HTTP."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from herald.messaging.relay import to_cloud_event
from herald.net.addresses import system_resolver
from herald.settings import OAuthClientSettings
from processors.accounts.credentials import connect_with_tokens
from processors.platforms import tiktok as tiktok_module
from schemas import commands as cmd
from schemas.commands import Platform
from tests.fakes import bluesky_server, discord_server, mastodon_server, pinterest_server, reddit_server
from tests.fakes import telegram_server, tiktok_server, webhook_server, youtube_server
from tests.fakes.bluesky_server import FakeBluesky
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.facebook_server import PAGE_ID, FakeFacebook
from tests.fakes.instagram_server import IG_USER_ID, FakeInstagram
from tests.fakes.linkedin_server import MEMBER, FakeLinkedIn
from tests.fakes.mastodon_server import FakeMastodon
from tests.fakes.pinterest_server import FakePinterest
from tests.fakes.reddit_server import FakeReddit
from tests.fakes.telegram_server import FakeTelegram
from tests.fakes.threads_server import THREADS_USER_ID, FakeThreads
from tests.fakes.tiktok_server import FakeTikTok
from tests.fakes.webhook_server import FakeReceiver
from tests.fakes.x_server import CLIENT, FakeX
from tests.fakes.youtube_server import FakeYouTube
from tests.support import decide, envelope, event_types, query_all, role_loops, running, stored_notifications
from tests.support import wait_until

pytestmark = pytest.mark.integration

WS = "ws-platforms"
FAST = {"dispatch_interval_s": 0.1, "publish_lead_s": 1.0, "retry_delays_s": [1.0], "publish_maintain_every_s": 0.5}
ALL = ["x", "linkedin", "facebook", "instagram", "threads", "mastodon", "bluesky", "pinterest", "reddit", "tiktok",
       "discord", "telegram", "webhook"]
TEXT = "Herald launches today\nOne post, thirteen platforms, each once."  # a title line for Reddit and Pinterest
VIDEO_TEXT = "Herald launch video\nThe whole launch, in a minute."
# Media URLs must name a public host when a post is scheduled; Herald resolves this one to the fakes' machine.
MEDIA_HOST = "media.launch.example"


def _resolve(host: str, port: int) -> list[str]:
    return ["127.0.0.1"] if host == MEDIA_HOST else system_resolver(host, port)


def _on_media_host(fake, name: str) -> str:
    return fake.media_url(name).replace("127.0.0.1", MEDIA_HOST)


@pytest.fixture
def fakes():
    with contextlib.ExitStack() as stack:
        yield {name: stack.enter_context(fake) for name, fake in (
            ("x", FakeX()), ("linkedin", FakeLinkedIn()), ("facebook", FakeFacebook()),
            ("instagram", FakeInstagram()), ("threads", FakeThreads()), ("mastodon", FakeMastodon()),
            ("bluesky", FakeBluesky()), ("pinterest", FakePinterest()), ("reddit", FakeReddit()),
            ("youtube", FakeYouTube()), ("tiktok", FakeTikTok()), ("discord", FakeDiscord()),
            ("telegram", FakeTelegram()), ("webhook", FakeReceiver()))}


def _accounts(fakes) -> dict[str, dict]:
    """Per platform: the connect's handle, instance URL, settings and secret, as each platform's fake takes them."""
    def account(token: str, settings: dict | None = None, handle: str | None = None, instance_url: str | None = None):
        return {"token": token, "settings": settings or {}, "handle": handle, "instance_url": instance_url}

    return {
        "x": account(fakes["x"].token), "linkedin": account(fakes["linkedin"].token, {"author_urn": MEMBER}),
        "facebook": account(fakes["facebook"].token, {"page_id": PAGE_ID}),
        "instagram": account(fakes["instagram"].token, {"ig_user_id": IG_USER_ID}),
        "threads": account(fakes["threads"].token, {"threads_user_id": THREADS_USER_ID}),
        "mastodon": account(mastodon_server.DEFAULT_TOKEN, instance_url=fakes["mastodon"].base_url),
        "bluesky": account(bluesky_server.APP_PASSWORD, handle=bluesky_server.HANDLE),
        "pinterest": account(pinterest_server.TOKEN, {"board_id": pinterest_server.BOARD}),
        "reddit": account(reddit_server.TOKEN, {"subreddit": "test"}, handle=reddit_server.USERNAME),
        "youtube": account(youtube_server.TOKEN),
        "tiktok": account(tiktok_server.TOKEN),
        "discord": account(f"{discord_server.WEBHOOK_ID}/{discord_server.WEBHOOK_TOKEN}"),
        "telegram": account(telegram_server.BOT_TOKEN, {"chat_id": telegram_server.CHANNEL}),
        "webhook": account(webhook_server.SECRET, {"url": fakes["webhook"].url()}),
    }


def _herald(heralds, fakes, platforms):
    urls = {"x": fakes["x"].base_url, "linkedin": fakes["linkedin"].base_url,
            "facebook": fakes["facebook"].graph_url, "instagram": fakes["instagram"].graph_url,
            "threads": fakes["threads"].api_url,
            **{p: fakes[p].base_url for p in ("bluesky", "pinterest", "reddit", "youtube", "tiktok", "discord",
                                              "telegram")}}
    herald = heralds.start(**FAST, platform_api_urls=urls)
    herald.resolve = _resolve
    decide(herald.app, WS, "open", cmd.OpenWorkspace(name=WS, tier="business"))
    accounts = _accounts(fakes)
    for platform in platforms:
        given = accounts[platform]
        connect = cmd.ConnectSocialAccount(social_account_id=f"{WS}-{platform}", platform=platform,
                                           handle=given["handle"] or f"herald-{platform}",
                                           instance_url=given["instance_url"], settings=given["settings"])
        decision = connect_with_tokens(herald.app, herald.credentials,
                                       envelope(connect, workspace_id=WS, command_id=f"connect-{platform}"),
                                       access_token=given["token"])
        assert decision.accepted, decision
    decide(herald.app, WS, "grant", cmd.GrantCredits(amount=30))
    return herald


def _schedule(herald, post_id: str, text: str, platforms: list[str], media: list[str]) -> None:
    decide(herald.app, WS, f"schedule-{post_id}", cmd.SchedulePost(
        post_id=post_id, text=text, media_urls=media, destinations=[f"{WS}-{p}" for p in platforms],
        publish_at=datetime.now(UTC) + timedelta(seconds=1.5)))


def _statuses(herald, post_id: str) -> dict[str, str]:
    rows = query_all(herald, "SELECT destination_id, status FROM queue_destinations WHERE post_id = %s", (post_id,))
    return {destination.removeprefix(f"{WS}-"): status for destination, status in rows}


def _holds(herald) -> dict[str, list[str]]:
    """Per destination (platform), how each of its holds ended: "placed", then "consumed" or "released"."""
    destination_of, ends = {}, {}
    for notification in stored_notifications(herald.app):
        event = to_cloud_event(herald.app, notification)
        if event.type == "herald.wallet.hold_placed.v1":
            destination_of[event.data["hold_id"]] = event.data["destination_id"].removeprefix(f"{WS}-")
            ends.setdefault(destination_of[event.data["hold_id"]], []).append("placed")
        elif event.type in ("herald.wallet.hold_consumed.v1", "herald.wallet.hold_released.v1"):
            ends[destination_of[event.data["hold_id"]]].append(event.type.split(".")[2].removeprefix("hold_"))
    return ends


def _texts_posted(fakes, text: str) -> dict[str, int]:
    """How many posts with this text each fake holds (its own record of what it made)."""
    title, _, body = text.partition("\n")
    return {
        "x": fakes["x"].count_for(text), "facebook": fakes["facebook"].count_for(text),
        "instagram": fakes["instagram"].count_for(text), "threads": fakes["threads"].count_for(text),
        "linkedin": len(fakes["linkedin"].posts), "mastodon": fakes["mastodon"].count_for(text),
        "bluesky": sum(1 for r in fakes["bluesky"].posts if r["value"]["text"] == text),
        "pinterest": sum(1 for p in fakes["pinterest"].pins if p.get("title") == title),
        "reddit": sum(1 for p in fakes["reddit"].posts if p["title"] == title),
        "tiktok": sum(1 for p in fakes["tiktok"].posts if p["title"] == text),
        "discord": sum(1 for m in fakes["discord"].messages if m["content"] == text),
        "telegram": sum(1 for m in fakes["telegram"].messages if m.get("caption") == text),
        "webhook": sum(1 for d in fakes["webhook"].deliveries if d["envelope"]["data"]["text"] == text),
    }


def test_one_post_to_thirteen_platforms_publishes_once_each_and_a_permanent_refusal_releases_only_its_hold(
        heralds, fakes, monkeypatch):
    monkeypatch.setattr(tiktok_module, "STATUS_WAIT_S", 0.05)  # TikTok's status polls, 2 s apart in production
    herald = _herald(heralds, fakes, [*ALL, "youtube"])
    image, video = _on_media_host(fakes["tiktok"], "launch.jpg"), _on_media_host(fakes["youtube"], "launch.mp4")
    fakes["tiktok"].verified_prefixes.append(image.rsplit("/", 1)[0] + "/")  # TikTok pulls photos from verified hosts
    fakes["linkedin"].fail_next("posts", 422, body={"status": 422, "code": "INVALID_CONTENT", "message": "refused"})
    with running(role_loops(herald, "handler", "relay", "processors", "projections")):
        _schedule(herald, "p-launch", TEXT, ALL, [image])
        _schedule(herald, "p-video", VIDEO_TEXT, ["youtube"], [video])
        wait_until(lambda: len(_statuses(herald, "p-launch")) == 13
                   and set(_statuses(herald, "p-launch").values()) <= {"published", "failed"}
                   and _statuses(herald, "p-video") == {"youtube": "published"}, "every destination settled",
                   timeout=90)
        wait_until(lambda: all(len(ends) == 2 for ends in _holds(herald).values()), "every hold settled", timeout=30)

    assert _statuses(herald, "p-launch") == {p: "failed" if p == "linkedin" else "published" for p in ALL}
    assert _texts_posted(fakes, TEXT) == {p: 0 if p == "linkedin" else 1 for p in ALL}
    assert [v["snippet"]["title"] for v in fakes["youtube"].videos] == ["Herald launch video"]
    # What each platform was given: the image where the platform takes it, the video uploaded to YouTube.
    assert fakes["instagram"].media[0]["url"] == image
    assert fakes["pinterest"].pins[0]["media_source"] == {"source_type": "image_url", "url": image}
    assert fakes["telegram"].messages[0]["kind"] == "photo"
    assert [a["filename"] for a in fakes["discord"].messages[0]["attachments"]] == ["launch.jpg"]
    assert fakes["webhook"].deliveries[0]["envelope"]["data"]["media_urls"] == [image]
    assert fakes["youtube"].videos[0]["bytes"] > 0
    # Each destination's own hold: consumed where it was published, released only for LinkedIn's refusal.
    holds = _holds(herald)
    assert holds == {p: ["placed", "released" if p == "linkedin" else "consumed"] for p in [*ALL, "youtube"]}
    types = event_types(herald)
    assert types["herald.wallet.hold_placed.v1"] == 14
    assert types["herald.wallet.hold_consumed.v1"] == 13 and types["herald.wallet.hold_released.v1"] == 1
    for name, fake in fakes.items():
        if name == "mastodon":
            assert fake.stats()["double_posts"] == 0
        elif hasattr(fake, "assert_no_violations"):
            fake.assert_no_violations()
        else:
            assert fake.violations == [], (name, fake.violations)


def test_platforms_lists_every_adapter_herald_runs_with_its_capabilities(heralds):
    herald = heralds.start()
    with TestClient(herald.gateway(), headers={"Authorization": f"Bearer {herald.admin_api_key}"}) as http:
        answer = http.get("/v1/platforms")
    assert answer.status_code == 200, answer.text
    listed = {p["platform"]: p for p in answer.json()["platforms"]}
    assert set(listed) == {str(p) for p in Platform} | {"sandbox"}
    assert len(listed) == 15
    assert {name: p["required_settings"] for name, p in listed.items() if p["required_settings"]} == {
        "linkedin": ["author_urn"], "facebook": ["page_id"], "instagram": ["ig_user_id"],
        "threads": ["threads_user_id"], "pinterest": ["board_id"], "reddit": ["subreddit"],
        "telegram": ["chat_id"], "webhook": ["url"]}
    assert {name: p["reconcile"] for name, p in listed.items()} == {
        "sandbox": "lookup", "mastodon": "idempotency_key", "x": "lookup", "linkedin": "lookup", "facebook": "lookup",
        "instagram": "lookup", "threads": "lookup", "bluesky": "lookup", "pinterest": "lookup", "reddit": "lookup",
        "youtube": "lookup", "tiktok": "lookup", "discord": "none", "telegram": "none", "webhook": "idempotency_key"}
    assert {name for name, p in listed.items() if p["threads"]} == {"x"}
    assert {name: p["max_length"] for name, p in listed.items()} == {
        "sandbox": 5000, "mastodon": 500, "x": 280, "linkedin": 3000, "facebook": 63_206, "instagram": 2200,
        "threads": 500, "bluesky": 300, "pinterest": 500, "reddit": 40_000, "youtube": 5000, "tiktok": 2200,
        "discord": 2000, "telegram": 4096, "webhook": 100_000}
    assert listed["youtube"]["media_kinds"] == ["video"] and listed["youtube"]["length_unit"] == "bytes (UTF-8)"
    assert listed["telegram"]["media_kinds"] == ["image", "video"] and listed["telegram"]["max_media"] == 10
    assert listed["webhook"]["media_kinds"] == ["file", "gif", "image", "video"]
    assert listed["webhook"]["max_media"] == 20
    assert listed["youtube"]["optional_settings"] == ["privacy_status", "category_id"]
    assert {name for name, p in listed.items() if p["oauth"]} == {
        "mastodon", "x", "linkedin", "pinterest", "reddit", "youtube", "tiktok"}
    assert all(p["doc_url"] and p["display_name"] and p["media_kinds"] for p in listed.values())
    assert all(p["rate_budgets"] for name, p in listed.items() if name not in ("sandbox", "webhook"))


def test_an_x_account_connects_through_herald_with_pkce_then_publishes(heralds):
    with FakeX() as x:
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
