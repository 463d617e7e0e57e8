"""Tier limits from the product plan (defaults; a workspace may override any of them)."""

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
    },
    "pro": {
        "accounts_per_platform": 3,
        "queue_size": 50,
        "daily_generations": 50,
        "daily_posts_per_platform": 10,
        "automation_rules": 5,
        "monthly_credits": 500,
    },
    "business": {
        "accounts_per_platform": 10,
        "queue_size": 200,
        "daily_generations": 200,
        "daily_posts_per_platform": 50,
        "automation_rules": 20,
        "monthly_credits": 2000,
    },
}
LIMIT_NAMES: tuple[str, ...] = get_args(LimitName)
assert all(set(table) == set(LIMIT_NAMES) for table in LIMITS.values())


def limit(tier: str, name: str, overrides: dict[str, int] | None = None) -> int:
    """The effective limit: a workspace override wins over the tier default."""
    if overrides and name in overrides:
        return overrides[name]
    return LIMITS[tier][name]
