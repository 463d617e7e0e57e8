"""Deciding post commands: scheduling, cancelling, and the publishing processors' attempts."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from schemas import commands as cmd
from schemas import events as ev

from domain.account import SocialAccount
from domain.base import Context, HeraldAggregate, derived_id
from domain.post import platform_rules
from domain.post.aggregate import Post, PublishPolicy, hold_id_for
from domain.wallet import Wallet
from domain.workspace.aggregate import Workspace
from domain.registry import Outcome, handles
from domain.rejections import Reason, Rejected
from domain.wallet.publish_guard import skipped_without_credits

if TYPE_CHECKING:
    from domain.application import HeraldApplication

# A destination skipped at its start because the day's posts on its platform are over the daily limit
# (lowered since they were scheduled).
DAILY_LIMIT_SKIP = "daily_post_limit_reached"

# A client clock a little behind ours should not turn "now" into "in the past".
CLOCK_SKEW = timedelta(seconds=60)


def post_id_for(command_id: str, p: cmd.SchedulePost | cmd.CreateDraft) -> str:
    return p.post_id or derived_id("post", command_id)


@handles(cmd.SchedulePost)
def schedule_post(app: HeraldApplication, ctx: Context, p: cmd.SchedulePost) -> Outcome:
    """Create and schedule at once. In a workspace that requires approval the post is created as a
    draft and submitted instead: it waits for an approver, nothing held yet."""
    post_id = post_id_for(ctx.command_id, p)
    publish_at = p.publish_at or ctx.now
    post, changed = create_scheduled(app, ctx, post_id, p.text, [str(u) for u in p.media_urls], publish_at,
                                     p.destinations, p.destination_text, draft_publish_at=p.publish_at)
    return changed, {"post_id": post_id, "publish_at": publish_at.isoformat(), "status": post.status}


def create_scheduled(app: HeraldApplication, ctx: Context, post_id: str, text: str, media: list[str],
                     publish_at: datetime, account_ids: list[str], destination_text: dict[str, str],
                     draft_publish_at: datetime | None) -> tuple[Post, list[HeraldAggregate]]:
    """A new post on the schedule (or, where the workspace requires approval, submitted for it):
    what ``schedule_post`` decides, also for the occurrences of a series. Refused before any change."""
    workspace = app.workspace(ctx)
    if app.find(Post, post_id) is not None:
        raise Rejected(Reason.post_exists, f"post {post_id} already exists")
    check_due(app, ctx, publish_at)
    drafts = resolve_destinations(app, workspace, account_ids, destination_text, {})
    if workspace.requires_approval:
        check_content(text, media, drafts)
        post = Post.draft(ctx, post_id, text, media, draft_publish_at, drafts, reason="schedule_post")
        post.submit_for_approval(ctx, "scheduled where approval is required")
        return post, [post]
    workspace, wallet, destinations = place_on_schedule(app, ctx, post_id, text, media, publish_at, drafts)
    post = Post.schedule(ctx, post_id, text, media, publish_at, destinations)
    return post, [workspace, wallet, post]


def resolve_destinations(app: HeraldApplication, workspace: Workspace, account_ids: list[str],
                         texts: dict[str, str], media: dict[str, list]) -> list[ev.DraftDestination]:
    """The workspace's accounts named, with their own text and media where given."""
    destinations = []
    for account_id in account_ids:
        account = app.find(SocialAccount, account_id) if account_id in workspace.accounts else None
        if account is None:
            raise Rejected(Reason.unknown_social_account, f"no social account {account_id} in this workspace")
        own_media = media.get(account_id)
        destinations.append(ev.DraftDestination(
            destination_id=account_id, social_account_id=account_id, platform=account.platform,
            handle=account.handle, text=texts.get(account_id),
            media_urls=[str(u) for u in own_media] if own_media is not None else None))
    return destinations


