"""Platform adapters against a real HTTP fake of Mastodon and a real PostgreSQL."""

from __future__ import annotations

import time

import httpx
import pytest
from psycopg_pool import ConnectionPool

from herald.net.safe_fetch import SafeFetcher
from processors.platforms import mastodon as mastodon_module
from processors.platforms import sandbox
from processors.platforms.base import (
    AccountCredentials,
    AdapterRegistry,
    ErrorKind,
    PublishError,
    PublishRequest,
)
from processors.platforms.mastodon import MAX_CHARACTERS, MastodonAdapter
from processors.platforms.sandbox import SandboxAdapter, list_posts
from tests.fakes.mastodon_server import DEFAULT_TOKEN, FakeMastodon


@pytest.fixture
def mastodon():
    with FakeMastodon(valid_tokens={DEFAULT_TOKEN}) as server:
        yield server


@pytest.fixture
def adapter():
    with httpx.Client() as http:
        # The fake serves media from 127.0.0.1, which only an explicit allowance lets through.
        media = SafeFetcher(timeout_s=2, allowed_networks=["127.0.0.1/32"])
        yield MastodonAdapter(http, timeout_s=2, media=media)
        media.close()


def request_for(server: FakeMastodon, text: str = "Hello from Herald", *, key: str = "attempt-1",
                token: str = DEFAULT_TOKEN, media: tuple[str, ...] = ()) -> PublishRequest:
    account = AccountCredentials("acct-1", "mastodon", "herald", token, server.base_url)
    return PublishRequest(attempt_key=key, account=account, text=text, media_urls=media)


def failure(call) -> PublishError:
    with pytest.raises(PublishError) as raised:
        call()
    return raised.value


# Mastodon


def test_publish_creates_one_public_status(mastodon, adapter):
    result = adapter.publish(request_for(mastodon))

    [status] = mastodon.statuses
    assert result.platform_post_id == status["id"]
    assert result.url == status["url"]
    assert status["text"] == "Hello from Herald" and status["visibility"] == "public"
    assert status["idempotency_key"] == "attempt-1"


def test_the_same_attempt_key_publishes_once(mastodon, adapter):
    first = adapter.publish(request_for(mastodon))
    again = adapter.publish(request_for(mastodon))

    assert again == first
    assert mastodon.requests == 2 and mastodon.count_for("Hello from Herald") == 1


def test_a_new_attempt_key_is_a_new_status(mastodon, adapter):
    adapter.publish(request_for(mastodon, key="attempt-1"))
    adapter.publish(request_for(mastodon, key="attempt-2"))

    assert mastodon.count_for("Hello from Herald") == 2


@pytest.mark.parametrize("retry_after", ["30", "HTTP-DATE"])
def test_429_is_rate_limited_with_retry_after(mastodon, adapter, retry_after):
    if retry_after == "HTTP-DATE":
        retry_after = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    mastodon.fail_next(1, status=429, headers={"Retry-After": retry_after}, body={"error": "Too many requests"})

    error = failure(lambda: adapter.publish(request_for(mastodon)))

    assert error.kind is ErrorKind.rate_limited
    assert 25 <= error.retry_after_s <= 30
    assert mastodon.statuses == []


def test_invalid_token_is_an_auth_error(mastodon, adapter):
    error = failure(lambda: adapter.publish(request_for(mastodon, token="revoked")))

    assert error.kind is ErrorKind.auth
    assert "The access token is invalid" in error.detail


def test_blank_text_is_invalid_content(mastodon, adapter):
    error = failure(lambda: adapter.publish(request_for(mastodon, text="   ")))

    assert error.kind is ErrorKind.invalid_content
    assert "Text can't be blank" in error.detail


def test_server_error_is_transient_and_a_retry_succeeds(mastodon, adapter):
    mastodon.fail_next(1, status=500)

    assert failure(lambda: adapter.publish(request_for(mastodon))).kind is ErrorKind.transient
    adapter.publish(request_for(mastodon))
    assert mastodon.count_for("Hello from Herald") == 1


def test_a_timeout_after_sending_the_post_is_an_unknown_outcome(mastodon):
    mastodon.delay_next(1.0)
    with httpx.Client() as http:
        slow = MastodonAdapter(http, timeout_s=0.2)
        error = failure(lambda: slow.publish(request_for(mastodon)))

    assert error.kind is ErrorKind.unknown, "the platform may have posted: look before posting again"
    assert "Timeout" in error.detail


def test_connection_refused_is_transient(adapter):
    with FakeMastodon() as gone:
        request = request_for(gone)
    assert failure(lambda: adapter.publish(request)).kind is ErrorKind.transient


@pytest.mark.parametrize("drop_connection", [False, True], ids=["500-after-create", "dropped-after-create"])
def test_unknown_outcome_is_reconciled_to_the_one_status(mastodon, adapter, drop_connection):
    mastodon.fail_next(1, status=500, after_create=True, drop_connection=drop_connection)
    request = request_for(mastodon)

    expected = ErrorKind.unknown if drop_connection else ErrorKind.transient
    assert failure(lambda: adapter.publish(request)).kind is expected
    assert mastodon.count_for("Hello from Herald") == 1  # it was posted, the client could not know

    found = adapter.reconcile(request)

    [status] = mastodon.statuses
    assert found is not None and found.platform_post_id == status["id"]


def test_timed_out_post_is_reconciled_to_the_one_status(mastodon):
    mastodon.delay_next(0.6)
    request = request_for(mastodon)
    with httpx.Client() as http:
        adapter = MastodonAdapter(http, timeout_s=0.2)
        assert failure(lambda: adapter.publish(request)).kind is ErrorKind.unknown
        time.sleep(0.8)  # the server finishes the post its client gave up on
        found = adapter.reconcile(request)

    [status] = mastodon.statuses
    assert found.platform_post_id == status["id"]


