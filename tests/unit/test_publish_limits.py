"""What the publishing engine may send now: calls in flight, documented budgets, throttles."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from processors.platforms.base import RateBudget
from processors.publishing.limits import Bucket, Limits, Slot

A = Slot("mastodon:a", "mastodon")
B = Slot("mastodon:b", "mastodon")


def _limits(**kwargs) -> Limits:
    return Limits(**{"per_account": 2, "per_platform": 3, "budgets": {}, **kwargs})


def test_a_full_account_blocks_itself_only_and_a_full_platform_blocks_all():
    limits = _limits()
    limits.take(A, 0)
    limits.take(A, 0)
    assert limits.wait_s(A, 0) is None, "two in flight: account a is full"
    assert limits.wait_s(B, 0) == 0, "account b is not held up by a"
    limits.take(B, 0)
    assert limits.wait_s(Slot("mastodon:c", "mastodon"), 0) is None, "three in flight: the platform is full"
    limits.release(A)
    assert limits.wait_s(A, 0) == 0


def test_a_throttle_holds_the_account_until_its_time():
    limits = _limits()
    limits.throttle(A, until=100.0)
    assert limits.wait_s(A, 40.0) == 60.0
    assert limits.wait_s(B, 40.0) == 0
    limits.throttle(A, until=10.0)
    assert limits.wait_s(A, 40.0) == 60.0, "an earlier end never shortens a throttle"
    limits.throttle(A, until=200.0, app_wide=True)
    assert limits.wait_s(B, 40.0) == 160.0, "an app-wide throttle holds every account of the platform"


def test_the_documented_budget_is_spent_then_refills():
    limits = _limits(per_account=100, per_platform=100,
                     budgets={"mastodon": (RateBudget(300, 300.0, "account"),)})
    for _ in range(300):
        assert limits.wait_s(A, 0.0) == 0
        limits.take(A, 0.0)
        limits.release(A)
    assert limits.wait_s(A, 0.0) == 1.0, "spent: one request back per second"
    assert limits.wait_s(B, 0.0) == 0, "per account"
    assert limits.wait_s(A, 1.0) == 0


def test_a_share_of_the_budget_per_process():
    limits = _limits(per_account=100, per_platform=100, budget_share=0.5,
                     budgets={"mastodon": (RateBudget(300, 300.0, "account"),)})
    for _ in range(150):
        limits.take(A, 0.0)
        limits.release(A)
    assert limits.wait_s(A, 0.0) > 0


def test_forgetting_keeps_only_what_matters():
    limits = _limits(budgets={"mastodon": (RateBudget(10, 10.0, "account"),)})
    limits.take(A, 0.0)
    limits.release(A)
    limits.throttle(B, until=5.0)
    limits.forget_expired(100.0)
    assert limits.buckets == {} and limits.throttled == {}


@settings(max_examples=200)
@given(st.lists(st.tuples(st.floats(0, 50), st.booleans()), max_size=200),
       st.integers(1, 20), st.floats(1, 60))
def test_a_bucket_never_lets_more_through_than_its_budget(steps, capacity, per_s):
    """Over any run, requests taken ≤ capacity + refill over the time that passed."""
    bucket = Bucket(capacity, per_s)
    now, taken = 0.0, 0
    for advance, want in steps:
        now += advance
        if want and bucket.wait_s(now) == 0:
            bucket.take(now)
            taken += 1
    assert taken <= capacity + now * capacity / per_s + 1e-9
