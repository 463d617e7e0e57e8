"""The LinkedIn adapter against a real HTTP fake of the Posts and Images APIs (tests/fakes/linkedin_server.py)."""

from __future__ import annotations

import re

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from herald.net.safe_fetch import SafeFetcher
from processors.platforms.base import ErrorKind
from processors.platforms.linkedin import LinkedInAdapter, little_text
from tests.fakes.http_fake import MEDIA_BYTES
from tests.fakes.linkedin_server import MEMBER, ORGANIZATION, FakeLinkedIn
from tests.support.adapters import failure, request_for

pytestmark = pytest.mark.integration

TEMPLATE = re.compile(r"\{hashtag\|\\#\|([^{}|]+)\}")
UNESCAPED = re.compile(r"(?<!\\)(?:\\\\)*[|{}@\[\]()<>#*_~]")
UNESCAPE = re.compile(r"\\(.)", re.DOTALL)


@pytest.fixture
def linkedin():
    with FakeLinkedIn() as server:
        yield server
        server.assert_no_violations()


def make_adapter(http: httpx.Client, server: FakeLinkedIn, timeout_s: float = 2) -> LinkedInAdapter:
    media = SafeFetcher(timeout_s=2, allowed_networks=["127.0.0.1/32"])  # the fake serves the media
    return LinkedInAdapter(http, base_url=server.base_url, timeout_s=timeout_s, media=media)


@pytest.fixture
def adapter(linkedin):
    with httpx.Client() as http:
        yield make_adapter(http, linkedin)


def post(server: FakeLinkedIn, text: str = "Hello from Herald", *, author: str = MEMBER, **kwargs):
    return request_for("linkedin", kwargs.pop("token", server.token), text, author_urn=author, **kwargs)


def test_a_member_post_has_the_documented_shape(linkedin, adapter):
    result = adapter.publish(post(linkedin))

    [created] = linkedin.posts
    assert result.platform_post_id == created["id"] and created["id"].startswith("urn:li:share:")
    assert result.url == f"https://www.linkedin.com/feed/update/{created['id']}/"
    assert created["author"] == MEMBER and created["commentary"] == "Hello from Herald"
    assert created["visibility"] == "PUBLIC" and created["lifecycleState"] == "PUBLISHED"
    assert "content" not in created


def test_an_organization_posts_as_itself(linkedin, adapter):
    adapter.publish(post(linkedin, author=ORGANIZATION))

    assert linkedin.posts[0]["author"] == ORGANIZATION


def test_reserved_characters_are_escaped_and_hashtags_kept(linkedin, adapter):
    text = "Launch (beta) @ 10am_UTC #herald #v2! [link] {x} <y> *z* ~w~ a|b \\ 100%"

    adapter.publish(post(linkedin, text))

    commentary = linkedin.posts[0]["commentary"]
    assert commentary == little_text(text)
    assert "{hashtag|\\#|herald}" in commentary and "\\(beta\\)" in commentary and "\\@" in commentary


def test_one_image_is_uploaded_then_attached(linkedin, adapter):
    adapter.publish(post(linkedin, media=(linkedin.media_url("a.jpg"),)))

    [created] = linkedin.posts
    [(urn, image)] = linkedin.images.items()
    assert created["content"] == {"media": {"id": urn}}
    assert image["content"] == MEDIA_BYTES and image["owner"] == MEMBER


def test_several_images_are_a_multi_image_post(linkedin, adapter):
    media = (linkedin.media_url("a.jpg"), linkedin.media_url("b.png"), linkedin.media_url("c.gif"))

    adapter.publish(post(linkedin, author=ORGANIZATION, media=media))

    [created] = linkedin.posts
    assert [i["id"] for i in created["content"]["multiImage"]["images"]] == list(linkedin.images)
    assert all(image["owner"] == ORGANIZATION for image in linkedin.images.values())


def test_videos_are_refused_before_any_call(linkedin, adapter):
    error = failure(lambda: adapter.publish(post(linkedin, media=(linkedin.media_url("clip.mp4"),))))

    assert error.kind is ErrorKind.invalid_content and linkedin.requests == []


def test_an_author_urn_of_another_kind_is_permanent(linkedin, adapter):
    error = failure(lambda: adapter.publish(post(linkedin, author="urn:li:company:1")))

    assert error.kind is ErrorKind.permanent and linkedin.requests == []


def test_an_expired_token_is_an_auth_error(linkedin, adapter):
    error = failure(lambda: adapter.publish(post(linkedin, token="expired")))

    assert error.kind is ErrorKind.auth and error.status_code == 401 and "EXPIRED_ACCESS_TOKEN" in error.detail


def test_a_429_is_rate_limited_with_its_retry_after(linkedin, adapter):
    linkedin.fail_next("posts", 429, headers={"Retry-After": "120"},
                       body={"status": 429, "code": "TOO_MANY_REQUESTS", "message": "Resource level throttle"})

    error = failure(lambda: adapter.publish(post(linkedin)))

    assert error.kind is ErrorKind.rate_limited and error.retry_after_s == 120 and linkedin.posts == []


def test_a_duplicate_is_invalid_content(linkedin, adapter):
    linkedin.fail_next("posts", 422, body={"status": 422, "code": "DUPLICATE_POST",
                                           "message": "Content is a duplicate of urn:li:share:1"})

    assert failure(lambda: adapter.publish(post(linkedin))).kind is ErrorKind.invalid_content


@pytest.mark.parametrize("route, kind", [("posts", ErrorKind.unknown), ("images", ErrorKind.transient),
                                         ("upload", ErrorKind.transient)])
def test_server_errors_are_transient_until_the_post_itself_may_have_been_made(linkedin, adapter, route, kind):
    linkedin.fail_next(route, 503)
    request = post(linkedin, media=(linkedin.media_url("a.jpg"),))

    assert failure(lambda: adapter.publish(request)).kind is kind
    assert linkedin.posts == [] and adapter.reconcile(request) is None


def test_a_timeout_after_the_post_was_created_is_reconciled_without_posting_twice(linkedin):
    linkedin.fail_next("posts", 201, after_create=True, hang_s=1.0)
    request = post(linkedin)
    with httpx.Client() as http:
        adapter = make_adapter(http, linkedin, timeout_s=0.3)
        assert failure(lambda: adapter.publish(request)).kind is ErrorKind.unknown

        found = adapter.reconcile(request)

    [created] = linkedin.posts
    assert found is not None and found.platform_post_id == created["id"]
    assert linkedin.count_for("Hello from Herald") == 1


def test_reconcile_answers_none_when_the_author_has_no_such_post(linkedin, adapter):
    adapter.publish(post(linkedin, "another post"))

    assert adapter.reconcile(post(linkedin)) is None


def test_without_read_permission_reconcile_says_it_cannot_tell(adapter):
    with FakeLinkedIn(readable=False) as unreadable, httpx.Client() as http:
        error = failure(lambda: make_adapter(http, unreadable).reconcile(post(unreadable)))
        unreadable.assert_no_violations()

    assert error.kind is ErrorKind.unknown and "an admin must check" in error.detail


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab #_@()[]{}<>|*~\\\n🎉1"), max_size=40))
def test_little_text_escapes_every_reserved_character_and_reads_back_as_the_text(text):
    escaped = little_text(text)

    assert not UNESCAPED.search(TEMPLATE.sub("", escaped)), escaped
    assert UNESCAPE.sub(r"\1", TEMPLATE.sub(lambda m: "#" + UNESCAPE.sub(r"\1", m.group(1)), escaped)) == text
