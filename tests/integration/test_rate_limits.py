"""Rate limits: a key over its rate, a workspace over its rate across keys, and a client address
over its rate of failed authentications answer 429 with Retry-After and RateLimit-* headers; the
buckets refill with time and stay bounded."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from gateway import auth
from gateway.rate_limits import RateLimits, TokenBuckets, client_bucket
from tests.integration.test_gateway import ADMIN, Gateway, assert_problem
from tests.support import bearer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_burst_then_its_rate():
    clock = Clock()
    buckets = TokenBuckets(rate_per_s=2, burst=3, clock=clock)
    verdicts = [buckets.take("k") for _ in range(4)]
    assert [v.allowed for v in verdicts] == [True, True, True, False]
    assert [v.remaining for v in verdicts] == [2, 1, 0, 0]
    refused = verdicts[-1]
    assert refused.retry_after_s == 1 and refused.headers()["Retry-After"] == "1"
    assert refused.headers()["RateLimit-Limit"] == "3" and refused.reset_s == 2
    clock.now += 0.5  # one token back at 2 a second
    assert buckets.take("k").allowed and not buckets.take("k").allowed
    assert buckets.take("other").allowed, "each name has its own bucket"
    clock.now += 60
    assert buckets.take("k").remaining == 2, "a bucket never holds more than its burst"


def test_the_buckets_kept_are_bounded_and_a_dropped_one_starts_full():
    clock = Clock()
    buckets = TokenBuckets(rate_per_s=1, burst=1, max_buckets=100, clock=clock)
    assert buckets.take("first").allowed and not buckets.take("first").allowed
    for i in range(1000):
        buckets.take(f"k{i}")
    assert len(buckets) == 100
    assert buckets.take("first").allowed


def test_peeking_spends_nothing_and_keeps_no_bucket():
    clock = Clock()
    buckets = TokenBuckets(rate_per_s=1, burst=2, clock=clock)
    assert buckets.peek("new").allowed and len(buckets) == 0
    buckets.take("a")
    buckets.take("a")
    peeked = buckets.peek("a")
    assert not peeked.allowed and peeked.retry_after_s == 1 and peeked.headers()["Retry-After"] == "1"
    assert not buckets.take("a").allowed, "a peek did not give a token back"
    clock.now += 1
    assert buckets.peek("a").allowed and buckets.peek("a").remaining == 1


def test_failed_authentications_count_per_address_ipv6_per_64():
    assert client_bucket("203.0.113.7") == "203.0.113.7"
    assert client_bucket("::ffff:203.0.113.7") == "203.0.113.7"
    assert client_bucket("2001:db8:1:2::1") == client_bucket("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert client_bucket("2001:db8:1:3::1") != client_bucket("2001:db8:1:2::1")
    assert client_bucket(None) == "unknown" and client_bucket("testclient") == "testclient"


@pytest.mark.integration
def test_an_address_failing_authentication_too_often_gets_429_before_any_key_lookup(database_url, monkeypatch):
    clock = Clock()
    gw = Gateway(database_url)
    lookups: list[str] = []
    real_authenticate = auth.authenticate

    def counted(pool, admin_key, presented):
        lookups.append(presented)
        return real_authenticate(pool, admin_key, presented)

    try:
        ws, key = gw.api.open_workspace("a")
        gw.deps.failed_auth = TokenBuckets(rate_per_s=0.5, burst=3, clock=clock)
        monkeypatch.setattr(auth, "authenticate", counted)
        for _ in range(5):  # requests that authenticate spend nothing of the address's failure budget
            assert gw.get(f"/v1/workspaces/{ws}/wallet", headers=key).status_code == 200
        lookups.clear()

        bad = [gw.get(f"/v1/workspaces/{ws}/wallet", headers=bearer(f"hk_guess{i}")) for i in range(3)]
        assert [b.status_code for b in bad] == [401, 401, 401]
        assert [b.headers["RateLimit-Remaining"] for b in bad] == ["2", "1", "0"]
        assert bad[0].headers["RateLimit-Limit"] == "3" and bad[0].headers["WWW-Authenticate"] == "Bearer"
        assert len(lookups) == 3
        no_key = gw.get(f"/v1/workspaces/{ws}/wallet")
        refused = assert_problem(no_key, 429, "rate_limited")
        assert "failed authentication" in refused["detail"]
        assert no_key.headers["Retry-After"] == "2" and no_key.headers["RateLimit-Remaining"] == "0"
        flood = [gw.get(f"/v1/workspaces/{ws}/wallet", headers=bearer(f"hk_flood{i}")) for i in range(20)]
        assert {f.status_code for f in flood} == {429}
        assert_problem(gw.get(f"/v1/workspaces/{ws}/wallet", headers=key), 429, "rate_limited")
        assert len(lookups) == 3, "while the address is over its rate no key is looked up, not even a valid one"

        with TestClient(gw.http.app, client=("203.0.113.7", 50000)) as elsewhere:
            assert elsewhere.get(f"/v1/workspaces/{ws}/wallet", headers=key).status_code == 200, \
                "another address is not held up"
            assert elsewhere.get(f"/v1/workspaces/{ws}/wallet", headers=bearer("hk_x")).status_code == 401

        clock.now += 2  # one failure's worth back at 0.5 a second
        assert gw.get(f"/v1/workspaces/{ws}/wallet", headers=key).status_code == 200
        assert gw.get(f"/v1/workspaces/{ws}/wallet", headers=bearer("hk_again")).status_code == 401
        assert gw.get(f"/v1/workspaces/{ws}/wallet", headers=bearer("hk_again")).status_code == 429
    finally:
        gw.close()


@pytest.mark.integration
def test_a_key_over_its_rate_gets_429_with_retry_after(database_url):
    gw = Gateway(database_url)
    try:
        gw.deps.rate_limits = RateLimits.of(key_rate=0.5, key_burst=3, workspace_rate=100, workspace_burst=100)
        ws, key = gw.api.open_workspace("a")
        answers = [gw.get(f"/v1/workspaces/{ws}/wallet", headers=key) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert answers[0].headers["RateLimit-Limit"] == "3" and answers[0].headers["RateLimit-Remaining"] == "2"
        refused = answers[-1]
        assert_problem(refused, 429, "rate_limited")
        assert refused.headers["Retry-After"] == "2" and refused.headers["RateLimit-Remaining"] == "0"
        assert gw.get(f"/v1/workspaces/{ws}/wallet", headers=ADMIN).status_code == 200, "another key is not held up"

        # All keys of one workspace share its bucket (creating the reader's key is one request to it).
        gw.deps.rate_limits = RateLimits.of(key_rate=100, key_burst=100, workspace_rate=0.5, workspace_burst=3)
        reader = gw.http.post("/v1/api-keys", json={"scopes": ["workspace:read"]}, headers=key).json()["api_key"]
        assert gw.get(f"/v1/workspaces/{ws}", headers=key).status_code == 200
        assert gw.get(f"/v1/workspaces/{ws}", headers=bearer(reader)).status_code == 200
        assert_problem(gw.get(f"/v1/workspaces/{ws}", headers=ADMIN), 429, "rate_limited")
    finally:
        gw.close()


@pytest.mark.integration
def test_a_herald_gateway_limits_failed_authentications_as_its_settings_say(heralds):
    herald = heralds.start(rate_failed_auth_per_s=0.01, rate_failed_auth_burst=4)
    with TestClient(herald.gateway()) as http:
        answers = [http.get("/v1/workspaces/ws-none/wallet", headers=bearer(f"hk_guess{i}")) for i in range(5)]
        assert [a.status_code for a in answers] == [401, 401, 401, 401, 429]
        assert answers[-1].headers["Retry-After"] == "100" and answers[0].headers["RateLimit-Limit"] == "4"
        assert http.get("/healthz").status_code == 200, "what needs no key is not held up"
