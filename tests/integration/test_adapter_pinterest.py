"""The Pinterest adapter against a real HTTP fake of API v5 that checks requests against the docs."""

from __future__ import annotations

import httpx
import pytest

from herald.net.safe_fetch import SafeFetcher
from processors.platforms import pinterest as pinterest_module
from processors.platforms.base import AccountCredentials, ErrorKind, PublishError, PublishRequest
from processors.platforms.pinterest import PinterestAdapter
from tests.fakes.pinterest_server import BOARD, TOKEN, FakePinterest
from tests.fakes.platform_server import MP4_BYTES


@pytest.fixture
def api():
    with FakePinterest() as server:
        yield server
        assert server.violations == []


@pytest.fixture
def adapter(api):
    with httpx.Client() as http:
        media = SafeFetcher(timeout_s=2, allowed_networks=["127.0.0.1/32"])
        yield PinterestAdapter(http, base_url=api.base_url, timeout_s=2, media=media)
        media.close()


def request_for(api: FakePinterest, text: str = "Autumn soup\nA warming recipe", *, key: str = "attempt-1",
                token: str = TOKEN, media: tuple[str, ...] | None = None, board: str | None = BOARD) -> PublishRequest:
    settings = {"board_id": board} if board else {}
    account = AccountCredentials("acct-1", "pinterest", "herald", token, None, settings)
    media = (api.media_url("soup.png"),) if media is None else media
    return PublishRequest(attempt_key=key, account=account, text=text, media_urls=media)


def failure(call) -> PublishError:
    with pytest.raises(PublishError) as raised:
        call()
    return raised.value


def test_publish_creates_one_pin_with_title_description_and_image(api, adapter):
    result = adapter.publish(request_for(api))

    [pin] = api.pins
    assert result.platform_post_id == pin["id"]
    assert result.url == f"https://www.pinterest.com/pin/{pin['id']}/"
    assert (pin["board_id"], pin["title"], pin["description"]) == (BOARD, "Autumn soup", "A warming recipe")
    assert pin["media_source"] == {"source_type": "image_url", "url": api.media_url("soup.png")}


def test_a_single_line_is_the_description_without_a_title(api, adapter):
    adapter.publish(request_for(api, "Just a description"))

    [pin] = api.pins
    assert pin["title"] is None and pin["description"] == "Just a description"


def test_several_images_make_a_carousel(api, adapter):
    urls = (api.media_url("a.png"), api.media_url("b.png"), api.media_url("c.png"))
    adapter.publish(request_for(api, media=urls))

    [pin] = api.pins
    assert pin["media_source"] == {"source_type": "multiple_image_urls", "items": [{"url": u} for u in urls]}


def test_without_a_board_setting_nothing_is_sent(api, adapter):
    error = failure(lambda: adapter.publish(request_for(api, board=None)))

    assert error.kind is ErrorKind.permanent and "board_id" in error.detail
    assert api.requests == []


def test_a_board_that_is_gone_is_permanent(api, adapter):
    error = failure(lambda: adapter.publish(request_for(api, board="999")))

    assert error.kind is ErrorKind.permanent and "Board not found" in error.detail


def test_a_pin_needs_media_and_two_videos_are_refused_before_sending(api, adapter):
    assert failure(lambda: adapter.publish(request_for(api, media=()))).kind is ErrorKind.invalid_content
    two = (api.media_url("a.mp4"), api.media_url("b.mp4"))
    assert failure(lambda: adapter.publish(request_for(api, media=two))).kind is ErrorKind.invalid_content
    assert api.requests == []


def test_an_expired_token_is_an_auth_error(api, adapter):
    api.revoke()

    error = failure(lambda: adapter.publish(request_for(api)))

    assert error.kind is ErrorKind.auth and error.status_code == 401


