"""The TikTok adapter against a real HTTP fake of the Content Posting API that checks requests against the docs."""

from __future__ import annotations

import httpx
import pytest

from herald.net.safe_fetch import SafeFetcher
from processors.platforms import tiktok as tiktok_module
from processors.platforms.base import AccountCredentials, ErrorKind, PublishError, PublishRequest
from processors.platforms.tiktok import TikTokAdapter
from tests.fakes.platform_server import MP4_BYTES
from tests.fakes.tiktok_server import TOKEN, FakeTikTok, tiktok_error


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch):
    monkeypatch.setattr(tiktok_module, "STATUS_WAIT_S", 0.01)
    monkeypatch.setattr(tiktok_module, "CHUNK_WAIT_S", 0.01)


@pytest.fixture
def api():
    with FakeTikTok() as server:
        yield server
        assert server.violations == []


def make_adapter(api: FakeTikTok, http: httpx.Client, timeout_s: float = 2) -> TikTokAdapter:
    media = SafeFetcher(timeout_s=2, allowed_networks=["127.0.0.1/32"], content_types=("video/",))
    return TikTokAdapter(http, base_url=api.base_url, timeout_s=timeout_s, media=media)


@pytest.fixture
def adapter(api):
    with httpx.Client() as http:
        yield make_adapter(api, http)


def request_for(api: FakeTikTok, text: str = "Behind the scenes #herald", *, key: str = "attempt-1", token: str = TOKEN,
                media: tuple[str, ...] | None = None, settings=None) -> PublishRequest:
    account = AccountCredentials("acct-1", "tiktok", "herald", token, None, settings or {})
    media = (api.media_url("clip.mp4"),) if media is None else media
    return PublishRequest(attempt_key=key, account=account, text=text, media_urls=media)


def failure(call) -> PublishError:
    with pytest.raises(PublishError) as raised:
        call()
    return raised.value


def test_publish_uploads_the_file_and_reports_the_post(api, adapter):
    result = adapter.publish(request_for(api))

    [post] = api.posts
    assert result.platform_post_id == post["post_id"]
    assert result.url == f"https://www.tiktok.com/@herald/video/{post['post_id']}"
    assert (post["title"], post["privacy"], post["source"]) == ("Behind the scenes #herald", "SELF_ONLY", "FILE_UPLOAD")
    assert post["received"] == len(MP4_BYTES) and post["chunks"] == 1
    assert api.steps() == ["creator", "init", "upload", "status"]


def test_status_is_polled_while_tiktok_processes():
    with FakeTikTok(processing_polls=2) as api, httpx.Client() as http:
        result = make_adapter(api, http).publish(request_for(api))

        [post] = api.posts
        assert result.platform_post_id == post["post_id"]
        assert api.steps().count("status") == 3
        assert api.violations == []


def test_a_post_still_processing_after_the_polls_is_reported_by_its_publish_id(monkeypatch):
    monkeypatch.setattr(tiktok_module, "STATUS_POLLS", 2)
    with FakeTikTok(processing_polls=10) as api, httpx.Client() as http:
        result = make_adapter(api, http).publish(request_for(api))

        [post] = api.posts
        assert result.platform_post_id == post["publish_id"] and result.url is None
        assert api.violations == []


def test_pull_from_url_lets_tiktok_fetch_the_video(api, adapter):
    adapter.publish(request_for(api, settings={"source": "PULL_FROM_URL", "privacy_level": "PUBLIC_TO_EVERYONE"}))

    [post] = api.posts
    assert (post["source"], post["privacy"]) == ("PULL_FROM_URL", "PUBLIC_TO_EVERYONE")
    assert "upload" not in api.steps()


def test_an_unverified_pull_url_is_permanent(api, adapter):
    api.verified_prefixes = ["https://media.example.com/"]

    error = failure(lambda: adapter.publish(request_for(api, settings={"source": "PULL_FROM_URL"})))

    assert error.kind is ErrorKind.permanent and "url_ownership_unverified" in error.detail


