"""Rate limits: a key over its rate, and a workspace over its rate across keys, answer 429 with
Retry-After and RateLimit-* headers; the buckets refill with time and stay bounded."""

from __future__ import annotations

import pytest

from gateway.rate_limits import RateLimits, TokenBuckets
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
