"""The X adapter against a real HTTP fake of the X API v2 (tests/fakes/x_server.py): posts, media,
threads as reply chains, faults, reconcile, and OAuth 2.0 with PKCE."""

from __future__ import annotations

import time

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.post.platform_rules import x_weighted_length
from herald.net.safe_fetch import SafeFetcher
from processors.platforms import oauth
from processors.platforms.base import ErrorKind, Pkce
from processors.platforms.oauth import OAuthClient
from processors.platforms.x import XAdapter, thread_parts
from tests.fakes.x_server import CLIENT, FakeX
from tests.support.adapters import failure, request_for

pytestmark = pytest.mark.integration

LONG = " ".join(f"Sentence number {i} of a long announcement that goes on." for i in range(12))  # ~700 weighted


@pytest.fixture
def x():
    with FakeX() as server:
        yield server
        server.assert_no_violations()


def make_adapter(http: httpx.Client, server: FakeX, timeout_s: float = 2) -> XAdapter:
    media = SafeFetcher(timeout_s=2, allowed_networks=["127.0.0.1/32"])  # the fake serves the media
    return XAdapter(http, base_url=server.base_url, timeout_s=timeout_s, media=media, poll_interval_s=0.01,
                    status_polls=5)


@pytest.fixture
def adapter(x):
    with httpx.Client() as http:
        yield make_adapter(http, x)


def post(server: FakeX, text: str = "Hello from Herald", **kwargs):
    return request_for("x", kwargs.pop("token", server.token), text, **kwargs)


def test_a_post_is_created_with_the_users_token(x, adapter):
    result = adapter.publish(post(x))

    [tweet] = x.tweets
    assert result.platform_post_id == tweet["id"] and result.url == f"https://x.com/i/web/status/{tweet['id']}"
    assert tweet["text"] == "Hello from Herald" and tweet["reply_to"] is None


def test_images_are_uploaded_then_attached(x, adapter):
    adapter.publish(post(x, media=(x.media_url("a.jpg"), x.media_url("b.png"))))

    [tweet] = x.tweets
    assert tweet["media_ids"] == list(x.uploads)
    assert [u["category"] for u in x.uploads.values()] == ["tweet_image", "tweet_image"]


def test_a_video_is_awaited_until_processed(x, adapter):
    with FakeX(processing_polls=3) as slow, httpx.Client() as http:
        make_adapter(http, slow).publish(post(slow, media=(slow.media_url("clip.mp4"),)))
        [upload] = slow.uploads.values()
        assert upload["category"] == "tweet_video" and upload["reads"] == 3 and upload["state"] == "succeeded"
        assert slow.tweets[0]["media_ids"] == [upload["id"]]
        slow.assert_no_violations()


def test_a_long_text_is_a_thread_of_replies(x, adapter):
    parts = thread_parts(LONG)
    assert len(parts) == 3

    result = adapter.publish(post(x, LONG, media=(x.media_url("a.jpg"),)))

    assert [t["text"] for t in x.tweets] == parts
    assert result.platform_post_id == x.tweets[0]["id"]
    assert [t["reply_to"] for t in x.tweets] == [None, x.tweets[0]["id"], x.tweets[1]["id"]]
    assert x.tweets[0]["media_ids"] and not x.tweets[1]["media_ids"], "media go on the first post"


def test_a_thread_failing_midway_is_unknown_and_reconcile_posts_only_the_rest(x, adapter):
    x.fail_part(2)
    request = post(x, LONG)

    error = failure(lambda: adapter.publish(request))

    assert error.kind is ErrorKind.unknown and "thread part 2 of 3" in error.detail
    assert len(x.tweets) == 1
    found = adapter.reconcile(request)
    assert [t["text"] for t in x.tweets] == thread_parts(LONG), "each part once, in order"
    assert found.platform_post_id == x.tweets[0]["id"]
    assert [t["reply_to"] for t in x.tweets[1:]] == [x.tweets[0]["id"], x.tweets[1]["id"]]


def test_an_expired_token_is_an_auth_error(x, adapter):
    error = failure(lambda: adapter.publish(post(x, token="expired")))

    assert error.kind is ErrorKind.auth and error.status_code == 401


def test_a_429_waits_for_the_rate_limit_reset(x, adapter):
    x.fail_next("tweets", 429, headers={"x-rate-limit-limit": "100", "x-rate-limit-remaining": "0",
                                        "x-rate-limit-reset": str(int(time.time()) + 600)})

    error = failure(lambda: adapter.publish(post(x)))

    assert error.kind is ErrorKind.rate_limited and 590 <= error.retry_after_s <= 600
    assert x.tweets == []