def test_429_is_rate_limited_with_retry_after(api, adapter):
    api.fail_next("create", 429, {"Retry-After": "12", "X-RateLimit-Remaining": "0"},
                  {"code": 8, "message": "You have exceeded your rate limit. Try again later."})

    error = failure(lambda: adapter.publish(request_for(api)))

    assert error.kind is ErrorKind.rate_limited and error.retry_after_s == 12
    assert api.pins == []


def test_server_error_is_transient(api, adapter):
    api.fail_next("create", 503, body={"code": 0, "message": "Service unavailable"})

    assert failure(lambda: adapter.publish(request_for(api))).kind is ErrorKind.transient


def test_a_timeout_after_the_pin_was_created_is_reconciled_without_a_second_pin(api):
    api.add_other_pins(150)  # the Pin is found past the first page
    api.fail_next("create", delay_s=1.0)
    with httpx.Client() as http:
        media = SafeFetcher(timeout_s=2, allowed_networks=["127.0.0.1/32"])
        adapter = PinterestAdapter(http, base_url=api.base_url, timeout_s=0.3, media=media)
        assert failure(lambda: adapter.publish(request_for(api))).kind is ErrorKind.unknown
        api.add_other_pins(120)

        found = adapter.reconcile(request_for(api))

    ours = [p for p in api.pins if p["note"] == "herald:attempt-1"]
    assert len(ours) == 1 and found.platform_post_id == ours[0]["id"]
    assert api.steps().count("create") == 1 and api.steps().count("list") == 2


def test_reconcile_answers_none_when_the_board_provably_lacks_it(api, adapter):
    api.add_other_pins(30)
    api.fail_next("create", 500)
    assert failure(lambda: adapter.publish(request_for(api))).kind is ErrorKind.transient

    assert adapter.reconcile(request_for(api)) is None


def test_reconcile_cannot_tell_past_the_pages_it_reads(api, adapter, monkeypatch):
    monkeypatch.setattr(pinterest_module, "RECONCILE_PAGES", 1)
    monkeypatch.setattr(pinterest_module, "PAGE_SIZE", 10)
    api.add_other_pins(30)

    assert failure(lambda: adapter.reconcile(request_for(api))).kind is ErrorKind.transient


def test_media_on_an_internal_address_is_not_passed_on(api):
    with httpx.Client() as http:
        adapter = PinterestAdapter(http, base_url=api.base_url, timeout_s=2)
        error = failure(lambda: adapter.publish(request_for(api)))

    assert error.kind is ErrorKind.invalid_content and api.requests == []


def test_a_video_is_uploaded_processed_and_pinned_with_its_first_frame_as_cover(api, adapter, monkeypatch):
    monkeypatch.setattr(pinterest_module, "MEDIA_POLL_WAIT_S", 0.01)
    api.processing_polls = 2

    result = adapter.publish(request_for(api, media=(api.media_url("clip.mp4"),)))

    [pin] = api.pins
    [(media_id, media)] = api.media.items()
    assert pin["media_source"] == {"source_type": "video_id", "media_id": media_id, "cover_image_key_frame_time": 0}
    assert media["bytes"] == len(MP4_BYTES) and result.platform_post_id == pin["id"]
    assert api.steps() == ["register", "s3", "media", "media", "media", "create"]


def test_an_image_with_the_video_is_its_cover(api, adapter, monkeypatch):
    monkeypatch.setattr(pinterest_module, "MEDIA_POLL_WAIT_S", 0.01)
    cover = api.media_url("cover.png")

    adapter.publish(request_for(api, media=(api.media_url("clip.mp4"), cover)))

    [pin] = api.pins
    assert pin["media_source"]["cover_image_url"] == cover


def test_a_video_pinterest_cannot_process_is_invalid_content(api, adapter, monkeypatch):
    monkeypatch.setattr(pinterest_module, "MEDIA_POLL_WAIT_S", 0.01)
    api.fail_processing = True

    error = failure(lambda: adapter.publish(request_for(api, media=(api.media_url("clip.mp4"),))))

    assert error.kind is ErrorKind.invalid_content and api.pins == []
