"""The Instagram adapter against a real HTTP fake of the Graph API's content publishing
(tests/fakes/instagram_server.py): container, status polling, media_publish, carousels."""

from __future__ import annotations

import json

import httpx
import pytest

from processors.platforms.base import ErrorKind
from processors.platforms.instagram import InstagramAdapter
from tests.fakes.facebook_server import graph_error
from tests.fakes.instagram_server import IG_USER_ID, FakeInstagram
from tests.support.adapters import failure, request_for

pytestmark = pytest.mark.integration

PHOTO = "https://cdn.example.org/a.jpg"


@pytest.fixture
def instagram():
    with FakeInstagram(processing_polls=2) as server:
        yield server
        server.assert_no_violations()


def make_adapter(http: httpx.Client, server: FakeInstagram, timeout_s: float = 2) -> InstagramAdapter:
    return InstagramAdapter(http, base_url=server.graph_url, timeout_s=timeout_s, poll_interval_s=0.01, status_polls=5)


@pytest.fixture
def adapter(instagram):
    with httpx.Client() as http:
        yield make_adapter(http, instagram)


def post(server: FakeInstagram, text: str = "Hello from Herald", media: tuple[str, ...] = (PHOTO,), **kwargs):
    return request_for("instagram", kwargs.pop("token", server.token), text, media=media, ig_user_id=IG_USER_ID,
                       **kwargs)


def test_an_image_is_a_container_polled_until_finished_then_published(instagram, adapter):
    result = adapter.publish(post(instagram))

    [media] = instagram.media
    assert result.platform_post_id == media["id"] and result.url == media["permalink"]
    assert media["caption"] == "Hello from Herald" and media["url"] == PHOTO and media["type"] == "IMAGE"
    assert instagram.status_reads == 3, "IN_PROGRESS twice, then FINISHED"
    assert [r for r in instagram.requests if r[0] == "POST"] == [
        ("POST", f"/v23.0/{IG_USER_ID}/media"), ("POST", f"/v23.0/{IG_USER_ID}/media_publish")]


def test_a_video_is_published_as_a_reel(instagram, adapter):
    adapter.publish(post(instagram, media=("https://cdn.example.org/clip.mp4",)))

    assert instagram.media[0]["type"] == "REELS"


def test_several_media_are_a_carousel_of_item_containers(instagram, adapter):
    media = (PHOTO, "https://cdn.example.org/clip.mp4", "https://cdn.example.org/c.jpeg")

    adapter.publish(post(instagram, media=media))

    [carousel] = instagram.media
    assert carousel["type"] == "CAROUSEL" and carousel["children"] == list(media)
    assert carousel["caption"] == "Hello from Herald"


def test_a_container_that_fails_processing_is_invalid_content_and_nothing_is_published(instagram, adapter):
    instagram.fail_container()

    error = failure(lambda: adapter.publish(post(instagram)))

    assert error.kind is ErrorKind.invalid_content and "2207026" in error.detail
    assert instagram.media == []


def test_a_container_still_processing_after_the_polls_is_transient(instagram):
    with FakeInstagram(processing_polls=50) as slow, httpx.Client() as http:
        error = failure(lambda: make_adapter(http, slow).publish(post(slow)))
        assert error.kind is ErrorKind.transient and "still processing" in error.detail
        assert slow.media == []
        slow.assert_no_violations()


def test_an_expired_token_is_an_auth_error(instagram, adapter):
    error = failure(lambda: adapter.publish(post(instagram, token="old")))

    assert error.kind is ErrorKind.auth and error.status_code == 401


def test_the_publishing_limit_is_rate_limited(instagram, adapter):
    usage = {IG_USER_ID: [{"type": "instagram", "call_count": 100, "estimated_time_to_regain_access": 30}]}
    limit = graph_error(9, "The account has reached its publishing limit", subcode=2207042)
    instagram.fail_next("publish", 400, headers={"X-Business-Use-Case-Usage": json.dumps(usage)}, body=limit)

    error = failure(lambda: adapter.publish(post(instagram)))

    assert error.kind is ErrorKind.rate_limited and error.retry_after_s == 30 * 60


def test_a_429_on_container_creation_is_rate_limited(instagram, adapter):
    instagram.fail_next("media", 429, body=graph_error(4, "Application request limit reached"))

    assert failure(lambda: adapter.publish(post(instagram))).kind is ErrorKind.rate_limited


def test_a_server_error_creating_a_container_is_transient(instagram, adapter):
    instagram.fail_next("media", 500)

    assert failure(lambda: adapter.publish(post(instagram))).kind is ErrorKind.transient
    assert instagram.media == []


def test_a_server_error_on_media_publish_is_unknown_and_reconcile_finds_nothing(instagram, adapter):
    instagram.fail_next("publish", 500)
    request = post(instagram)

    assert failure(lambda: adapter.publish(request)).kind is ErrorKind.unknown, "it may have published"
    assert adapter.reconcile(request) is None and instagram.media == []


def test_png_images_are_refused_before_any_call(instagram, adapter):
    error = failure(lambda: adapter.publish(post(instagram, media=("https://cdn.example.org/a.png",))))

    assert error.kind is ErrorKind.invalid_content and "jpeg" in error.detail.lower()
    assert instagram.requests == []


def test_a_timeout_on_media_publish_is_reconciled_without_publishing_twice(instagram):
    instagram.fail_next("publish", 200, after_create=True, hang_s=1.0)
    request = post(instagram)
    with httpx.Client() as http:
        adapter = make_adapter(http, instagram, timeout_s=0.3)
        assert failure(lambda: adapter.publish(request)).kind is ErrorKind.unknown

        found = adapter.reconcile(request)

    [media] = instagram.media
    assert found is not None and found.platform_post_id == media["id"] and found.url == media["permalink"]
    assert instagram.count_for("Hello from Herald") == 1


def test_a_timeout_creating_a_container_is_transient_not_unknown(instagram):
    instagram.fail_next("media", 200, hang_s=1.0)
    with httpx.Client() as http:
        error = failure(lambda: make_adapter(http, instagram, timeout_s=0.3).publish(post(instagram)))
    assert error.kind is ErrorKind.transient, "a container is not a post: nothing to reconcile"


def test_reconcile_answers_none_when_nothing_was_published(instagram, adapter):
    adapter.publish(post(instagram, "another caption"))

    assert adapter.reconcile(post(instagram)) is None


def test_reconcile_that_cannot_list_media_raises(instagram, adapter):
    instagram.fail_next("read", 503)

    assert failure(lambda: adapter.reconcile(post(instagram))).kind is ErrorKind.transient
