"""The Discord adapter against a real HTTP fake of the webhook execute endpoint that checks requests
against the docs."""

from __future__ import annotations

import httpx
import pytest

from herald.net.safe_fetch import SafeFetcher
from processors.platforms.base import AccountCredentials, ErrorKind, PublishError, PublishRequest
from processors.platforms.discord import DiscordAdapter
from tests.fakes.discord_server import CHANNEL_ID, GUILD_ID, WEBHOOK_ID, WEBHOOK_TOKEN, FakeDiscord, rate_limited
from tests.fakes.platform_server import Fault

WEBHOOK_URL = f"https://discord.com/api/webhooks/{WEBHOOK_ID}/{WEBHOOK_TOKEN}"


@pytest.fixture
def api():
    with FakeDiscord() as server:
        yield server
        assert server.violations == []


@pytest.fixture
def adapter(api):
    with httpx.Client() as http:
        media = SafeFetcher(timeout_s=2, allowed_networks=["127.0.0.1/32"])
        yield DiscordAdapter(http, base_url=api.base_url, timeout_s=2, media=media)
        media.close()


def request_for(text: str = "Release notes are out @everyone", *, secret: str = WEBHOOK_URL,
                media: tuple[str, ...] = ()) -> PublishRequest:
    account = AccountCredentials("acct-1", "discord", "#announcements", secret, None)
    return PublishRequest(attempt_key="attempt-1", account=account, text=text, media_urls=media)


def failure(call) -> PublishError:
    with pytest.raises(PublishError) as raised:
        call()
    return raised.value


def test_publish_executes_the_webhook_once_and_never_pings_everyone(api, adapter):
    result = adapter.publish(request_for())

    [message] = api.messages
    assert result.platform_post_id == message["id"]
    assert result.url == f"https://discord.com/channels/{GUILD_ID}/{CHANNEL_ID}/{message['id']}"
    assert message["content"] == "Release notes are out @everyone"
    assert message["allowed_mentions"] == {"parse": []}


def test_the_secret_may_be_id_and_token_and_is_only_sent_to_the_configured_host(api, adapter):
    adapter.publish(request_for(secret=f"{WEBHOOK_ID}/{WEBHOOK_TOKEN}"))
    adapter.publish(request_for(secret=f"https://evil.example/api/webhooks/{WEBHOOK_ID}/{WEBHOOK_TOKEN}"))

    assert len(api.messages) == 2  # both went to the fake (the configured Discord host), not evil.example


def test_media_are_sent_as_multipart_files_named_in_payload_json(api, adapter):
    adapter.publish(request_for("Screenshots", media=(api.media_url("one.png"), api.media_url("two.mp4"))))

    [message] = api.messages
    assert [(a["filename"], a["content_type"]) for a in message["attachments"]] == \
        [("one.png", "image/png"), ("two.mp4", "video/mp4")]


def test_a_deleted_webhook_or_wrong_token_is_an_auth_error_without_the_token_in_the_detail(api, adapter):
    wrong = failure(lambda: adapter.publish(request_for(secret=f"{WEBHOOK_ID}/{'x' * 68}")))
    gone = failure(lambda: adapter.publish(request_for(secret=f"999999999999/{WEBHOOK_TOKEN}")))

    assert wrong.kind is ErrorKind.auth and "50027" in wrong.detail
    assert gone.kind is ErrorKind.auth and "10015" in gone.detail
    assert WEBHOOK_TOKEN not in gone.detail and "x" * 68 not in wrong.detail


def test_a_secret_that_is_no_webhook_is_an_auth_error_before_sending(api, adapter):
    assert failure(lambda: adapter.publish(request_for(secret="not a webhook"))).kind is ErrorKind.auth
    assert api.requests == []


def test_429_is_rate_limited_for_the_retry_after(api, adapter):
    api.inject(rate_limited(1.5))

    error = failure(lambda: adapter.publish(request_for()))

    assert error.kind is ErrorKind.rate_limited and error.retry_after_s == 2  # the header, rounded up
    assert api.messages == []


def test_server_error_is_transient(api, adapter):
    api.inject(Fault(502, body={"message": "502: Bad Gateway", "code": 0}))

    assert failure(lambda: adapter.publish(request_for())).kind is ErrorKind.transient


def test_a_timeout_after_the_message_was_posted_is_unknown_and_reconcile_says_it_cannot_tell(api):
    api.inject(Fault(200, delay_s=1.0))
    with httpx.Client() as http:
        adapter = DiscordAdapter(http, base_url=api.base_url, timeout_s=0.3)
        error = failure(lambda: adapter.publish(request_for()))
        assert error.kind is ErrorKind.unknown
        assert WEBHOOK_TOKEN not in error.detail

        cannot = failure(lambda: adapter.reconcile(request_for()))

    assert cannot.kind is ErrorKind.transient and "cannot tell" in cannot.detail
    assert len(api.messages) == 1  # reconcile did not post again


def test_too_long_content_is_refused_before_sending(api, adapter):
    assert failure(lambda: adapter.publish(request_for("x" * 2001))).kind is ErrorKind.invalid_content
    assert api.requests == []
