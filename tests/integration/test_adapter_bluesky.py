"""The Bluesky adapter against a real HTTP fake of a PDS that checks requests against the AT Protocol docs."""

from __future__ import annotations

import httpx
import pytest

from herald.net.safe_fetch import SafeFetcher
from processors.platforms.base import AccountCredentials, ErrorKind, PublishError, PublishRequest
from processors.platforms.bluesky import BlueskyAdapter, tid_for
from tests.fakes.bluesky_server import APP_PASSWORD, DID, HANDLE, KNOWN_HANDLES, FakeBluesky, rate_limit_headers


@pytest.fixture
def pds():
    with FakeBluesky() as server:
        yield server
        assert server.violations == []


@pytest.fixture
def adapter(pds):
    with httpx.Client() as http:
        media = SafeFetcher(timeout_s=2, allowed_networks=["127.0.0.1/32"])
        yield BlueskyAdapter(http, base_url=pds.base_url, timeout_s=2, media=media)
        media.close()


def request_for(text: str = "Hello from Herald", *, key: str = "attempt-1", password: str = APP_PASSWORD,
                media: tuple[str, ...] = ()) -> PublishRequest:
    account = AccountCredentials("acct-1", "bluesky", HANDLE, password, None)
    return PublishRequest(attempt_key=key, account=account, text=text, media_urls=media)


def failure(call) -> PublishError:
    with pytest.raises(PublishError) as raised:
        call()
    return raised.value


def test_publish_creates_one_post_with_byte_offset_facets(pds, adapter):
    text = "🎉 Ünïcode first: see https://example.com/a?b=1 and ask @alice.bsky.social, not @nobody.example.org"

    result = adapter.publish(request_for(text))

    [post] = pds.posts
    assert result.platform_post_id == post["uri"] == f"at://{DID}/app.bsky.feed.post/{tid_for('attempt-1')}"
    assert result.url == f"https://bsky.app/profile/{HANDLE}/post/{tid_for('attempt-1')}"
    record = post["value"]
    assert record["text"] == text
    data = text.encode()
    spans = {(f["features"][0]["$type"].rsplit("#", 1)[1], data[f["index"]["byteStart"]:f["index"]["byteEnd"]].decode())
             for f in record["facets"]}
    assert spans == {("link", "https://example.com/a?b=1"), ("mention", "@alice.bsky.social")}  # nobody: unresolved
    mention = next(f for f in record["facets"] if f["features"][0]["$type"].endswith("#mention"))
    assert mention["features"][0]["did"] == KNOWN_HANDLES["alice.bsky.social"]
    assert mention["index"]["byteStart"] != text.index("@alice")  # bytes, not characters


def test_the_session_is_kept_between_posts(pds, adapter):
    adapter.publish(request_for(key="a"))
    adapter.publish(request_for(key="b"))

    assert pds.sessions_created == 1 and len(pds.posts) == 2


def test_an_expired_access_token_is_refreshed_and_the_post_made_once(pds, adapter):
    adapter.publish(request_for(key="a"))
    pds.expire_access_tokens()

    adapter.publish(request_for(key="b"))

    assert pds.refreshes == 1 and pds.sessions_created == 1
    assert len(pds.posts) == 2


def test_when_the_refresh_token_is_spent_too_a_new_session_is_created(pds, adapter):
    adapter.publish(request_for(key="a"))
    pds.expire_access_tokens()
    pds.expire_refresh_tokens()

    adapter.publish(request_for(key="b"))

    assert pds.sessions_created == 2 and len(pds.posts) == 2


def test_a_wrong_app_password_is_an_auth_error(pds, adapter):
    error = failure(lambda: adapter.publish(request_for(password="wrong")))

    assert error.kind is ErrorKind.auth and "Invalid identifier or password" in error.detail
    assert pds.posts == []


