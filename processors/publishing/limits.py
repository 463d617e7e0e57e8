"""What may be sent to a platform now: calls in flight per account and per platform, the
platform's documented rate budgets (token buckets), and waits the platform asked for
(``throttled_until``, from 429 / Retry-After / rate-limit reset headers).

One ``Limits`` lives in one publishing engine and is used from its loop thread only. Budgets
are per process: with N publisher processes, each spends the whole budget, so an operator
running several sets ``publish_budget_share`` to 1/N (docs/operations.md).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from processors.platforms.base import RateBudget


@dataclass
class Bucket:
    """A token bucket: ``capacity`` requests, refilled evenly over ``per_s`` seconds."""

    capacity: float
    per_s: float
    tokens: float = field(default=-1.0)
    at: float = 0.0

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = self.capacity

    def _refill(self, now: float) -> None:
        if now > self.at:
            self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.capacity / self.per_s)
            self.at = now

    def wait_s(self, now: float) -> float:
        """0 when a request may go now, else how long until one token is back."""
        self._refill(now)
        if self.tokens >= 1:
            return 0.0
        return (1 - self.tokens) * self.per_s / self.capacity

    def take(self, now: float) -> None:
        self._refill(now)
        self.tokens -= 1


@dataclass(frozen=True)
class Slot:
    account: str  # "<platform>:<social account id>"
    platform: str


class Limits:
    def __init__(self, *, per_account: int, per_platform: int, budgets: dict[str, tuple[RateBudget, ...]],
                 budget_share: float = 1.0) -> None:
        if per_account < 1 or per_platform < 1:
            raise ValueError("in-flight limits must be at least 1")
        if not 0 < budget_share <= 1:
            raise ValueError(f"budget_share must be in (0, 1], not {budget_share}")
        self.per_account, self.per_platform = per_account, per_platform
        self.budgets, self.share = budgets, budget_share
        self.in_flight_account: dict[str, int] = defaultdict(int)
        self.in_flight_platform: dict[str, int] = defaultdict(int)
        self.buckets: dict[tuple[str, int], Bucket] = {}
        self.throttled: dict[str, float] = {}  # account or "app:<platform>" → monotonic time it may go again

    def wait_s(self, slot: Slot, now: float) -> float | None:
        """None: blocked by calls in flight (retry when one ends). 0: may go now. >0: wait that long
        (a throttle or an empty budget)."""
        waits = [self.throttled.get(slot.account, 0.0) - now, self.throttled.get(f"app:{slot.platform}", 0.0) - now]
        for bucket in self._buckets(slot):
            waits.append(bucket.wait_s(now))
        wait = max(waits)
        if wait > 0:
            return wait
        if (self.in_flight_account[slot.account] >= self.per_account
                or self.in_flight_platform[slot.platform] >= self.per_platform):
            return None
        return 0.0

    def take(self, slot: Slot, now: float) -> None:
        for bucket in self._buckets(slot):
            bucket.take(now)
        self.in_flight_account[slot.account] += 1
        self.in_flight_platform[slot.platform] += 1

    def release(self, slot: Slot) -> None:
        self.in_flight_account[slot.account] -= 1
        self.in_flight_platform[slot.platform] -= 1
        if not self.in_flight_account[slot.account]:
            del self.in_flight_account[slot.account]

    def throttle(self, slot: Slot, until: float, *, app_wide: bool = False) -> None:
        key = f"app:{slot.platform}" if app_wide else slot.account
        self.throttled[key] = max(self.throttled.get(key, 0.0), until)

    def forget_expired(self, now: float) -> None:
        """Drop ended throttles and full buckets, so what is kept follows the accounts in use."""
        self.throttled = {key: until for key, until in self.throttled.items() if until > now}
        self.buckets = {key: b for key, b in self.buckets.items() if b.wait_s(now) > 0 or b.tokens < b.capacity}

    def _buckets(self, slot: Slot) -> list[Bucket]:
        found = []
        for i, budget in enumerate(self.budgets.get(slot.platform, ())):
            key = (slot.account if budget.scope == "account" else f"app:{slot.platform}", i)
            bucket = self.buckets.get(key)
            if bucket is None:
                bucket = self.buckets[key] = Bucket(max(1.0, budget.requests * self.share), budget.per_s)
            found.append(bucket)
        return found
