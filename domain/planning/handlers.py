"""Deciding planning commands: posting schedules, top-offs (slots and series occurrences), series."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr

from schemas import commands as cmd
from schemas import events as ev

from domain.base import Context, HeraldAggregate, derived_id
from domain.post import Post
from domain.planning import wall_time
from domain.planning.series import ALL_ITEMS_RECENT, Series, post_id_for
from domain.planning.slot_plan import SlotPlan
from domain.post.handlers import create_scheduled, resolve_destinations
from domain.registry import Outcome, handles
from domain.rejections import Reason, Rejected

if TYPE_CHECKING:
    from domain.application import HeraldApplication

MAX_START_AGE_DAYS = 366


def _account_in_workspace(app: HeraldApplication, ctx: Context, account_id: str) -> None:
    if account_id not in app.workspace(ctx).accounts:
        raise Rejected(Reason.unknown_social_account, f"no social account {account_id} in this workspace")


@handles(cmd.SetPostingSchedule)
def set_posting_schedule(app: HeraldApplication, ctx: Context, p: cmd.SetPostingSchedule) -> Outcome:
    _account_in_workspace(app, ctx, p.social_account_id)
    timezone = p.timezone or app.workspace(ctx).timezone
    if p.slots:
        weekly = [(s.weekday, s.time) for s in p.slots]
    else:
        try:
            weekly = wall_time.spread(p.posts_per_week or 0, list(p.times))
        except ValueError as error:
            raise Rejected(Reason.invalid_schedule, str(error)) from None
    weekly.sort(key=lambda s: (wall_time.WEEKDAYS.index(s[0]), s[1]))
    plan = app.find(SlotPlan, p.social_account_id)
    removed = 0
    if plan is None:
        plan = SlotPlan.first(ctx, p.social_account_id, timezone, weekly, p.active)
    else:
        removed = plan.set_schedule(ctx, timezone, weekly, p.active)
    return [plan], {"social_account_id": p.social_account_id, "timezone": timezone, "posts_per_week": len(weekly),
                    "slots": [{"weekday": w, "time": t} for w, t in weekly], "active": p.active,
                    "slots_removed": removed}


@handles(cmd.TopOffSlots)
def top_off_slots(app: HeraldApplication, ctx: Context, p: cmd.TopOffSlots) -> Outcome:
    workspace = app.workspace(ctx)
    for account_id in p.social_account_ids:
        if account_id not in workspace.accounts:
            raise Rejected(Reason.unknown_social_account, f"no social account {account_id} in this workspace")
    changed: list[HeraldAggregate] = []
    created = existing = planned_accounts = 0
    for account_id in p.social_account_ids or sorted(workspace.accounts):
        plan = app.find(SlotPlan, account_id)
        if plan is None or not plan.active:
            continue
        planned_accounts += 1
        new, there = plan.top_off(ctx, p.days)
        created, existing = created + new, existing + there
        if new:
            changed.append(plan)
    until = ctx.now + timedelta(days=p.days)
    occurrences = {"scheduled": 0, "skipped": 0}
    for series_id in p.series_ids:
        series = app.find_in_workspace(Series, series_id, ctx.workspace_id)
        if series is None:
            raise Rejected(Reason.unknown_series, f"no series {series_id} in this workspace")
        changed += extend_series(app, ctx, series, until, occurrences)
    return _unique(changed), {"slots_created": created, "slots_existing": existing,
                              "accounts_planned": planned_accounts, "window_start": ctx.now.isoformat(),
                              "window_end": until.isoformat(), "occurrences_scheduled": occurrences["scheduled"],
                              "occurrences_skipped": occurrences["skipped"]}


def extend_series(app: HeraldApplication, ctx: Context, series: Series, until: datetime,
                  counts: dict[str, int]) -> list[HeraldAggregate]:
    """Schedule the series' occurrences up to ``until`` through the normal schedule path (credits held,
    tier limits applied); an occurrence that path refuses is recorded skipped with its reason."""
    changed: list[HeraldAggregate] = []
    for at in list(series.due(ctx.now, until)):
        post_id = post_id_for(series.series_id, at)
        item = series.pick(at)
        if item is None:
            series.skipped(ctx, at, ALL_ITEMS_RECENT, f"every item was scheduled within the last "
                                                      f"{series.skip_days} day(s)")
            counts["skipped"] += 1
        else:
            try:
                _post, made = create_scheduled(app, ctx, post_id, item["text"], list(item["media_urls"]), at,
                                               list(series.destinations), {}, draft_publish_at=at)
                changed += made
            except Rejected as refused:
                if refused.reason == Reason.post_exists:  # scheduled by an earlier top-off already
                    continue
                series.skipped(ctx, at, refused.reason, refused.detail)
                counts["skipped"] += 1
            else:
                series.scheduled(ctx, at, post_id, item["item_id"])
                counts["scheduled"] += 1
        changed.append(series)
    return changed


def slot_post_id(slot_id: str) -> str:
    return derived_id("slot_post", slot_id)


@handles(cmd.FillSlot)
def fill_slot(app: HeraldApplication, ctx: Context, p: cmd.FillSlot) -> Outcome:
    """The slot gets content: a draft post at the slot's time on the slot's account (nothing held yet;
    submitting the draft schedules it). The slot is marked filled in the same decision, so a later
    top-off leaves it be and a second fill is refused."""
    workspace = app.workspace(ctx)
    _account_in_workspace(app, ctx, p.social_account_id)
    plan = app.find(SlotPlan, p.social_account_id)
    if plan is None:
        raise Rejected(Reason.unknown_slot, f"no planned slot {p.slot_id} on account {p.social_account_id}")
    post_id = p.post_id or slot_post_id(p.slot_id)
    at = plan.fill(ctx, p.slot_id, post_id)  # refuses a filled slot first
    if app.find(Post, post_id) is not None:
        raise Rejected(Reason.post_exists, f"post {post_id} already exists")
    drafts = resolve_destinations(app, workspace, [p.social_account_id], {}, {})
    post = Post.draft(ctx, post_id, p.text, [str(u) for u in p.media_urls], at, drafts, reason="slot_filled")
    return [plan, post], {"slot_id": p.slot_id, "post_id": post_id, "publish_at": at.isoformat(),
                          "status": post.status}


@handles(cmd.DefineSeries)
def define_series(app: HeraldApplication, ctx: Context, p: cmd.DefineSeries) -> Outcome:
    workspace = app.workspace(ctx)
    for account_id in p.destinations:
        if account_id not in workspace.accounts:
            raise Rejected(Reason.unknown_social_account, f"no social account {account_id} in this workspace")
    local_now = ctx.now.astimezone(ZoneInfo(workspace.timezone)).replace(tzinfo=None)
    if not local_now - timedelta(days=MAX_START_AGE_DAYS) <= p.starts_at <= local_now + timedelta(days=3660):
        # The rule is walked from its DTSTART at every top-off: an old start would make that walk long.
        raise Rejected(Reason.invalid_schedule, f"starts_at must be within {MAX_START_AGE_DAYS} days before now "
                       "and ten years after")
    check_rule(p.rrule, p.starts_at)
    defined = ev.SeriesDefined(
        series_id=p.series_id, kind=p.kind, rrule=p.rrule, starts_at=p.starts_at.isoformat(),
        timezone=workspace.timezone, destinations=list(p.destinations),
        items=[ev.SeriesItemData(item_id=i.item_id, text=i.text, media_urls=[str(u) for u in i.media_urls])
               for i in p.items],
        skip_days=p.skip_days, active=p.active)
    series = app.find(Series, p.series_id)
    if series is None:
        series = Series.define_new(ctx, defined)
    elif series.workspace_id != ctx.workspace_id:
        raise Rejected(Reason.invalid_payload, f"series id {p.series_id} is taken")
    else:
        series.define(ctx, defined)
    return [series], {"series_id": p.series_id, "kind": p.kind, "active": p.active, "timezone": workspace.timezone}


def check_rule(text: str, starts_at: datetime) -> None:
    """Refuse a rule python-dateutil cannot read, or one that a top-off could not walk quickly: an
    interval or count below 1, or no occurrence within two years of its start (an impossible rule
    would be searched up to the year 9999)."""
    try:
        rule = rrulestr(text, dtstart=starts_at)
    except (ValueError, TypeError, OverflowError) as error:
        raise Rejected(Reason.invalid_schedule, f"not an RFC 5545 RRULE: {error}") from None
    if rule._interval < 1 or (rule._count is not None and rule._count < 1):  # noqa: SLF001 - dateutil's parsed parts
        raise Rejected(Reason.invalid_schedule, "INTERVAL and COUNT must be at least 1")
    probe_until = starts_at + timedelta(days=731)
    if rule._until is not None and rule._until < probe_until:  # noqa: SLF001
        probe_until = rule._until  # noqa: SLF001
    if rule.replace(count=None, until=probe_until).after(starts_at, inc=True) is None:
        raise Rejected(Reason.invalid_schedule, "the rule has no occurrence within two years of starts_at")


def _unique(aggregates: list[HeraldAggregate]) -> list[HeraldAggregate]:
    seen: dict[object, HeraldAggregate] = {}
    for aggregate in aggregates:
        seen.setdefault(aggregate.id, aggregate)
    return list(seen.values())