def test_reconcile_posts_when_the_platform_never_got_it(mastodon, adapter):
    mastodon.fail_next(1, status=503)
    request = request_for(mastodon)
    assert failure(lambda: adapter.publish(request)).kind is ErrorKind.transient

    found = adapter.reconcile(request)

    assert [s["id"] for s in mastodon.statuses] == [found.platform_post_id]


def test_too_long_text_is_rejected_without_a_request(mastodon, adapter):
    error = failure(lambda: adapter.publish(request_for(mastodon, text="x" * (MAX_CHARACTERS + 1))))

    assert error.kind is ErrorKind.invalid_content
    assert mastodon.requests == 0
    adapter.publish(request_for(mastodon, text="x" * MAX_CHARACTERS))  # the limit itself is fine


def test_media_are_downloaded_uploaded_and_attached(mastodon, adapter):
    media = (mastodon.media_url("one.png"), mastodon.media_url("two.png"))

    adapter.publish(request_for(mastodon, media=media))

    uploaded = mastodon.media
    assert [m["filename"] for m in uploaded] == ["one.png", "two.png"]
    assert all(m["size"] > 0 and m["content_type"] == "image/png" for m in uploaded)
    [status] = mastodon.statuses
    assert status["media_ids"] == [m["id"] for m in uploaded]


def test_media_still_processing_is_awaited_before_posting(monkeypatch, adapter):
    monkeypatch.setattr(mastodon_module, "MEDIA_POLL_INTERVAL_S", 0.05)
    with FakeMastodon(media_processing_polls=2) as server:
        adapter.publish(request_for(server, media=(server.media_url(),)))

        [status] = server.statuses
        assert status["media_ids"] == [server.media[0]["id"]]


def test_unreachable_media_is_invalid_content(mastodon, adapter):
    error = failure(lambda: adapter.publish(request_for(mastodon, media=(f"{mastodon.base_url}/nowhere.png",))))

    assert error.kind is ErrorKind.invalid_content
    assert mastodon.requests == 0


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data/iam", "http://[::1]/a.png",
                                 "file:///etc/passwd"])
def test_media_on_internal_addresses_are_never_fetched(mastodon, url):
    with httpx.Client() as http:
        guarded = MastodonAdapter(http, timeout_s=2)  # no allowances, as deployed
        error = failure(lambda: guarded.publish(request_for(mastodon, media=(url,))))
        local = failure(lambda: guarded.publish(request_for(mastodon, media=(mastodon.media_url(),))))
    assert error.kind is local.kind is ErrorKind.invalid_content
    assert "not public" in local.detail
    assert "not public" in error.detail or "only http and https" in error.detail
    assert mastodon.media == [] and mastodon.statuses == [], "nothing was fetched, uploaded or posted"


def test_default_base_url_serves_accounts_without_an_instance(mastodon):
    account = AccountCredentials("acct-1", "mastodon", "herald", DEFAULT_TOKEN, None)
    with httpx.Client() as http:
        result = MastodonAdapter(http, default_base_url=mastodon.base_url).publish(
            PublishRequest("attempt-1", account, "via default", ())
        )
    assert mastodon.statuses[0]["id"] == result.platform_post_id


# Sandbox


@pytest.fixture
def pool(database_url):
    with ConnectionPool(database_url, min_size=1, max_size=4, open=True) as pool:
        with pool.connection() as conn:
            conn.execute(sandbox.DDL)
        yield pool


def sandbox_request(text: str = "Hello sandbox", key: str = "attempt-1", account_id: str = "acct-1") -> PublishRequest:
    account = AccountCredentials(account_id, "sandbox", "herald", "", None)
    return PublishRequest(attempt_key=key, account=account, text=text, media_urls=("https://example.org/a.png",))


def test_sandbox_publish_is_idempotent_per_attempt_key(pool):
    adapter = SandboxAdapter(pool)

    first = adapter.publish(sandbox_request())
    again = adapter.publish(sandbox_request())
    other = adapter.publish(sandbox_request(key="attempt-2", account_id="acct-2"))

    assert again == first and other != first
    assert first.platform_post_id.startswith("sandbox-")
    posts = list_posts(pool)
    assert [p.platform_post_id for p in posts] == [first.platform_post_id, other.platform_post_id]
    assert posts[0].media_urls == ("https://example.org/a.png",) and posts[0].text == "Hello sandbox"
    assert [p.attempt_key for p in list_posts(pool, account_id="acct-2")] == ["attempt-2"]


def test_sandbox_reconcile_finds_only_what_was_posted(pool):
    adapter = SandboxAdapter(pool)
    assert adapter.reconcile(sandbox_request()) is None

    posted = adapter.publish(sandbox_request())

    assert adapter.reconcile(sandbox_request()) == posted


@pytest.mark.parametrize("text", ["", "  \n ", "x" * (sandbox.MAX_TEXT + 1)], ids=["empty", "blank", "too-long"])
def test_sandbox_rejects_invalid_content(pool, text):
    error = failure(lambda: SandboxAdapter(pool).publish(sandbox_request(text=text)))

    assert error.kind is ErrorKind.invalid_content
    assert list_posts(pool) == []


# Registry


def test_registry_finds_adapters_by_platform(pool):
    with httpx.Client() as http:
        registry = AdapterRegistry([SandboxAdapter(pool), MastodonAdapter(http)])
        assert registry.get("mastodon").platform == "mastodon"
        assert registry.get("sandbox").platform == "sandbox"
        with pytest.raises(KeyError, match="no adapter for platform 'bluesky'.*mastodon, sandbox"):
            registry.get("bluesky")