def check_due(app: HeraldApplication, ctx: Context, publish_at: datetime) -> None:
    if publish_at < ctx.now - CLOCK_SKEW:
        raise Rejected(Reason.publish_at_in_past, f"publish_at {publish_at.isoformat()} is in the past")
    horizon = ctx.now + timedelta(seconds=app.policy.scheduling_horizon_s)
    if publish_at > horizon:
        raise Rejected(Reason.publish_at_beyond_horizon, f"publish_at {publish_at.isoformat()} is after the "
                       f"scheduling horizon ({horizon.isoformat()})")


def place_on_schedule(app: HeraldApplication, ctx: Context, post_id: str, text: str, media_urls: list[str],
                      publish_at: datetime, drafts: list[ev.DraftDestination]
                      ) -> tuple[Workspace, Wallet, list[ev.Destination]]:
    """What scheduling a post takes: its content checked per platform, its place in the queue (the
    tier's queue and daily limits), and one credit held per destination. The caller records the
    PostScheduled with the destinations returned."""
    if not drafts:
        raise Rejected(Reason.no_destinations, f"post {post_id} has no destination to publish to")
    workspace = app.workspace(ctx)
    gone = [d.destination_id for d in drafts if d.social_account_id not in workspace.accounts]
    if gone:  # disconnected since the draft named it
        raise Rejected(Reason.unknown_social_account, f"no social account {', '.join(gone)} in this workspace any more")
    check_content(text, media_urls, drafts)
    destinations = [
        ev.Destination(destination_id=d.destination_id, social_account_id=d.social_account_id, platform=d.platform,
                       handle=d.handle, text=d.text if d.text is not None else text,
                       text_overridden=d.text is not None, media_urls=d.media_urls,
                       hold_id=hold_id_for(post_id, d.destination_id))
        for d in drafts
    ]
    wallet = app.wallet(ctx)
    # Every check before any change: a refusal leaves the workspace and wallet as they were, so a
    # series can have one occurrence refused and go on with the next in the same decision.
    workspace.check_enqueue(ctx, publish_at, [d.platform for d in destinations])
    wallet.check_available(ctx, len(destinations))
    workspace.enqueue_post(ctx, post_id, publish_at, [d.platform for d in destinations])
    for dest in destinations:
        wallet.place_hold(ctx, dest.hold_id, post_id, dest.destination_id, due_at=publish_at)
    return workspace, wallet, destinations


def check_content(text: str, media_urls: list[str], destinations: list[ev.DraftDestination]) -> None:
    """Each destination's platform rules, now rather than at publish time. A media URL whose kind
    cannot be told from it is not refused here: its type is checked when it is fetched."""
    problems = []
    for dest in destinations:
        own_text = dest.text if dest.text is not None else text
        own_media = dest.media_urls if dest.media_urls is not None else media_urls
        if not own_text.strip():
            problems.append(f"{dest.destination_id} ({dest.platform}): text_empty: the post has no text")
        for v in platform_rules.check(dest.platform, own_text, own_media):
            if v.code != platform_rules.Code.media_kind_unknown:
                problems.append(f"{dest.destination_id} ({dest.platform}): {v.code}: {v.message}")
    if problems:
        raise Rejected(Reason.content_invalid, "; ".join(problems)[:2000])


@handles(cmd.CancelPost)
def cancel_post(app: HeraldApplication, ctx: Context, p: cmd.CancelPost) -> Outcome:
    post = app.post(ctx, p.post_id)
    if p.destination_ids is not None:
        if post.stage is not None:
            raise Rejected(Reason.post_not_cancellable, f"post {p.post_id} is {post.status}: edit it to remove "
                           "destinations, or cancel it whole")
        for destination_id in p.destination_ids:
            post.destination(destination_id)
        changed = cancel_destinations(app, ctx, post, list(dict.fromkeys(p.destination_ids)), p.reason)
        return changed, {"post_id": p.post_id, "status": post.status, "cancelled": list(p.destination_ids)}
    before = len(post.pending_events)
    post.cancel(ctx, p.reason)
    return [post, *settle_holds(app, ctx, post, before), *_dequeue_if_settled(app, ctx, post)], \
        {"post_id": p.post_id, "status": post.status}


