"""Every tier limit at its boundary: n−1 and n accepted, n+1 refused with a reason that names
the limit, the tier, the current count and the allowed number. Daily posts count per local day
in the workspace's time zone, across midnight and across both daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from domain.base import Context
from domain.rejections import TierLimitReached
from schemas import commands as cmd
from tests.unit.stores import AppFactory, make_app  # noqa: F401 - the fixture
from tests.unit.test_domain import WS, Herald

NEW_YORK = ZoneInfo("America/New_York")


class Limits(Herald):
    def open_ws(self, tier: str = "free", timezone: str = "UTC", **overrides: int) -> None:
        self.ok(cmd.OpenWorkspace(name=WS, tier=tier, timezone=timezone, limit_overrides=overrides))
        self.ok(cmd.GrantCredits(amount=1000))

    def post_at(self, post_id: str, at: datetime, *accounts: str) -> cmd.SchedulePost:
        return cmd.SchedulePost(post_id=post_id, text="hi", destinations=list(accounts or ["acc-a"]), publish_at=at)

    def breach(self, payload: cmd.Payload, reason: str) -> dict:
        decision = self.rejected(payload, reason)
        assert decision.limit is not None
        return decision.limit


@pytest.fixture
def h(make_app: AppFactory) -> Limits:
    return Limits(make_app)


def test_accounts_per_platform(h: Limits) -> None:
    h.open_ws(accounts_per_platform=3)
    h.connect("a1")  # n − 1 = 2 after the next
    h.connect("a2")
    h.connect("a3")  # n
    limit = h.breach(cmd.ConnectSocialAccount(social_account_id="a4", platform="sandbox", handle="x"),
                     "account_limit_reached")
    assert limit == {"limit": "accounts_per_platform", "tier": "free", "current": 3, "allowed": 3}
    h.connect("m1", platform="mastodon")  # another platform has its own count


def test_the_shipped_free_tier_allows_one_account_per_platform(h: Limits) -> None:
    h.open_ws()
    h.connect("a1")
    limit = h.breach(cmd.ConnectSocialAccount(social_account_id="a2", platform="sandbox", handle="x"),
                     "account_limit_reached")
    assert (limit["current"], limit["allowed"]) == (1, 1)


def test_queue_size(h: Limits) -> None:
    h.open_ws(queue_size=3, daily_posts_per_platform=10)
    h.connect("acc-a")
    for n in range(3):
        h.ok(h.post_at(f"p{n}", h.now + timedelta(hours=1)))
    limit = h.breach(h.post_at("p3", h.now + timedelta(hours=1)), "queue_full")
    assert limit == {"limit": "queue_size", "tier": "free", "current": 3, "allowed": 3}
    h.ok(cmd.CancelPost(post_id="p0"))
    h.ok(h.post_at("p3", h.now + timedelta(hours=1)))


def test_scheduling_horizon(h: Limits) -> None:
    h.open_ws(tier="free", daily_posts_per_platform=10)  # 7 days ahead
    h.connect("acc-a")
    h.ok(h.post_at("p6", h.now + timedelta(days=6)))
    h.ok(h.post_at("p7", h.now + timedelta(days=7)))
    limit = h.breach(h.post_at("p8", h.now + timedelta(days=7, seconds=1)), "scheduling_horizon_exceeded")
    assert (limit["limit"], limit["tier"], limit["current"], limit["allowed"]) == ("scheduling_horizon_days", "free", 8, 7)


def local(y: int, mo: int, d: int, hh: int, mm: int, fold: int = 0) -> datetime:
    return datetime(y, mo, d, hh, mm, tzinfo=NEW_YORK, fold=fold).astimezone(UTC)


def test_daily_posts_count_per_local_day_across_midnight(h: Limits) -> None:
    h.now = local(2030, 6, 3, 12, 0)
    h.open_ws(timezone="America/New_York")  # free: 2 a day per platform
    h.connect("acc-a")
    h.ok(h.post_at("p1", local(2030, 6, 4, 0, 0)))  # n − 1
    h.ok(h.post_at("p2", local(2030, 6, 4, 23, 59)))  # n: still 4 June in New York (5 June in UTC)
    limit = h.breach(h.post_at("p3", local(2030, 6, 4, 12, 0)), "daily_post_limit_reached")
    assert limit == {"limit": "daily_posts_per_platform", "tier": "free", "current": 2, "allowed": 2}
    h.ok(h.post_at("p4", local(2030, 6, 5, 0, 0)))  # the next local day
    h.ok(h.post_at("p5", local(2030, 6, 3, 23, 59)))  # the day before


def test_daily_posts_across_the_spring_forward_day(h: Limits) -> None:
    h.now = local(2030, 3, 8, 12, 0)
    h.open_ws(timezone="America/New_York")
    h.connect("acc-a")
    # 10 March 2030 has 23 hours in New York: 00:30 EST and 23:30 EDT are the same local day.
    h.ok(h.post_at("p1", local(2030, 3, 10, 0, 30)))
    h.ok(h.post_at("p2", local(2030, 3, 10, 23, 30)))
    h.breach(h.post_at("p3", local(2030, 3, 10, 3, 0)), "daily_post_limit_reached")
    h.ok(h.post_at("p4", local(2030, 3, 11, 0, 0)))


def test_daily_posts_across_the_fall_back_day(h: Limits) -> None:
    h.now = local(2030, 10, 31, 12, 0)
    h.open_ws(timezone="America/New_York", queue_size=10)
    h.connect("acc-a")
    # 3 November 2030 has 25 hours: 01:30 happens twice (EDT, then EST), both that local day.
    first, second = local(2030, 11, 3, 1, 30, fold=0), local(2030, 11, 3, 1, 30, fold=1)
    assert second - first == timedelta(hours=1)
    h.ok(h.post_at("p1", first))
    h.ok(h.post_at("p2", second))
    h.breach(h.post_at("p3", local(2030, 11, 3, 23, 59)), "daily_post_limit_reached")
    h.ok(h.post_at("p4", local(2030, 11, 4, 0, 0)))
    h.ok(h.post_at("p5", local(2030, 11, 2, 23, 59)))


def test_daily_posts_count_each_destination_and_a_cancel_frees_its_slots(h: Limits) -> None:
    h.open_ws(tier="free", accounts_per_platform=3, queue_size=10)
    for account in ("acc-a", "acc-b", "acc-c"):
        h.connect(account)
    due = h.now + timedelta(hours=2)
    h.ok(h.post_at("p1", due, "acc-a", "acc-b"))  # two sandbox posts that day: the limit
    h.breach(h.post_at("p2", due, "acc-c"), "daily_post_limit_reached")
    h.ok(cmd.CancelPost(post_id="p1"))
    h.ok(h.post_at("p2", due, "acc-c"))


def _ctx(h: Limits, at: datetime) -> Context:
    return Context(command_id="c", correlation_id="c", workspace_id=WS, issued_by="tests", now=at)


def test_daily_generations_count_per_local_day(h: Limits) -> None:
    h.now = local(2030, 6, 3, 23, 0)
    h.open_ws(timezone="America/New_York")  # free: 5 a day
    workspace = h.workspace()
    for _ in range(5):
        workspace.count_generation(_ctx(h, h.now))
    with pytest.raises(TierLimitReached) as refused:
        workspace.count_generation(_ctx(h, h.now))
    assert (refused.value.limit, refused.value.tier, refused.value.current, refused.value.allowed) == (
        "daily_generations", "free", 5, 5)
    workspace.count_generation(_ctx(h, local(2030, 6, 4, 0, 1)))  # a new local day
    assert workspace.generations_on("2030-06-04") == 1 and len(workspace.generations) <= 3


def test_automation_rules(h: Limits) -> None:
    h.open_ws(tier="pro")  # 5 rules
    workspace = h.workspace()
    for _ in range(5):
        workspace.add_automation_rule(_ctx(h, h.now))
    with pytest.raises(TierLimitReached) as refused:
        workspace.add_automation_rule(_ctx(h, h.now))
    assert (refused.value.current, refused.value.allowed) == (5, 5)
    workspace.remove_automation_rule(_ctx(h, h.now))
    workspace.add_automation_rule(_ctx(h, h.now))


def test_the_free_tier_has_no_automation_rules(h: Limits) -> None:
    h.open_ws(tier="free")
    with pytest.raises(TierLimitReached):
        h.workspace().add_automation_rule(_ctx(h, h.now))


def test_daily_counters_stay_bounded(h: Limits) -> None:
    h.open_ws(tier="business", queue_size=5000, daily_posts_per_platform=5000, scheduling_horizon_days=1000)
    h.connect("acc-a")
    for n in range(450):  # a post a day, each due 300 days on (inside the scheduling horizon), for 450 days
        h.ok(h.post_at(f"p{n}", h.now + timedelta(days=300)))
        h.now += timedelta(days=1)
    assert len(h.workspace().daily_posts) <= 400
