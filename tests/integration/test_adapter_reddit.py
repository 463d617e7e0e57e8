"""The Reddit adapter against a real HTTP fake of Reddit's OAuth API that checks requests against the docs."""

from __future__ import annotations

import httpx
import pytest

from herald.net.safe_fetch import SafeFetcher
from processors.platforms.base import AccountCredentials, ErrorKind, PublishError, PublishRequest
from processors.platforms.reddit import RedditAdapter
from tests.fakes.reddit_server import TOKEN, USERNAME, FakeReddit, rate_limit_headers


@pytest.fixture
def api():
    with FakeReddit() as server:
        yield server
        assert server.violations == []


@pytest.fixture
def adapter(api):
    with httpx.Client() as http:
        media = SafeFetcher(timeout_s=2, allowed_networks=["127.0.0.1/32"])
        yield RedditAdapter(http, base_url=api.base_url, timeout_s=2, media=media)
        media.close()


def request_for(text: str = "Herald ships\nScheduling for everyone.", *, key: str = "attempt-1", token: str = TOKEN,
                subreddit: str | None = "test", flair: str | None = None,
                media: tuple[str, ...] = ()) -> PublishRequest:
    settings = {k: v for k, v in {"subreddit": subreddit, "flair_id": flair}.items() if v}
    account = AccountCredentials("acct-1", "reddit", USERNAME, token, None, settings)
    return PublishRequest(attempt_key=key, account=account, text=text, media_urls=media)


def failure(call) -> PublishError:
    with pytest.raises(PublishError) as raised:
        call()
    return raised.value


def test_publish_submits_one_self_post(api, adapter):
    result = adapter.publish(request_for())

    [post] = api.posts
    assert result.platform_post_id == post["name"]
    assert result.url == f"https://www.reddit.com{post['permalink']}"
    assert (post["subreddit"], post["title"], post["selftext"], post["kind"]) == \
        ("test", "Herald ships", "Scheduling for everyone.", "self")


def test_flair_from_the_settings_is_sent_and_a_required_flair_missing_is_invalid(api, adapter):
    missing = failure(lambda: adapter.publish(request_for(subreddit="flairy")))
    assert missing.kind is ErrorKind.invalid_content and "SUBMIT_VALIDATION_FLAIR_REQUIRED" in missing.detail

    adapter.publish(request_for(subreddit="flairy", flair="flair-123"))
    [post] = api.posts
    assert post["flair_id"] == "flair-123"


def test_an_unknown_subreddit_is_permanent(api, adapter):
    error = failure(lambda: adapter.publish(request_for(subreddit="nowhere")))

    assert error.kind is ErrorKind.permanent and "SUBREDDIT_NOEXIST" in error.detail


def test_a_text_without_a_title_is_refused_before_sending(api, adapter):
    assert failure(lambda: adapter.publish(request_for("   "))).kind is ErrorKind.invalid_content
    assert api.requests == []


def test_one_image_without_body_is_a_link_post_and_with_body_the_links_go_in_the_text(api, adapter):
    image = api.media_url("cat.png")
    adapter.publish(request_for("Look at this cat", key="a", media=(image,)))
    adapter.publish(request_for("A cat\nIsn't it nice?", key="b", media=(image,)))

    link, self_post = api.posts
    assert (link["kind"], link["url"]) == ("link", image)
    assert (self_post["kind"], self_post["selftext"]) == ("self", f"Isn't it nice?\n\n{image}")


def test_an_expired_token_is_an_auth_error(api, adapter):
    api.revoke()

    error = failure(lambda: adapter.publish(request_for()))

    assert error.kind is ErrorKind.auth and error.status_code == 401


def test_429_waits_for_the_x_ratelimit_reset_seconds(api, adapter):
    api.fail_next("submit", 429, rate_limit_headers(remaining=0, reset_s=42), {"message": "Too Many Requests",
                                                                               "error": 429})

    error = failure(lambda: adapter.publish(request_for()))

    assert error.kind is ErrorKind.rate_limited and error.retry_after_s == 42
    assert api.posts == []


def test_the_ratelimit_submit_error_is_rate_limited_for_its_minutes(api, adapter):
    api.fail_next("submit", 200, body={"json": {"errors": [
        ["RATELIMIT", "Looks like you've been doing that a lot. Take a break for 5 minutes before trying again.",
         "ratelimit"]]}})

    error = failure(lambda: adapter.publish(request_for()))

    assert error.kind is ErrorKind.rate_limited and error.retry_after_s == 300


def test_server_error_is_transient(api, adapter):
    api.fail_next("submit", 503, body={"message": "Service Unavailable", "error": 503})

    assert failure(lambda: adapter.publish(request_for())).kind is ErrorKind.transient


def test_a_timeout_after_the_post_was_made_is_reconciled_without_a_second_post(api):
    api.fail_next("submit", delay_s=1.0)
    with httpx.Client() as http:
        adapter = RedditAdapter(http, base_url=api.base_url, timeout_s=0.3)
        assert failure(lambda: adapter.publish(request_for())).kind is ErrorKind.unknown

        found = adapter.reconcile(request_for())

    [post] = api.posts
    assert found.platform_post_id == post["name"]
    assert api.steps().count("submit") == 1


def test_reconcile_answers_none_when_nothing_matches(api, adapter):
    adapter.publish(request_for("Another title\nother text", key="other"))

    assert adapter.reconcile(request_for()) is None