def test_a_spent_daily_user_cap_waits_for_its_own_reset(x, adapter):
    x.fail_next("tweets", 429, headers={"x-rate-limit-reset": str(int(time.time()) + 60),
                                        "x-user-limit-24hour-limit": "17", "x-user-limit-24hour-remaining": "0",
                                        "x-user-limit-24hour-reset": str(int(time.time()) + 7200)})

    error = failure(lambda: adapter.publish(post(x)))

    assert error.kind is ErrorKind.rate_limited and 7190 <= error.retry_after_s <= 7200


@pytest.mark.parametrize("route, kind", [("tweets", ErrorKind.unknown), ("upload", ErrorKind.transient)])
def test_server_errors_are_transient_until_the_post_itself_may_have_been_made(x, adapter, route, kind):
    x.fail_next(route, 503)
    request = post(x, media=(x.media_url("a.jpg"),))

    assert failure(lambda: adapter.publish(request)).kind is kind
    assert x.tweets == [] and adapter.reconcile(request) is None


def test_a_timeout_after_the_post_was_created_is_reconciled_without_posting_twice(x):
    x.fail_next("tweets", 201, after_create=True, hang_s=1.0)
    request = post(x, "Launch day & more: https://example.org/launch <3")
    with httpx.Client() as http:
        adapter = make_adapter(http, x, timeout_s=0.3)
        assert failure(lambda: adapter.publish(request)).kind is ErrorKind.unknown

        found = adapter.reconcile(request)  # the timeline shows it escaped and with a t.co link

    [tweet] = x.tweets
    assert found is not None and found.platform_post_id == tweet["id"]


def test_a_retry_refused_as_duplicate_takes_the_post_already_there(x, adapter):
    first = adapter.publish(post(x))

    again = adapter.publish(post(x))  # e.g. a retry after a 503 whose post went through

    assert again == first and x.count_for("Hello from Herald") == 1


def test_reconcile_answers_none_when_nothing_was_posted(x, adapter):
    adapter.publish(post(x, "something else"))

    assert adapter.reconcile(post(x)) is None


def test_reconcile_that_cannot_read_the_timeline_raises(x, adapter):
    x.fail_next("timeline", 503)

    assert failure(lambda: adapter.reconcile(post(x))).kind is ErrorKind.transient


def test_connecting_uses_pkce_and_the_refresh_token_rotates(x):
    with httpx.Client() as http:
        adapter = make_adapter(http, x)
        described = adapter.token_refresh
        assert described.pkce is Pkce.required and "offline.access" in described.scopes
        client = OAuthClient(*CLIENT, auth_method="client_secret_basic")
        pkce = oauth.new_pkce()
        url = oauth.authorization_url(described.authorization_endpoint(None), client_id=client.client_id,
                                      redirect_uri="https://app.example/cb", state="st-1", scopes=described.scopes,
                                      code_challenge=pkce.challenge)
        answer = x.approve(url)
        assert answer["state"] == "st-1"
        endpoint = described.token_endpoint(adapter.default_base_url)
        with pytest.raises(oauth.CodeRefused):  # the verifier is checked against the challenge
            oauth.exchange_code(http, endpoint, client, answer["code"], "https://app.example/cb",
                                code_verifier=oauth.new_pkce().verifier)
        answer = x.approve(url)
        tokens = oauth.exchange_code(http, endpoint, client, answer["code"], "https://app.example/cb",
                                     code_verifier=pkce.verifier)
        assert tokens.refresh_token and tokens.expires_at is not None
        adapter.publish(post(x, token=tokens.access_token))

        renewed = oauth.refresh(http, endpoint, client, tokens.refresh_token)
        assert renewed.refresh_token != tokens.refresh_token
        with pytest.raises(oauth.RefreshRefused):  # the old refresh token was rotated away
            oauth.refresh(http, endpoint, client, tokens.refresh_token)
        adapter.publish(post(x, "with the renewed token", token=renewed.access_token))
    assert len(x.tweets) == 2


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(list("ab cd\n.🎉中") + ["https://example.org/x ", "word" * 30]), max_size=300))
def test_thread_parts_fit_a_post_and_keep_every_character(pieces):
    text = "".join(pieces)
    parts = thread_parts(text)

    assert all(x_weighted_length(p) <= 280 for p in parts)
    assert all(p.strip() for p in parts) or parts == [text.strip()]
    assert "".join("".join(parts).split()) == "".join(text.split())
