"""The generic webhook adapter against a real HTTP receiver that verifies Standard Webhooks signatures
with the reference ``standardwebhooks`` library."""

from __future__ import annotations

import time

import pytest

from herald.net.safe_fetch import SafeFetcher
from processors.platforms.base import AccountCredentials, ErrorKind, PublishError, PublishRequest
from processors.platforms.webhook import WebhookAdapter, message_id
from tests.fakes.webhook_server import SECRET, FakeReceiver


@pytest.fixture
def receiver():
    with FakeReceiver() as server:
        yield server
        assert server.violations == []


def make_adapter(timeout_s: float = 2, clock=time.time) -> WebhookAdapter:
    return WebhookAdapter(timeout_s=timeout_s, guard=SafeFetcher(allowed_networks=["127.0.0.1/32"]), clock=clock)


@pytest.fixture
def adapter():
    adapter = make_adapter()
    yield adapter
    adapter.http.close()


def request_for(url: str, text: str = "Hello, hook 👋", *, secret: str = SECRET, key: str = "attempt-1",
                media: tuple[str, ...] = ("https://cdn.example.com/a.png",)) -> PublishRequest:
    account = AccountCredentials("acct-1", "webhook", "my-cms", secret, None, {"url": url} if url else {})
    return PublishRequest(attempt_key=key, account=account, text=text, media_urls=media)


def failure(call) -> PublishError:
    with pytest.raises(PublishError) as raised:
        call()
    return raised.value


def test_publish_delivers_one_signed_event_the_reference_library_verifies(receiver, adapter):
    result = adapter.publish(request_for(receiver.url()))

    [delivery] = receiver.deliveries
    assert delivery["id"] == message_id("attempt-1")
    envelope = delivery["envelope"]
    assert envelope["type"] == "post.publish"
    assert envelope["data"] == {"attempt_key": "attempt-1", "account": "my-cms", "text": "Hello, hook 👋",
                                "media_urls": ["https://cdn.example.com/a.png"]}
    assert result.platform_post_id == "evt_1"


def test_a_wrong_secret_fails_verification_and_is_an_auth_error(receiver, adapter):
    other = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo="
    error = failure(lambda: adapter.publish(request_for(receiver.url(), secret=other)))

    assert error.kind is ErrorKind.auth and error.status_code == 401
    assert receiver.deliveries == []


def test_a_stale_timestamp_is_refused_by_the_receiver(receiver):
    stale = make_adapter(clock=lambda: time.time() - 3600)
    error = failure(lambda: stale.publish(request_for(receiver.url())))

    assert error.kind is ErrorKind.auth and receiver.deliveries == []


def test_a_malformed_secret_is_refused_before_sending(receiver, adapter):
    assert failure(lambda: adapter.publish(request_for(receiver.url(), secret="plain-secret"))).kind is ErrorKind.auth
    assert receiver.requests == []


def test_reconcile_redelivers_the_same_webhook_id_and_the_receiver_acts_once(receiver):
    receiver.fail_next("deliver", delay_s=1.0)
    adapter = make_adapter(timeout_s=0.3)
    request = request_for(receiver.url())
    assert failure(lambda: adapter.publish(request)).kind is ErrorKind.unknown

    found = adapter.reconcile(request)

    assert [d["id"] for d in receiver.deliveries] == [message_id("attempt-1")] * 2
    assert len(receiver.events) == 1 and found.platform_post_id == "evt_1"


def test_429_is_rate_limited_with_retry_after(receiver, adapter):
    receiver.fail_next("deliver", 429, {"Retry-After": "7"}, {"error": "slow down"})

    error = failure(lambda: adapter.publish(request_for(receiver.url())))

    assert error.kind is ErrorKind.rate_limited and error.retry_after_s == 7


def test_server_error_is_transient_and_410_is_permanent(receiver, adapter):
    receiver.fail_next("deliver", 503)
    assert failure(lambda: adapter.publish(request_for(receiver.url()))).kind is ErrorKind.transient

    receiver.fail_next("deliver", 410, body={"error": "gone"})
    assert failure(lambda: adapter.publish(request_for(receiver.url()))).kind is ErrorKind.permanent


def test_an_expired_endpoint_token_answered_401_is_an_auth_error(receiver, adapter):
    receiver.fail_next("deliver", 401, body={"error": "token expired"})

    assert failure(lambda: adapter.publish(request_for(receiver.url()))).kind is ErrorKind.auth


def test_redirects_are_not_followed(receiver, adapter):
    receiver.redirect_to = "http://169.254.169.254/latest/meta-data/"

    error = failure(lambda: adapter.publish(request_for(receiver.url())))

    assert error.kind is ErrorKind.permanent and "redirect" in error.detail


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/hook", "http://169.254.169.254/latest", "http://localhost/x",
                                 "file:///etc/passwd", "http://[::1]/hook"])
def test_internal_urls_are_refused_by_the_ssrf_guard(url):
    adapter = WebhookAdapter(timeout_s=1)  # no allowance for loopback
    error = failure(lambda: adapter.publish(request_for(url)))

    assert error.kind is ErrorKind.permanent and "refused" in error.detail


def test_a_missing_url_setting_is_permanent(adapter):
    assert failure(lambda: adapter.publish(request_for(""))).kind is ErrorKind.permanent