def cancel_destinations(app: HeraldApplication, ctx: Context, post: Post, destination_ids: list[str],
                        reason: str) -> list[HeraldAggregate]:
    """Cancels some of a scheduled post's waiting destinations: their holds released and their
    daily slots freed at once (the post may go on waiting with the others)."""
    before = len(post.pending_events)
    post.cancel_destinations(ctx, destination_ids, reason)
    workspace = app.workspace(ctx)
    due = post.slot_due()
    workspace.shrink_post_slot(ctx, post.post_id, [platform for platform, _ in due], due)
    return unique([post, workspace, *settle_holds(app, ctx, post, before), *_dequeue_if_settled(app, ctx, post)])


def hold_destinations(app: HeraldApplication, ctx: Context, post: Post, destination_ids: list[str],
                      reason: str) -> list[HeraldAggregate]:
    """Puts some of a scheduled post's waiting destinations on hold: their holds released and daily
    slots freed at once; the post keeps its place in the queue."""
    before = len(post.pending_events)
    post.put_on_hold(ctx, destination_ids, reason)
    workspace = app.workspace(ctx)
    due = post.slot_due()
    workspace.shrink_post_slot(ctx, post.post_id, [platform for platform, _ in due], due)
    return unique([post, workspace, *settle_holds(app, ctx, post, before)])


def unique(aggregates: list[HeraldAggregate]) -> list[HeraldAggregate]:
    """Each aggregate once, in first-seen order."""
    seen: dict[int, HeraldAggregate] = {}
    for a in aggregates:
        seen.setdefault(id(a), a)
    return list(seen.values())


@handles(cmd.StartPublishAttempt)
def start_publish_attempt(app: HeraldApplication, ctx: Context, p: cmd.StartPublishAttempt) -> Outcome:
    post = app.post(ctx, p.post_id)
    dest = post.destination(p.destination_id)
    account = app.find(SocialAccount, dest.social_account_id)
    if account is None:
        raise Rejected(Reason.unknown_social_account, f"social account {dest.social_account_id} is gone")
    connected = ev.SocialAccountConnected(
        social_account_id=account.social_account_id,
        platform=account.platform,
        handle=account.handle,
        instance_url=account.instance_url,
        settings=dict(account.settings),
    )
    before = len(post.pending_events)
    if not skipped_without_credits(app, ctx, post, p.destination_id, p.attempt):
        workspace = app.workspace(ctx)
        skip = None
        if account.disconnected:
            skip = "account_disconnected"
        elif account.needs_reconnect:
            skip = "account_needs_reconnect"
        elif workspace.over_daily_posts(workspace.local_day(dest.due_at), dest.platform):
            skip = DAILY_LIMIT_SKIP
        post.start_attempt(ctx, p.destination_id, p.attempt, connected, policy_of(app, workspace), skip_reason=skip)
    result = {"post_id": p.post_id, "destination_id": p.destination_id, "status": dest.status}
    return [post, *settle_holds(app, ctx, post, before), *_dequeue_if_settled(app, ctx, post)], result


@handles(cmd.RecordPublishOutcome)
def record_publish_outcome(app: HeraldApplication, ctx: Context, p: cmd.RecordPublishOutcome) -> Outcome:
    post = app.post(ctx, p.post_id)
    before = len(post.pending_events)
    post.record_outcome(ctx, p, app.policy)
    result = {"post_id": p.post_id, "destination_id": p.destination_id, "status": post.destination(p.destination_id).status}
    return [post, *settle_holds(app, ctx, post, before), *_dequeue_if_settled(app, ctx, post)], result


