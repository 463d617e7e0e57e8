"""The Facebook Pages adapter against a real HTTP fake of the Graph API (tests/fakes/facebook_server.py)."""

from __future__ import annotations

import json

import httpx
import pytest

from processors.platforms.base import ErrorKind
from processors.platforms.facebook import FacebookAdapter
from tests.fakes.facebook_server import PAGE_ID, FakeFacebook, graph_error
from tests.support.adapters import failure, request_for

pytestmark = pytest.mark.integration


@pytest.fixture
def facebook():
    with FakeFacebook() as server:
        yield server
        server.assert_no_violations()


@pytest.fixture
def adapter(facebook):
    with httpx.Client() as http:
        yield FacebookAdapter(http, base_url=facebook.graph_url, timeout_s=2)


def post(facebook: FakeFacebook, text: str = "Hello from Herald", **kwargs):
    settings = {"page_id": PAGE_ID, **kwargs.pop("settings", {})}
    return request_for("facebook", kwargs.pop("token", facebook.token), text, **kwargs, **settings)


def test_a_text_post_goes_to_the_page_feed(facebook, adapter):
    result = adapter.publish(post(facebook))

    [created] = facebook.posts
    assert result.platform_post_id == created["id"] and created["id"].startswith(f"{PAGE_ID}_")
    assert created["message"] == "Hello from Herald"
    assert result.url == f"https://www.facebook.com/{created['id']}"
    assert facebook.requests == [("POST", f"/v23.0/{PAGE_ID}/feed")]


def test_one_photo_is_a_photo_post_with_its_caption(facebook, adapter):
    result = adapter.publish(post(facebook, media=("https://cdn.example.org/a.jpg",)))

    [created] = facebook.posts
    assert result.platform_post_id == created["id"] and created["message"] == "Hello from Herald"
    [photo] = facebook.photos.values()
    assert photo["url"] == "https://cdn.example.org/a.jpg" and photo["published"]


def test_several_photos_are_uploaded_unpublished_then_attached_to_one_post(facebook, adapter):
    media = ("https://cdn.example.org/a.jpg", "https://cdn.example.org/b.png")

    adapter.publish(post(facebook, media=media))

    [created] = facebook.posts
    assert [facebook.photos[p["media_fbid"]]["url"] for p in created["photos"]] == list(media)
    assert not any(photo["published"] for photo in facebook.photos.values())


def test_a_video_goes_to_the_videos_edge(facebook, adapter):
    result = adapter.publish(post(facebook, media=("https://cdn.example.org/clip.mp4",)))

    [created] = facebook.posts
    assert created["video"] == "https://cdn.example.org/clip.mp4" and created["message"] == "Hello from Herald"
    assert result.url == f"https://www.facebook.com/{PAGE_ID}/videos/{result.platform_post_id}"


def test_an_expired_page_token_is_an_auth_error_that_asks_for_a_refresh(facebook, adapter):
    error = failure(lambda: adapter.publish(post(facebook, token="expired")))

    assert error.kind is ErrorKind.auth and error.status_code == 401  # Graph says 400 + code 190
    assert "190/463" in error.detail
    assert facebook.posts == []


def test_throttling_is_rate_limited_until_the_business_use_case_regains_access(facebook, adapter):
    usage = {PAGE_ID: [{"type": "pages", "call_count": 100, "total_cputime": 20, "total_time": 25,
                        "estimated_time_to_regain_access": 7}]}
    facebook.fail_next("feed", 400, body=graph_error(32, "Page request limit reached"),
                       headers={"X-Business-Use-Case-Usage": json.dumps(usage)})

    error = failure(lambda: adapter.publish(post(facebook)))

    assert error.kind is ErrorKind.rate_limited and error.retry_after_s == 7 * 60
    assert facebook.posts == []


def test_a_plain_429_is_rate_limited_too(facebook, adapter):
    facebook.fail_next("feed", 429, body=graph_error(4, "Application request limit reached"))

    assert failure(lambda: adapter.publish(post(facebook))).kind is ErrorKind.rate_limited


def test_a_temporary_graph_error_is_transient(facebook, adapter):
    facebook.fail_next("feed", 400, body=graph_error(2, "Service temporarily unavailable"))

    assert failure(lambda: adapter.publish(post(facebook))).kind is ErrorKind.transient


@pytest.mark.parametrize("created", [False, True], ids=["not-posted", "posted-then-500"])
@pytest.mark.parametrize("status, body", [(500, graph_error(1, "An unknown error occurred")),
                                          (503, {"error": "not json graph"})])
def test_a_server_error_on_the_post_is_unknown_and_reconcile_tells_which(facebook, adapter, status, body, created):
    facebook.fail_next("feed", status, body=body, after_create=created)
    request = post(facebook)

    assert failure(lambda: adapter.publish(request)).kind is ErrorKind.unknown, "it may have posted"

    found = adapter.reconcile(request)
    assert (found is not None) is created
    assert facebook.count_for("Hello from Herald") == int(created)


def test_a_duplicate_post_is_invalid_content(facebook, adapter):
    facebook.fail_next("feed", 400, body=graph_error(506, "Duplicate status message", "OAuthException"))

    assert failure(lambda: adapter.publish(post(facebook))).kind is ErrorKind.invalid_content


def test_a_page_without_page_id_setting_is_refused_before_any_call(facebook, adapter):
    request = request_for("facebook", facebook.token)

    error = failure(lambda: adapter.publish(request))

    assert error.kind is ErrorKind.permanent and "page_id" in error.detail
    assert facebook.requests == []


def test_a_timeout_after_the_post_was_created_is_reconciled_without_posting_twice(facebook):
    facebook.fail_next("feed", 200, after_create=True, hang_s=1.0)
    request = post(facebook)
    with httpx.Client() as http:
        adapter = FacebookAdapter(http, base_url=facebook.graph_url, timeout_s=0.3)
        assert failure(lambda: adapter.publish(request)).kind is ErrorKind.unknown

        found = adapter.reconcile(request)

    [created] = facebook.posts
    assert found is not None and found.platform_post_id == created["id"]
    assert facebook.count_for("Hello from Herald") == 1


def test_reconcile_answers_none_when_the_page_has_no_such_post(facebook, adapter):
    adapter.publish(post(facebook, "an earlier post"))

    assert adapter.reconcile(post(facebook)) is None


def test_reconcile_that_cannot_read_the_feed_raises(facebook, adapter):
    facebook.fail_next("read", 500)

    assert failure(lambda: adapter.reconcile(post(facebook))).kind is ErrorKind.transient


def test_text_over_the_limit_is_refused_before_any_call(facebook, adapter):
    error = failure(lambda: adapter.publish(post(facebook, "x" * 63_207)))

    assert error.kind is ErrorKind.invalid_content and facebook.requests == []
