"""The Threads adapter against a real HTTP fake of the Threads API (tests/fakes/threads_server.py):
container, status polling, threads_publish, carousels."""

from __future__ import annotations

import httpx
import pytest

from processors.platforms.base import ErrorKind
from processors.platforms.threads import ThreadsAdapter
from tests.fakes.facebook_server import graph_error
from tests.fakes.threads_server import THREADS_USER_ID, FakeThreads
from tests.support.adapters import failure, request_for

pytestmark = pytest.mark.integration


@pytest.fixture
def threads():
    with FakeThreads(processing_polls=1) as server:
        yield server
        server.assert_no_violations()


def make_adapter(http: httpx.Client, server: FakeThreads, timeout_s: float = 2) -> ThreadsAdapter:
    return ThreadsAdapter(http, base_url=server.api_url, timeout_s=timeout_s, poll_interval_s=0.01, status_polls=5)


@pytest.fixture
def adapter(threads):
    with httpx.Client() as http:
        yield make_adapter(http, threads)


def post(server: FakeThreads, text: str = "Hello from Herald", media: tuple[str, ...] = (), **kwargs):
    return request_for("threads", kwargs.pop("token", server.token), text, media=media,
                       threads_user_id=THREADS_USER_ID, **kwargs)


def test_a_text_post_is_a_text_container_then_published(threads, adapter):
    result = adapter.publish(post(threads))

    [thread] = threads.threads
    assert result.platform_post_id == thread["id"] and result.url == thread["permalink"]
    assert thread["text"] == "Hello from Herald" and thread["type"] == "TEXT"
    assert [r for r in threads.requests if r[0] == "POST"] == [
        ("POST", f"/v1.0/{THREADS_USER_ID}/threads"), ("POST", f"/v1.0/{THREADS_USER_ID}/threads_publish")]
    assert threads.status_reads == 2, "polled until FINISHED"


@pytest.mark.parametrize("url, kind", [("https://cdn.example.org/a.png", "IMAGE"),
                                       ("https://cdn.example.org/clip.mp4", "VIDEO")])
def test_one_media_is_an_image_or_video_container(threads, adapter, url, kind):
    adapter.publish(post(threads, media=(url,)))

    [thread] = threads.threads
    assert thread["type"] == kind and thread["url"] == url and thread["text"] == "Hello from Herald"


def test_several_media_are_a_carousel(threads, adapter):
    media = ("https://cdn.example.org/a.jpg", "https://cdn.example.org/clip.mp4")

    adapter.publish(post(threads, media=media))

    [carousel] = threads.threads
    assert carousel["type"] == "CAROUSEL" and carousel["children"] == list(media)


def test_emoji_count_their_utf8_bytes_and_are_refused_over_500_before_any_call(threads, adapter):
    text = "🎉" * 126  # 126 graphemes, 504 counted
    error = failure(lambda: adapter.publish(post(threads, text)))

    assert error.kind is ErrorKind.invalid_content and threads.requests == []
    adapter.publish(post(threads, "🎉" * 125))  # 500: the limit itself
    assert len(threads.threads) == 1


def test_a_container_in_error_is_invalid_content(threads, adapter):
    threads.fail_container()

    error = failure(lambda: adapter.publish(post(threads, media=("https://cdn.example.org/clip.mp4",))))

    assert error.kind is ErrorKind.invalid_content and "FAILED_PROCESSING_VIDEO" in error.detail
    assert threads.threads == []


def test_an_expired_token_is_an_auth_error(threads, adapter):
    error = failure(lambda: adapter.publish(post(threads, token="expired")))

    assert error.kind is ErrorKind.auth and error.status_code == 401


def test_a_429_is_rate_limited(threads, adapter):
    threads.fail_next("publish", 429, body=graph_error(4, "Application request limit reached"))

    assert failure(lambda: adapter.publish(post(threads))).kind is ErrorKind.rate_limited
    assert threads.threads == []


def test_a_server_error_is_transient(threads, adapter):
    threads.fail_next("threads", 502, body={"error": "bad gateway"})

    assert failure(lambda: adapter.publish(post(threads))).kind is ErrorKind.transient


def test_a_timeout_on_threads_publish_is_reconciled_without_posting_twice(threads):
    threads.fail_next("publish", 200, after_create=True, hang_s=1.0)
    request = post(threads)
    with httpx.Client() as http:
        adapter = make_adapter(http, threads, timeout_s=0.3)
        assert failure(lambda: adapter.publish(request)).kind is ErrorKind.unknown

        found = adapter.reconcile(request)

    [thread] = threads.threads
    assert found is not None and found.platform_post_id == thread["id"]
    assert threads.count_for("Hello from Herald") == 1


def test_reconcile_answers_none_when_nothing_was_posted(threads, adapter):
    adapter.publish(post(threads, "something else"))

    assert adapter.reconcile(post(threads)) is None


def test_reconcile_that_cannot_read_raises(threads, adapter):
    threads.fail_next("read", 500)

    assert failure(lambda: adapter.reconcile(post(threads))).kind is ErrorKind.transient


def test_an_account_without_threads_user_id_is_refused_before_any_call(threads, adapter):
    error = failure(lambda: adapter.publish(request_for("threads", threads.token)))

    assert error.kind is ErrorKind.permanent and "threads_user_id" in error.detail and threads.requests == []


def test_a_server_error_after_publishing_is_unknown_and_reconcile_finds_the_post(threads, adapter):
    threads.fail_next("publish", 500, after_create=True)
    request = post(threads)

    assert failure(lambda: adapter.publish(request)).kind is ErrorKind.unknown

    found = adapter.reconcile(request)
    assert found is not None and found.platform_post_id == threads.threads[0]["id"]
    assert threads.count_for("Hello from Herald") == 1
