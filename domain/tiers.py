"""Tiers as shipped (defaults; an admin may define new versions with ``define_tier``, and a
workspace may override any limit). ``carryover_cap`` is how many unused monthly credits a
renewal carries into the next period (none by default); ``scheduling_horizon_days`` is how
far ahead a post may be due."""

from __future__ import annotations

from typing import get_args

from schemas.commands import LimitName

LIMITS: dict[str, dict[str, int]] = {
    "free": {
        "accounts_per_platform": 1,
        "queue_size": 5,
        "daily_generations": 5,
        "daily_posts_per_platform": 2,
        "automation_rules": 0,
        "monthly_credits": 10,
        "scheduling_horizon_days": 7,
        "carryover_cap": 0,
    },
    "pro": {
        "accounts_per_platform": 3,
        "queue_size": 50,
        "daily_generations": 50,
        "daily_posts_per_platform": 10,
        "automation_rules": 5,
        "monthly_credits": 500,
        "scheduling_horizon_days": 30,
        "carryover_cap": 0,
    },
    "business": {
        "accounts_per_platform": 10,
        "queue_size": 200,
        "daily_generations": 200,
        "daily_posts_per_platform": 50,
        "automation_rules": 20,
        "monthly_credits": 2000,
        "scheduling_horizon_days": 90,
        "carryover_cap": 0,
    },
}
LIMIT_NAMES: tuple[str, ...] = get_args(LimitName)
assert all(set(table) == set(LIMIT_NAMES) for table in LIMITS.values())

# Low-credit notice: when available credits fall to this share of the monthly allocation.
LOW_CREDIT_SHARE = 0.2


def limit(tier: str, name: str, overrides: dict[str, int] | None = None) -> int:
    """The effective limit of a shipped tier: a workspace override wins over the tier default."""
    if overrides and name in overrides:
        return overrides[name]
    return LIMITS[tier][name]


def effective(base: dict[str, int], overrides: dict[str, int]) -> dict[str, int]:
    """A tier's limits with the workspace's overrides applied; a limit the tier's version lacks
    (defined before the limit existed) falls back to the free tier's default."""
    return {name: overrides.get(name, base.get(name, LIMITS["free"][name])) for name in LIMIT_NAMES}


def low_credit_threshold(monthly_credits: int) -> int:
    return int(monthly_credits * LOW_CREDIT_SHARE)
