"""The YouTube adapter against a real HTTP fake of the Data API v3 resumable upload protocol."""

from __future__ import annotations

import httpx
import pytest

from herald.net.safe_fetch import SafeFetcher
from processors.platforms import youtube as youtube_module
from processors.platforms.base import AccountCredentials, ErrorKind, PublishError, PublishRequest
from processors.platforms.youtube import YouTubeAdapter
from tests.fakes.platform_server import MP4_BYTES
from tests.fakes.youtube_server import TOKEN, FakeYouTube, quota_error


@pytest.fixture(autouse=True)
def quick_resume(monkeypatch):
    monkeypatch.setattr(youtube_module, "RESUME_WAIT_S", 0.01)


@pytest.fixture
def api():
    with FakeYouTube() as server:
        yield server
        assert server.violations == []


def make_adapter(api: FakeYouTube, http: httpx.Client, timeout_s: float = 2) -> YouTubeAdapter:
    media = SafeFetcher(timeout_s=2, allowed_networks=["127.0.0.1/32"], content_types=("video/",))
    return YouTubeAdapter(http, base_url=api.base_url, timeout_s=timeout_s, media=media)


@pytest.fixture
def adapter(api):
    with httpx.Client() as http:
        yield make_adapter(api, http)


def request_for(api: FakeYouTube, text: str = "Launch day\nHow Herald publishes", *, key: str = "attempt-1",
                token: str = TOKEN, media: tuple[str, ...] | None = None, settings=None) -> PublishRequest:
    account = AccountCredentials("acct-1", "youtube", "herald", token, None, settings or {})
    media = (api.media_url("launch.mp4"),) if media is None else media
    return PublishRequest(attempt_key=key, account=account, text=text, media_urls=media)


def failure(call) -> PublishError:
    with pytest.raises(PublishError) as raised:
        call()
    return raised.value


def test_publish_starts_a_session_and_uploads_the_video_once(api, adapter):
    result = adapter.publish(request_for(api, settings={"privacy_status": "unlisted"}))

    [video] = api.videos
    assert result.platform_post_id == video["id"] and result.url == f"https://www.youtube.com/watch?v={video['id']}"
    assert video["snippet"]["title"] == "Launch day" and video["snippet"]["description"] == "How Herald publishes"
    assert video["status"]["privacyStatus"] == "unlisted"
    assert video["bytes"] == len(MP4_BYTES)
    assert api.steps() == ["init", "upload"]


def test_an_interrupted_upload_is_resumed_from_where_the_session_stands(api, adapter):
    api.interrupt_next_upload(keep=700)

    adapter.publish(request_for(api))

    [video] = api.videos
    assert video["bytes"] == len(MP4_BYTES)
    assert api.steps() == ["init", "upload", "status", "upload"]


def test_a_timeout_after_the_upload_completed_is_settled_by_the_session_without_a_second_video(api):
    api.fail_next("upload", delay_s=1.0)
    with httpx.Client() as http:
        adapter = make_adapter(api, http, timeout_s=0.3)
        result = adapter.publish(request_for(api))

    [video] = api.videos
    assert result.platform_post_id == video["id"]
    assert api.steps() == ["init", "upload", "status"]


def test_when_the_session_cannot_answer_it_is_unknown_and_reconcile_asks_it_later(api, adapter, monkeypatch):
    monkeypatch.setattr(youtube_module, "UPLOAD_ATTEMPTS", 2)
    api.fail_next("upload", 500, after_create=True)  # the video exists; the answer is an error
    api.fail_next("status", 503)

    error = failure(lambda: adapter.publish(request_for(api)))
    assert error.kind is ErrorKind.unknown

    found = adapter.reconcile(request_for(api))

    [video] = api.videos
    assert found.platform_post_id == video["id"]
    assert api.steps().count("upload") == 1


def test_reconcile_of_an_incomplete_upload_answers_none(api, adapter, monkeypatch):
    monkeypatch.setattr(youtube_module, "UPLOAD_ATTEMPTS", 1)
    api.interrupt_next_upload(keep=100)
    assert failure(lambda: adapter.publish(request_for(api))).kind is ErrorKind.unknown

    assert adapter.reconcile(request_for(api)) is None
    assert api.videos == []


def test_without_the_session_reconcile_finds_the_video_in_the_channels_uploads(api):
    api.fail_next("upload", delay_s=1.0)
    api.fail_next("status", 503, n=youtube_module.UPLOAD_ATTEMPTS)
    with httpx.Client() as http:
        assert failure(lambda: make_adapter(api, http, timeout_s=0.3).publish(request_for(api))).kind \
            is ErrorKind.unknown
        restarted = make_adapter(api, http)  # another process: no session in memory

        found = restarted.reconcile(request_for(api))

    [video] = api.videos
    assert found.platform_post_id == video["id"]
    assert api.steps().count("upload") == 1


def test_without_the_session_and_not_yet_listed_reconcile_says_it_cannot_tell(api, adapter):
    api.list_uploads = False
    adapter.publish(request_for(api))

    error = failure(lambda: adapter.reconcile(request_for(api, key="another-process")))

    assert error.kind is ErrorKind.transient and "cannot tell" in error.detail


def test_an_expired_token_is_an_auth_error(api, adapter):
    api.revoke()

    error = failure(lambda: adapter.publish(request_for(api)))

    assert error.kind is ErrorKind.auth and error.status_code == 401


def test_quota_exceeded_is_rate_limited(api, adapter):
    api.fail_next("init", 403, body=quota_error())

    assert failure(lambda: adapter.publish(request_for(api))).kind is ErrorKind.rate_limited
    assert api.videos == []


def test_429_is_rate_limited_with_retry_after(api, adapter):
    api.fail_next("init", 429, {"Retry-After": "20"}, body={"error": {"code": 429, "message": "Too Many Requests",
                                                                       "errors": [{"reason": "rateLimitExceeded"}]}})

    error = failure(lambda: adapter.publish(request_for(api)))

    assert error.kind is ErrorKind.rate_limited and error.retry_after_s == 20


def test_server_error_at_the_start_is_transient(api, adapter):
    api.fail_next("init", 500, body={"error": {"code": 500, "message": "Backend Error", "errors": []}})

    assert failure(lambda: adapter.publish(request_for(api))).kind is ErrorKind.transient
    assert api.videos == []


def test_content_youtube_would_refuse_is_refused_before_sending(api, adapter):
    assert failure(lambda: adapter.publish(request_for(api, media=()))).kind is ErrorKind.invalid_content
    assert failure(lambda: adapter.publish(request_for(api, media=(api.media_url("a.png"),)))).kind \
        is ErrorKind.invalid_content
    assert failure(lambda: adapter.publish(request_for(api, "a <b> title\nx"))).kind is ErrorKind.invalid_content
    assert failure(lambda: adapter.publish(request_for(api, "t" * 101))).kind is ErrorKind.invalid_content
    assert api.requests == []