def test_a_privacy_level_the_creator_lacks_is_refused_before_init(api, adapter):
    error = failure(lambda: adapter.publish(request_for(api, settings={"privacy_level": "FOLLOWER_OF_CREATOR"})))

    assert error.kind is ErrorKind.permanent
    assert api.steps() == ["creator"]


def test_an_expired_token_is_an_auth_error(api, adapter):
    api.revoke()

    error = failure(lambda: adapter.publish(request_for(api)))

    assert error.kind is ErrorKind.auth and error.status_code == 401


def test_429_is_rate_limited(api, adapter):
    api.fail_next("init", 429, {"Retry-After": "60"}, tiktok_error("rate_limit_exceeded"))

    error = failure(lambda: adapter.publish(request_for(api)))

    assert error.kind is ErrorKind.rate_limited and error.retry_after_s == 60
    assert api.posts == []


def test_server_error_is_transient(api, adapter):
    api.fail_next("init", 500, body=tiktok_error("internal_error"))

    assert failure(lambda: adapter.publish(request_for(api))).kind is ErrorKind.transient


def test_a_chunk_answered_with_5xx_is_sent_again(api, adapter):
    api.fail_next("upload", 502)

    adapter.publish(request_for(api))

    assert len(api.posts) == 1 and api.steps().count("upload") == 2


def test_a_timeout_after_the_upload_completed_is_unknown_and_reconciled_without_a_second_post(api):
    api.fail_next("upload", delay_s=1.0)
    with httpx.Client() as http:
        adapter = make_adapter(api, http, timeout_s=0.3)
        assert failure(lambda: adapter.publish(request_for(api))).kind is ErrorKind.unknown

        found = adapter.reconcile(request_for(api))

    [post] = api.posts
    assert found.platform_post_id == post["post_id"]
    assert api.steps().count("init") == 1


def test_a_status_that_cannot_be_read_after_the_upload_is_unknown_not_transient(api):
    api.fail_next("status", 503, body=tiktok_error("internal_error"))
    with httpx.Client() as http:
        adapter = make_adapter(api, http)
        error = failure(lambda: adapter.publish(request_for(api)))
        assert error.kind is ErrorKind.unknown, "the post was made: a plain retry would post it twice"

        found = adapter.reconcile(request_for(api))

    [post] = api.posts
    assert found.platform_post_id == post["post_id"]


def test_reconcile_of_a_failed_publish_answers_none(monkeypatch):
    monkeypatch.setattr(tiktok_module, "STATUS_POLLS", 1)
    with FakeTikTok(processing_polls=5) as slow, httpx.Client() as http:
        adapter = make_adapter(slow, http)
        result = adapter.publish(request_for(slow))
        slow.fail_publish(result.platform_post_id, "video_pull_failed")

        assert adapter.reconcile(request_for(slow)) is None
        assert slow.violations == []


def test_reconcile_without_a_known_publish_id_says_it_cannot_tell(api, adapter):
    error = failure(lambda: adapter.reconcile(request_for(api)))

    assert error.kind is ErrorKind.transient and "cannot tell" in error.detail


def test_photos_are_posted_pulled_from_their_urls(api, adapter):
    photos = (api.media_url("one.jpg"), api.media_url("two.webp"))

    result = adapter.publish(request_for(api, "Two photos", media=photos))

    [post] = api.posts
    assert post["photos"] == list(photos) and post["title"] == "Two photos"
    assert result.platform_post_id == post["post_id"]
    assert "upload" not in api.steps()


def test_png_photos_mixed_media_and_long_captions_are_refused_before_sending(api, adapter):
    assert failure(lambda: adapter.publish(request_for(api, media=(api.media_url("a.png"),)))).kind \
        is ErrorKind.invalid_content
    mixed = (api.media_url("a.jpg"), api.media_url("b.mp4"))
    assert failure(lambda: adapter.publish(request_for(api, media=mixed))).kind is ErrorKind.invalid_content
    assert failure(lambda: adapter.publish(request_for(api, "x" * 2201))).kind is ErrorKind.invalid_content
    assert api.requests == []