def test_429_is_rate_limited_until_the_ratelimit_reset(pds, adapter):
    pds.fail_next("create", 429, rate_limit_headers(30),
                  {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"})

    error = failure(lambda: adapter.publish(request_for()))

    assert error.kind is ErrorKind.rate_limited
    assert 20 <= error.retry_after_s <= 30
    assert pds.posts == []


def test_server_error_is_transient(pds, adapter):
    pds.fail_next("create", 502, body={"error": "InternalServerError", "message": "Internal Server Error"})

    assert failure(lambda: adapter.publish(request_for())).kind is ErrorKind.transient
    assert pds.posts == []


def test_a_timeout_after_the_post_was_created_is_unknown_and_reconciled_without_a_second_post(pds):
    pds.fail_next("create", delay_s=1.0)
    with httpx.Client() as http:
        adapter = BlueskyAdapter(http, base_url=pds.base_url, timeout_s=0.3)
        error = failure(lambda: adapter.publish(request_for()))
        assert error.kind is ErrorKind.unknown

        found = adapter.reconcile(request_for())

    [post] = pds.posts
    assert found is not None and found.platform_post_id == post["uri"]
    assert pds.steps().count("create") == 1


def test_a_retry_after_a_5xx_that_had_posted_returns_that_post(pds, adapter):
    pds.fail_next("create", 500, after_create=True, body={"error": "InternalServerError", "message": "oops"})
    assert failure(lambda: adapter.publish(request_for())).kind is ErrorKind.transient

    again = adapter.publish(request_for())

    [post] = pds.posts
    assert again.platform_post_id == post["uri"]


def test_reconcile_answers_none_when_the_post_was_never_made(pds, adapter):
    pds.fail_next("create", 503)
    assert failure(lambda: adapter.publish(request_for())).kind is ErrorKind.transient

    assert adapter.reconcile(request_for()) is None


def test_the_record_key_is_a_tid_fixed_by_the_attempt_key():
    assert tid_for("x") == tid_for("x") != tid_for("y")
    assert len(tid_for("x")) == 13 and tid_for("x")[0] in "234567abcdefghij"


def test_images_are_uploaded_as_blobs_and_embedded(pds, adapter):
    adapter.publish(request_for(media=(pds.media_url("one.png"), pds.media_url("two.jpg"))))

    [post] = pds.posts
    images = post["value"]["embed"]["images"]
    assert [i["image"]["ref"]["$link"] for i in images] == list(pds.blobs)
    assert all(b["mimeType"] == "image/png" and b["size"] > 0 for b in pds.blobs.values())


def test_a_video_is_uploaded_as_a_blob_and_embedded_alone(pds, adapter):
    adapter.publish(request_for("Watch", media=(pds.media_url("clip.mp4"),)))

    [post] = pds.posts
    [blob] = pds.blobs.values()
    assert post["value"]["embed"] == {"$type": "app.bsky.embed.video", "video": blob}
    assert blob["mimeType"] == "video/mp4"

    mixed = failure(lambda: adapter.publish(request_for(key="b", media=(pds.media_url("clip.mp4"),
                                                                        pds.media_url("a.png")))))
    assert mixed.kind is ErrorKind.invalid_content


def test_300_graphemes_pass_and_301_are_refused_without_a_request(pds, adapter):
    family = "👨‍👩‍👧"  # one grapheme, five code points, 18 bytes
    error = failure(lambda: adapter.publish(request_for("a" * 301)))
    assert error.kind is ErrorKind.invalid_content
    assert pds.requests == []

    adapter.publish(request_for(family * 150 + "b" * 150))
    assert len(pds.posts) == 1


def test_media_on_an_internal_address_is_refused(pds):
    with httpx.Client() as http:
        adapter = BlueskyAdapter(http, base_url=pds.base_url, timeout_s=2)  # no allowance for 127.0.0.1
        error = failure(lambda: adapter.publish(request_for(media=(pds.media_url("one.png"),))))

    assert error.kind is ErrorKind.invalid_content and "not public" in error.detail
    assert pds.posts == []