@handles(cmd.RetryDestination)
def retry_destination(app: HeraldApplication, ctx: Context, p: cmd.RetryDestination) -> Outcome:
    post = app.post(ctx, p.post_id)
    dest = post.destination(p.destination_id)
    hold_id = hold_id_for(p.post_id, p.destination_id, retry=ctx.command_id)
    post.retry(ctx, p.destination_id, hold_id)  # refused first if the destination cannot be retried
    wallet = app.wallet(ctx)
    wallet.place_hold(ctx, hold_id, p.post_id, p.destination_id, due_at=ctx.now)
    workspace = app.workspace(ctx)
    changed: list[HeraldAggregate] = [post, wallet]
    if p.post_id not in workspace.waiting_posts:  # it had left the queue: it waits again (its day was counted)
        workspace.enqueue_post(ctx, p.post_id)
        changed.append(workspace)
    return changed, {"post_id": p.post_id, "destination_id": p.destination_id, "status": dest.status,
                     "hold_id": hold_id}


@handles(cmd.ResolvePublishOutcome)
def resolve_publish_outcome(app: HeraldApplication, ctx: Context, p: cmd.ResolvePublishOutcome) -> Outcome:
    post = app.post(ctx, p.post_id)
    before = len(post.pending_events)
    post.resolve_outcome(ctx, p)
    result = {"post_id": p.post_id, "destination_id": p.destination_id, "status": post.destination(p.destination_id).status}
    return [post, *settle_holds(app, ctx, post, before), *_dequeue_if_settled(app, ctx, post)], result


def settle_holds(app: HeraldApplication, ctx: Context, post: Post, before: int) -> list[HeraldAggregate]:
    """End the holds of the destinations this decision ended (the post's events from ``before``
    on): a published destination consumes its hold, a failed, skipped or cancelled one releases
    it. In the same decision, not a command later: nothing waits on a second decision, and a hold
    never outlives its destination. A hold already gone (expired by the credit clock) is left be."""
    endings: list[tuple[str, str | None]] = []  # (hold, release reason; None: consume)
    for event in post.pending_events[before:]:
        data = getattr(event, "data", None)
        match getattr(event, "type", None):
            case ev.DestinationPublished.type:
                endings.append((data["hold_id"], None))
            case ev.DestinationFailed.type:
                endings.append((data["hold_id"], "publish_failed"))
            case ev.DestinationSkipped.type:
                endings.append((data["hold_id"], f"skipped:{data['reason']}"))
            case ev.PostCancelled.type:
                endings.extend((hold_id, "post_cancelled") for hold_id in data["released_holds"])
            case ev.DestinationsOnHold.type:
                endings.extend((hold_id, f"on_hold:{data['reason']}") for hold_id in data["released_holds"])
    if not endings:
        return []
    wallet = app.wallet(ctx)
    ended = False
    for hold_id, reason in endings:
        if hold_id not in wallet.holds:
            continue
        if reason is None:
            wallet.consume(ctx, hold_id)
        else:
            wallet.release(ctx, hold_id, reason)
        ended = True
    return [wallet] if ended else []


def policy_of(app: HeraldApplication, workspace: Workspace) -> PublishPolicy:
    """Herald's publishing policy with the workspace's own missed window, if it set one."""
    if workspace.missed_window_s is None:
        return app.policy
    return dataclasses.replace(app.policy, missed_window_s=workspace.missed_window_s)


def _dequeue_if_settled(app: HeraldApplication, ctx: Context, post: Post) -> list[HeraldAggregate]:
    if not post.settled:
        return []
    workspace = app.workspace(ctx)
    # Their daily slots free up: cancelled destinations, and those skipped for the daily limit (so that,
    # once enough were skipped, the rest of that day's posts are under the limit again and publish).
    cancelled = [d.platform for d in post.destinations.values() if not d.slot_freed
                 and (d.status == "cancelled" or (d.status == "skipped" and d.reason == DAILY_LIMIT_SKIP))]
    freed_at = [d.slot_at or post.publish_at for d in post.destinations.values() if not d.slot_freed
                and (d.status == "cancelled" or (d.status == "skipped" and d.reason == DAILY_LIMIT_SKIP))]
    workspace.dequeue_post(ctx, post.post_id, cancelled, freed_at if all(freed_at) else None)
    return [workspace]
