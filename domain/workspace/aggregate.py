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
    post_slots: dict[str, list] | None = None  # waiting post id → [local day, [platforms], [day of each]?]
    daily_posts: dict[str, dict[str, int]] | None = None  # local day → platform → destinations
    generations: dict[str, int] | None = None  # local day → generations
    automation_rules = 0
    missed_window_s: float | None = None  # the workspace's publishing policy; None: Herald's default
    requires_approval = False  # the content policy: submitted posts wait for an approver
    disconnect_waiting = "cancel"  # and what disconnecting an account does to its waiting destinations

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

    def unlink_account(self, ctx: Context, social_account_id: str) -> None:
        if social_account_id in self.accounts:
            self.record(ctx, ev.SocialAccountUnlinked(social_account_id=social_account_id,
                                                      platform=self.accounts[social_account_id]))

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
        """A waiting post's daily slot becomes ``platforms`` on ``publish_at``'s local day."""
        self.move_post_slots(ctx, post_id, [(platform, publish_at) for platform in platforms])

    def move_post_slots(self, ctx: Context, post_id: str, due: list[tuple[str, datetime]]) -> None:
        """A waiting post's daily slots become one per (platform, due time) on that time's local day
        (its destinations may be due on different days): the horizon and, for each platform it adds
        to a day, the daily limit are checked."""
        if post_id not in self.waiting_posts:
            return
        for _, at in due:
            if at > ctx.now:
                self.check_horizon(ctx.now, at)
        new = [(self.local_day(at), platform) for platform, at in due]
        old = self.slot_entries(self._slots().get(post_id))
        if sorted(old) == sorted(new):
            return
        for day, platform in sorted(set(new)):
            adding = new.count((day, platform)) - old.count((day, platform))
            if adding > 0:
                self.check_daily_posts(day, platform, adding)
        self.record(ctx, self._slot_changed(post_id, new, old))

    def shrink_post_slot(self, ctx: Context, post_id: str, platforms: list[str],
                         due: list[tuple[str, datetime]] | None = None) -> None:
        """A waiting post lost destinations: its slot keeps only ``platforms`` (``due``: each with
        the time its slot was counted for; without it, on the slot's day)."""
        slot = self._slots().get(post_id)
        if post_id not in self.waiting_posts or slot is None:
            return
        old = self.slot_entries(slot)
        new = ([(self.local_day(at), platform) for platform, at in due] if due is not None
               else [(slot[0], platform) for platform in platforms])
        if sorted(old) != sorted(new):
            self.record(ctx, self._slot_changed(post_id, new, old))

    def _slot_changed(self, post_id: str, new: list[tuple[str, str]], old: list[tuple[str, str]]) -> ev.PostSlotChanged:
        days = [day for day, _ in new]
        due_day = min(days) if days else min((d for d, _ in old), default="")
        mixed = any(day != due_day for day in days)
        return ev.PostSlotChanged(post_id=post_id, due_day=due_day, platforms=[p for _, p in new],
                                  platform_days=days if mixed else None)

    @staticmethod
    def slot_entries(slot: list | None) -> list[tuple[str, str]]:
        """A slot's (local day, platform) pairs: ``[day, platforms]`` or ``[day, platforms, days]``."""
        if slot is None:
            return []
        days = slot[2] if len(slot) > 2 and slot[2] is not None else [slot[0]] * len(slot[1])
        return list(zip(days, slot[1], strict=True))

    def set_content_policy(self, ctx: Context, requires_approval: bool, disconnect_waiting: str = "cancel") -> None:
        self.record(ctx, ev.ContentPolicySet(requires_approval=requires_approval,
                                             disconnect_waiting=disconnect_waiting, actor=ctx.issued_by))

    def over_daily_posts(self, day: str, platform: str) -> bool:
        """More of the platform's posts are due that day than the limit now allows (it was lowered
        since they were scheduled: a downgrade, an override)."""
        return self.daily_posts_on(day, platform) > self.limit("daily_posts_per_platform")

    def dequeue_post(self, ctx: Context, post_id: str, freed_platforms: list[str] | tuple[str, ...] = (),
                     freed_at: list[datetime] | None = None) -> None:
        """``freed_at``: when each freed platform's slot was counted for (its local day is freed)."""
        if post_id in self.waiting_posts:
            days = [self.local_day(at) for at in freed_at] if freed_at is not None else None
            self.record(ctx, ev.PostLeftQueue(post_id=post_id, freed_platforms=list(freed_platforms), freed_days=days))

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

    # Automation rules: the rules are counted against the tier's `automation_rules` (creating one is
    # refused at the limit); a resume is refused while the active ones are at the limit. The ids
    # (oldest first) are kept so a downgrade can pause the newest; bounded by the limit.
    rule_ids: list[str] | None = None
    active_rule_ids: list[str] | None = None

    def add_automation_rule(self, ctx: Context, rule_id: str = "") -> None:
        """Counts one more automation rule (active), refusing it beyond the limit."""
        allowed = self.limit("automation_rules")
        if self.automation_rules >= allowed:
            raise self._breach(Reason.automation_rule_limit_reached, "automation_rules", self.automation_rules,
                               allowed, "automation rules")
        ids, active = list(self.rule_ids or []), list(self.active_rule_ids or [])
        if rule_id:
            ids.append(rule_id)
            active.append(rule_id)
        self.record(ctx, ev.AutomationRulesCounted(count=self.automation_rules + 1, rule_ids=ids,
                                                   active_rule_ids=active))

    def remove_automation_rule(self, ctx: Context, rule_id: str = "") -> None:
        if self.automation_rules > 0:
            self.record(ctx, ev.AutomationRulesCounted(
                count=self.automation_rules - 1, rule_ids=[r for r in self.rule_ids or [] if r != rule_id],
                active_rule_ids=[r for r in self.active_rule_ids or [] if r != rule_id]))

    def set_rule_active(self, ctx: Context, rule_id: str, active: bool) -> None:
        """A rule paused or resumed; a resume is refused while the active rules are at the limit."""
        current = list(self.active_rule_ids or [])
        if active:
            allowed = self.limit("automation_rules")
            if len(current) >= allowed:
                raise self._breach(Reason.automation_rule_limit_reached, "automation_rules", len(current), allowed,
                                   "active automation rules")
        order = list(self.rule_ids or [])
        wanted = set(current) - {rule_id} | ({rule_id} if active else set())
        self.record(ctx, ev.AutomationRulesCounted(count=self.automation_rules, rule_ids=order,
                                                   active_rule_ids=[r for r in order if r in wanted]))

    def active_rules_over_limit(self) -> list[str]:
        """The active rules beyond the limit, newest first: those a downgrade pauses."""
        active = list(self.active_rule_ids or [])
        return list(reversed(active[self.limit("automation_rules"):]))

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
            case ev.SocialAccountUnlinked():
                self.accounts.pop(event.social_account_id, None)
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
                if slot is not None:
                    entries = self.slot_entries(slot)
                    for i, platform in enumerate(event.freed_platforms):
                        day_of = event.freed_days[i] if event.freed_days is not None else None
                        match = next((e for e in entries if e[1] == platform and day_of in (None, e[0])), None)
                        if match is None:
                            continue
                        entries.remove(match)
                        if match[0] in self._days():
                            day = self._days()[match[0]]
                            day[platform] = max(0, day.get(platform, 0) - 1)
            case ev.PostSlotChanged():
                for old_day, platform in self.slot_entries(self._slots().get(event.post_id)):
                    if old_day in self._days():
                        day = self._days()[old_day]
                        day[platform] = max(0, day.get(platform, 0) - 1)
                days = event.platform_days if event.platform_days is not None else [event.due_day] * len(event.platforms)
                self._slots()[event.post_id] = ([event.due_day, list(event.platforms)] if event.platform_days is None
                                                else [event.due_day, list(event.platforms), list(days)])
                for new_day, platform in zip(days, event.platforms, strict=True):
                    day = self._days().setdefault(new_day, {})
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
                if event.rule_ids is not None:
                    self.rule_ids, self.active_rule_ids = list(event.rule_ids), list(event.active_rule_ids or [])
            case ev.PublishingPolicySet():
                self.missed_window_s = event.missed_window_s
            case ev.ContentPolicySet():
                self.requires_approval = event.requires_approval
                self.disconnect_waiting = event.disconnect_waiting

    def _slots(self) -> dict[str, list]:
        if self.post_slots is None:
            self.post_slots = {}
        return self.post_slots

    def _days(self) -> dict[str, dict[str, int]]:
        if self.daily_posts is None:
            self.daily_posts = {}
        return self.daily_posts
