"""Workspace: its tier and limits, its linked social accounts, its queue of waiting posts, and
the counters the daily limits need.

The counters stay bounded: daily posts per platform are kept per local day for the days still
ahead (at most ``KEPT_DAYS`` days, the oldest dropped first), generations for the last few
days, and the daily day and platforms of each waiting post (at most the queue size)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from schemas import events as ev

from domain import tiers
from domain.base import Context, HeraldAggregate
from domain.rejections import Reason, Rejected, TierLimitReached

KEPT_DAYS = 400  # more than any scheduling horizon plus yesterday
KEPT_GENERATION_DAYS = 3


class Workspace(HeraldAggregate):
    KIND = "workspace"
    # Class defaults: a snapshot taken before these existed loads without them.
    tier_version = 0
    tier_limits: dict[str, int] | None = None
    pending_tier: dict | None = None  # {"tier": name, "effective_at": datetime}
    post_slots: dict[str, list] | None = None  # waiting post id → [local day, [platforms]]
    daily_posts: dict[str, dict[str, int]] | None = None  # local day → platform → destinations
    generations: dict[str, int] | None = None  # local day → generations
    automation_rules = 0
    missed_window_s: float | None = None  # the workspace's publishing policy; None: Herald's default
    requires_approval = False  # the content policy: submitted posts wait for an approver

    def __init__(self) -> None:
        super().__init__()
        self.name = ""
        self.tier = "free"
        self.timezone = "UTC"
        self.limit_overrides: dict[str, int] = {}
        self.accounts: dict[str, str] = {}  # social account id → platform
        self.waiting_posts: set[str] = set()
        self.tier_limits = None
        self.post_slots = {}
        self.daily_posts = {}
        self.generations = {}

    @classmethod
    def open(cls, ctx: Context, workspace_name: str, tier: str, timezone: str, limit_overrides: dict[str, int],
             base_limits: dict[str, int] | None = None, tier_version: int = 0) -> Workspace:
        base = base_limits if base_limits is not None else tiers.LIMITS[tier]
        effective = tiers.effective(base, limit_overrides)
        opened = ev.WorkspaceOpened(
            name=workspace_name, tier=tier, timezone=timezone, limit_overrides=limit_overrides, limits=effective,
            tier_version=tier_version, tier_limits=dict(base),
        )
        return cls.start(ctx, ctx.workspace_id, opened)

    def limit(self, name: str) -> int:
        base = self.tier_limits if self.tier_limits is not None else tiers.LIMITS.get(self.tier, tiers.LIMITS["free"])
        return tiers.effective(base, self.limit_overrides)[name]

    @property
    def limits(self) -> dict[str, int]:
        return {name: self.limit(name) for name in tiers.LIMIT_NAMES}

    def local_day(self, at: datetime) -> str:
        return at.astimezone(ZoneInfo(self.timezone)).date().isoformat()

    def _breach(self, reason: Reason, limit: str, current: int, allowed: int, what: str) -> TierLimitReached:
        return TierLimitReached(reason, limit, self.tier, current, allowed, what)

    # Limits --------------------------------------------------------------------------------

    def link_account(self, ctx: Context, social_account_id: str, platform: str) -> None:
        on_platform = sum(1 for p in self.accounts.values() if p == platform)
        allowed = self.limit("accounts_per_platform")
        if on_platform >= allowed:
            raise self._breach(Reason.account_limit_reached, "accounts_per_platform", on_platform, allowed,
                               f"{platform} account(s) connected")
        self.record(ctx, ev.SocialAccountLinked(social_account_id=social_account_id, platform=platform))

    def enqueue_post(self, ctx: Context, post_id: str, publish_at: datetime | None = None,
                     platforms: list[str] | tuple[str, ...] = ()) -> None:
        self.check_enqueue(ctx, publish_at, platforms)
        day = self.local_day(publish_at) if publish_at is not None else None
        self.record(ctx, ev.PostQueued(post_id=post_id, due_day=day, platforms=list(platforms)))

    def check_enqueue(self, ctx: Context, publish_at: datetime | None = None,
                      platforms: list[str] | tuple[str, ...] = ()) -> None:
        """Refuse what ``enqueue_post`` would refuse, changing nothing: queue size, horizon, daily posts."""
        allowed = self.limit("queue_size")
        if len(self.waiting_posts) >= allowed:
            raise self._breach(Reason.queue_full, "queue_size", len(self.waiting_posts), allowed, "posts waiting")
        if publish_at is not None:
            self.check_horizon(ctx.now, publish_at)
            day = self.local_day(publish_at)
            for platform in sorted(set(platforms)):
                self.check_daily_posts(day, platform, platforms.count(platform))

    def check_horizon(self, now: datetime, publish_at: datetime) -> None:
        days = self.limit("scheduling_horizon_days")
        if publish_at > now + timedelta(days=days):
            ahead = math.ceil((publish_at - now).total_seconds() / 86_400)
            raise self._breach(Reason.scheduling_horizon_exceeded, "scheduling_horizon_days", ahead, days,
                               "days ahead")

    def daily_posts_on(self, day: str, platform: str) -> int:
        return (self.daily_posts or {}).get(day, {}).get(platform, 0)

    def check_daily_posts(self, day: str, platform: str, adding: int = 1) -> None:
        allowed = self.limit("daily_posts_per_platform")
        current = self.daily_posts_on(day, platform)
        if current + adding > allowed:
            raise self._breach(Reason.daily_post_limit_reached, "daily_posts_per_platform", current, allowed,
                               f"{platform} posts due on {day}")

    def set_publishing_policy(self, ctx: Context, missed_window_s: float | None) -> None:
        self.record(ctx, ev.PublishingPolicySet(missed_window_s=missed_window_s))

    def move_post_slot(self, ctx: Context, post_id: str, publish_at: datetime, platforms: list[str]) -> None:
        """A waiting post's daily slot becomes ``platforms`` on ``publish_at``'s local day: the
        horizon and, for each platform it adds to a day, the daily limit are checked."""
        if post_id not in self.waiting_posts:
            return
        self.check_horizon(ctx.now, publish_at)
        day = self.local_day(publish_at)
        old_day, old_platforms = (self._slots().get(post_id) or [None, []])
        if old_day == day and sorted(old_platforms) == sorted(platforms):
            return
        for platform in sorted(set(platforms)):
            ours = old_platforms.count(platform) if old_day == day else 0
            adding = platforms.count(platform) - ours
            if adding > 0:
                self.check_daily_posts(day, platform, adding)
        self.record(ctx, ev.PostSlotChanged(post_id=post_id, due_day=day, platforms=list(platforms)))

    def shrink_post_slot(self, ctx: Context, post_id: str, platforms: list[str]) -> None:
        """A waiting post lost destinations: its slot keeps its day and only ``platforms``."""
        slot = self._slots().get(post_id)
        if post_id in self.waiting_posts and slot is not None and sorted(slot[1]) != sorted(platforms):
            self.record(ctx, ev.PostSlotChanged(post_id=post_id, due_day=slot[0], platforms=list(platforms)))

    def set_content_policy(self, ctx: Context, requires_approval: bool) -> None:
        self.record(ctx, ev.ContentPolicySet(requires_approval=requires_approval, actor=ctx.issued_by))

    def over_daily_posts(self, day: str, platform: str) -> bool:
        """More of the platform's posts are due that day than the limit now allows (it was lowered
        since they were scheduled: a downgrade, an override)."""
        return self.daily_posts_on(day, platform) > self.limit("daily_posts_per_platform")

    def dequeue_post(self, ctx: Context, post_id: str, freed_platforms: list[str] | tuple[str, ...] = ()) -> None:
        if post_id in self.waiting_posts:
            self.record(ctx, ev.PostLeftQueue(post_id=post_id, freed_platforms=list(freed_platforms)))

    def generations_on(self, day: str) -> int:
        return (self.generations or {}).get(day, 0)

    def count_generation(self, ctx: Context) -> None:
        """Counts one AI generation today (local day), refusing it beyond the daily limit. For the
        generation commands to call; generations are never charged credits."""
        day = self.local_day(ctx.now)
        allowed, current = self.limit("daily_generations"), self.generations_on(day)
        if current >= allowed:
            raise self._breach(Reason.daily_generation_limit_reached, "daily_generations", current, allowed,
                               f"generations on {day}")
        self.record(ctx, ev.GenerationCounted(day=day, count=current + 1))

    def add_automation_rule(self, ctx: Context) -> None:
        """Counts one more automation rule, refusing it beyond the limit (for the automation commands)."""
        allowed = self.limit("automation_rules")
        if self.automation_rules >= allowed:
            raise self._breach(Reason.automation_rule_limit_reached, "automation_rules", self.automation_rules,
                               allowed, "automation rules")
        self.record(ctx, ev.AutomationRulesCounted(count=self.automation_rules + 1))

    def remove_automation_rule(self, ctx: Context) -> None:
        if self.automation_rules > 0:
            self.record(ctx, ev.AutomationRulesCounted(count=self.automation_rules - 1))

    # Tier ----------------------------------------------------------------------------------

    def change_tier(self, ctx: Context, tier: str, version: int, limits: dict[str, int], reason: str) -> None:
        self.record(ctx, ev.TierChanged(from_tier=self.tier, to_tier=tier, version=version,
                                        limits=tiers.effective(limits, self.limit_overrides),
                                        tier_limits=dict(limits), reason=reason))

    def schedule_tier_change(self, ctx: Context, tier: str, effective_at: datetime) -> None:
        self.record(ctx, ev.TierChangeScheduled(from_tier=self.tier, to_tier=tier, effective_at=effective_at))

    def override_limits(self, ctx: Context, overrides: dict[str, int]) -> None:
        base = self.tier_limits if self.tier_limits is not None else tiers.LIMITS.get(self.tier, tiers.LIMITS["free"])
        self.record(ctx, ev.LimitsOverridden(limit_overrides=overrides, limits=tiers.effective(base, overrides)))

    def mark_notices_read(self, ctx: Context, notice_ids: list[str]) -> None:
        self.record(ctx, ev.NoticesRead(notice_ids=notice_ids))

    def evolve(self, event: ev.EventData) -> None:
        match event:
            case ev.WorkspaceOpened():
                self.name, self.tier, self.timezone = event.name, event.tier, event.timezone
                self.limit_overrides = dict(event.limit_overrides)
                self.tier_version = event.tier_version
                self.tier_limits = dict(event.tier_limits) if event.tier_limits is not None else None
                self.post_slots, self.daily_posts, self.generations = {}, {}, {}
            case ev.SocialAccountLinked():
                self.accounts[event.social_account_id] = event.platform
            case ev.PostQueued():
                self.waiting_posts.add(event.post_id)
                if event.due_day is not None:
                    self._slots()[event.post_id] = [event.due_day, list(event.platforms)]
                    day = self._days().setdefault(event.due_day, {})
                    for platform in event.platforms:
                        day[platform] = day.get(platform, 0) + 1
                    for old in sorted(self._days())[:-KEPT_DAYS]:
                        del self._days()[old]
            case ev.PostLeftQueue():
                self.waiting_posts.discard(event.post_id)
                slot = self._slots().pop(event.post_id, None)
                if slot is not None and slot[0] in self._days():
                    day = self._days()[slot[0]]
                    for platform in event.freed_platforms:
                        day[platform] = max(0, day.get(platform, 0) - 1)
            case ev.PostSlotChanged():
                old = self._slots().get(event.post_id)
                if old is not None and old[0] in self._days():
                    day = self._days()[old[0]]
                    for platform in old[1]:
                        day[platform] = max(0, day.get(platform, 0) - 1)
                self._slots()[event.post_id] = [event.due_day, list(event.platforms)]
                day = self._days().setdefault(event.due_day, {})
                for platform in event.platforms:
                    day[platform] = day.get(platform, 0) + 1
            case ev.TierChanged():
                self.tier, self.tier_version = event.to_tier, event.version
                self.tier_limits = dict(event.tier_limits)
                self.pending_tier = None
            case ev.TierChangeScheduled():
                self.pending_tier = {"tier": event.to_tier, "effective_at": event.effective_at}
            case ev.LimitsOverridden():
                self.limit_overrides = dict(event.limit_overrides)
            case ev.GenerationCounted():
                generations = self.generations if self.generations is not None else {}
                generations[event.day] = event.count
                self.generations = {d: n for d, n in generations.items()
                                    if d in sorted(generations)[-KEPT_GENERATION_DAYS:]}
            case ev.AutomationRulesCounted():
                self.automation_rules = event.count
            case ev.PublishingPolicySet():
                self.missed_window_s = event.missed_window_s
            case ev.ContentPolicySet():
                self.requires_approval = event.requires_approval

    def _slots(self) -> dict[str, list]:
        if self.post_slots is None:
            self.post_slots = {}
        return self.post_slots

    def _days(self) -> dict[str, dict[str, int]]:
        if self.daily_posts is None:
            self.daily_posts = {}
        return self.daily_posts
