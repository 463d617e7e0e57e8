"""The Telegram adapter against a real HTTP fake of the Bot API that checks requests against the docs."""

from __future__ import annotations

import httpx
import pytest

from herald.net.safe_fetch import SafeFetcher
from processors.platforms.base import AccountCredentials, ErrorKind, PublishError, PublishRequest
from processors.platforms.telegram import TelegramAdapter
from tests.fakes.platform_server import Fault
from tests.fakes.telegram_server import BOT_TOKEN, CHANNEL, CHANNEL_ID, FakeTelegram, flood


@pytest.fixture
def api():
    with FakeTelegram() as server:
        yield server
        assert server.violations == []


@pytest.fixture
def adapter(api):
    with httpx.Client() as http:
        media = SafeFetcher(timeout_s=2, allowed_networks=["127.0.0.1/32"])
        yield TelegramAdapter(http, base_url=api.base_url, timeout_s=2, media=media)
        media.close()


def request_for(text: str = "Herald 1.0 is out", *, token: str = BOT_TOKEN, chat: str | None = CHANNEL,
                media: tuple[str, ...] = ()) -> PublishRequest:
    account = AccountCredentials("acct-1", "telegram", "Herald News", token, None, {"chat_id": chat} if chat else {})
    return PublishRequest(attempt_key="attempt-1", account=account, text=text, media_urls=media)


def failure(call) -> PublishError:
    with pytest.raises(PublishError) as raised:
        call()
    return raised.value


def test_publish_sends_one_message_to_the_channel(api, adapter):
    result = adapter.publish(request_for())

    [message] = api.messages
    assert message["text"] == "Herald 1.0 is out"
    assert result.platform_post_id == f"{CHANNEL_ID}:{message['message_id']}"
    assert result.url == f"https://t.me/{CHANNEL[1:]}/{message['message_id']}"


def test_one_photo_is_uploaded_with_the_text_as_caption(api, adapter):
    adapter.publish(request_for("A photo", media=(api.media_url("shot.png"),)))

    [message] = api.messages
    assert (message["kind"], message["caption"], message["file"]) == ("photo", "A photo", "shot.png")


def test_several_media_are_an_album_captioned_once(api, adapter):
    result = adapter.publish(request_for("Album", media=(api.media_url("a.png"), api.media_url("b.mp4"))))

    first, second = api.messages
    assert [(m["kind"], m["caption"], m["file"]) for m in api.messages] == \
        [("photo", "Album", "a.png"), ("video", None, "b.mp4")]
    assert first["media_group_id"] == second["media_group_id"]
    assert result.platform_post_id.endswith(f":{first['message_id']}")


def test_a_missing_chat_setting_or_unknown_chat_is_permanent(api, adapter):
    missing = failure(lambda: adapter.publish(request_for(chat=None)))
    unknown = failure(lambda: adapter.publish(request_for(chat="@nosuchchannel")))

    assert missing.kind is ErrorKind.permanent and "chat_id" in missing.detail
    assert unknown.kind is ErrorKind.permanent and "chat not found" in unknown.detail


def test_a_wrong_bot_token_is_an_auth_error_and_never_shown(api, adapter):
    wrong = "7000000001:AAWrongTokenWrongTokenWrongToken_zzzzzz"

    error = failure(lambda: adapter.publish(request_for(token=wrong)))

    assert error.kind is ErrorKind.auth and wrong not in str(error)


def test_a_bot_removed_from_the_channel_is_an_auth_error(api, adapter):
    api.kick_bot()

    error = failure(lambda: adapter.publish(request_for()))

    assert error.kind is ErrorKind.auth and "not a member" in error.detail


def test_flood_control_is_rate_limited_for_retry_after(api, adapter):
    api.inject(flood(34))

    error = failure(lambda: adapter.publish(request_for()))

    assert error.kind is ErrorKind.rate_limited and error.retry_after_s == 34
    assert api.messages == []


def test_server_error_is_transient(api, adapter):
    api.inject(Fault(502, body={"ok": False, "error_code": 502, "description": "Bad Gateway"}))

    assert failure(lambda: adapter.publish(request_for())).kind is ErrorKind.transient


def test_a_timeout_after_the_message_was_sent_is_unknown_and_reconcile_says_it_cannot_tell(api):
    api.inject(Fault(200, delay_s=1.0))
    with httpx.Client() as http:
        adapter = TelegramAdapter(http, base_url=api.base_url, timeout_s=0.3)
        error = failure(lambda: adapter.publish(request_for()))
        assert error.kind is ErrorKind.unknown and BOT_TOKEN not in error.detail

        cannot = failure(lambda: adapter.reconcile(request_for()))

    assert cannot.kind is ErrorKind.transient and "cannot tell" in cannot.detail
    assert len(api.messages) == 1


def test_text_limits_depend_on_media(api, adapter):
    assert failure(lambda: adapter.publish(request_for("x" * 4097))).kind is ErrorKind.invalid_content
    caption = failure(lambda: adapter.publish(request_for("x" * 1025, media=(api.media_url("a.png"),))))
    assert caption.kind is ErrorKind.invalid_content
    assert api.requests == []
    adapter.publish(request_for("x" * 4096))
    assert len(api.messages) == 1
