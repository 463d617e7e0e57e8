"""Deciding edits, reschedules, publish-now and per-destination cancels.

A draft is rewritten as it is (no holds, no limits). A scheduled post is revised in one decision:
the destinations concerned must not have started (domain/post/edits.py), the content is checked
per platform again, the post's daily slot moves to the new day (limits checked there), a
destination moved in time or added gets a new hold (the old one released first: never two holds
for one destination), a removed one is cancelled and its hold released.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from schemas import commands as cmd
from schemas import events as ev

from domain.base import Context, HeraldAggregate
from domain.post.aggregate import Post, hold_id_for
from domain.post.handlers import (
    _dequeue_if_settled,
    check_content,
    check_due,
    resolve_destinations,
    settle_holds,
    unique,
)
from domain.registry import Outcome, handles
from domain.rejections import Reason, Rejected

if TYPE_CHECKING:
    from domain.application import HeraldApplication


@handles(cmd.EditPost)
def edit_post(app: HeraldApplication, ctx: Context, p: cmd.EditPost) -> Outcome:
    post = app.post(ctx, p.post_id)
    if post.stage is not None:
        return _edit_draft(app, ctx, post, p)
    if p.stage is not None:
        raise Rejected(Reason.post_not_draft, f"post {p.post_id} is {post.status}; only an idea or a draft changes stage")
    return _revise(app, ctx, post, p, change="edit")


@handles(cmd.ReschedulePost)
def reschedule_post(app: HeraldApplication, ctx: Context, p: cmd.ReschedulePost) -> Outcome:
    post = app.post(ctx, p.post_id)
    if post.stage is not None:
        post.require_stage("idea", "draft")
        if p.destination_ids is not None:
            raise Rejected(Reason.post_not_draft, f"post {p.post_id} is {post.status}: a draft has one time for "
                           "all its destinations; schedule it first to move some of them")
        edit = cmd.EditPost(post_id=p.post_id, publish_at=p.publish_at, reason=p.reason)
        return _edit_draft(app, ctx, post, edit)
    return _revise(app, ctx, post, cmd.EditPost(post_id=p.post_id, publish_at=p.publish_at, reason=p.reason),
                   change="reschedule", only=p.destination_ids)


@handles(cmd.PublishPostNow)
def publish_post_now(app: HeraldApplication, ctx: Context, p: cmd.PublishPostNow) -> Outcome:
    post = app.post(ctx, p.post_id)
    if post.stage is not None:
        raise Rejected(Reason.post_not_editable, f"post {p.post_id} is {post.status}; submit it first (with no "
                       "publish_at, or now, it is scheduled for now)")
    return _revise(app, ctx, post, cmd.EditPost(post_id=p.post_id, publish_at=ctx.now, reason=p.reason),
                   change="publish_now", only=p.destination_ids)


def _edit_draft(app: HeraldApplication, ctx: Context, post: Post, p: cmd.EditPost) -> Outcome:
    post.require_stage("idea", "draft", "needs_approval")
    if post.stage == "needs_approval" and p.stage == "idea":  # an edit withdraws it to draft, not further
        raise Rejected(Reason.post_not_draft, f"post {post.post_id} awaits approval; an edit brings it back to "
                       "draft, then it can become an idea")
    drafts = dict(post.drafts or {})
    for destination_id in p.remove_destinations:
        if drafts.pop(destination_id, None) is None:
            raise Rejected(Reason.unknown_destination, f"post {post.post_id} has no destination {destination_id}")
    for destination_id in p.add_destinations:
        if destination_id in drafts:
            raise Rejected(Reason.destination_exists, f"{destination_id} is already a destination")
    workspace = app.workspace(ctx)
    for d in resolve_destinations(app, workspace, p.add_destinations, {}, {}):
        drafts[d.destination_id] = d
    for destination_id, text in p.destination_text.items():
        drafts[destination_id] = _draft_of(drafts, destination_id).model_copy(update={"text": text})
    for destination_id, media in p.destination_media.items():
        urls = [str(u) for u in media] if media is not None else None
        drafts[destination_id] = _draft_of(drafts, destination_id).model_copy(update={"media_urls": urls})
    stage = p.stage or (post.stage if post.stage != "needs_approval" else "draft")
    text = p.text if p.text is not None else post.text
    media_urls = [str(u) for u in p.media_urls] if p.media_urls is not None else list(post.media_urls)
    publish_at = p.publish_at or post.publish_at
    reason = p.reason if post.stage != "needs_approval" else f"{p.reason} (approval withdrawn: back to draft)"
    post.redraft(ctx, stage, text, media_urls, publish_at, list(drafts.values()), reason)
    return [post], {"post_id": post.post_id, "status": post.status,
                    "publish_at": publish_at.isoformat() if publish_at else None}


def _draft_of(drafts: dict[str, ev.DraftDestination], destination_id: str) -> ev.DraftDestination:
    if destination_id not in drafts:
        raise Rejected(Reason.unknown_destination, f"the post has no destination {destination_id}")
    return drafts[destination_id]


def _revise(app: HeraldApplication, ctx: Context, post: Post, p: cmd.EditPost, change: str,
            only: list[str] | None = None) -> Outcome:
    """``only``: a move in time (``p.publish_at``) of these destinations alone; the others keep theirs."""
    live = post.live_destinations()
    if only is not None:
        strangers = [d for d in only if d not in live]
        if strangers:
            raise Rejected(Reason.unknown_destination, f"post {post.post_id} has no destination "
                           f"{', '.join(sorted(strangers))} still on it")
        if set(only) == set(live):  # every destination: a move of the post
            only = None
    moving = set(only) if only is not None else set(live) if p.publish_at is not None else set()
    whole = p.text is not None or p.media_urls is not None or (p.publish_at is not None and only is None)
    if whole and not live:
        raise Rejected(Reason.post_not_editable, f"post {post.post_id} is {post.status}: nothing left to change")
    adding = set(p.add_destinations)
    on_hold = {d for d, s in post.destinations.items() if s.status == "on_hold"}
    for destination_id in [*p.remove_destinations, *p.destination_text, *p.destination_media]:
        if destination_id not in live and destination_id not in adding and not (
                destination_id in on_hold and destination_id in p.remove_destinations):
            raise Rejected(Reason.unknown_destination, f"post {post.post_id} has no destination {destination_id} "
                           "still on it")
    concerned = set(live) if whole else ({*p.remove_destinations, *p.destination_text, *p.destination_media}
                                         | moving) - adding
    concerned -= on_hold  # removing one on hold is cancelling it: nothing of it was started or is held
    post.require_unstarted(sorted(concerned))
    if post.settled:  # it has left the queue: nothing of it waits any more
        raise Rejected(Reason.post_not_editable, f"post {post.post_id} is {post.status}: nothing left to change")
    for destination_id in p.add_destinations:
        if destination_id in live:
            raise Rejected(Reason.destination_exists, f"{destination_id} is already a destination")

    text = p.text if p.text is not None else post.text
    media_urls = [str(u) for u in p.media_urls] if p.media_urls is not None else list(post.media_urls)
    publish_at = p.publish_at if p.publish_at is not None and only is None else post.publish_at
    assert publish_at is not None, "a scheduled post has its time"
    if p.publish_at is not None:
        check_due(app, ctx, p.publish_at)
    if p.add_destinations:
        check_due(app, ctx, publish_at)

    workspace = app.workspace(ctx)
    wallet = app.wallet(ctx)
    removed = set(p.remove_destinations)
    # Each revised destination in full: its own text and media unless the edit changes them.
    revised: list[ev.DraftDestination] = []
    for destination_id in sorted(concerned - removed, key=live.index):
        dest = post.destinations[destination_id]
        own_text = dest.text if dest.text_overridden else None
        own_media = dest.media_urls
        if destination_id in p.destination_text:
            own_text = p.destination_text[destination_id]
        if destination_id in p.destination_media:
            media = p.destination_media[destination_id]
            own_media = [str(u) for u in media] if media is not None else None
        revised.append(ev.DraftDestination(destination_id=destination_id, social_account_id=dest.social_account_id,
                                           platform=dest.platform, handle=dest.handle, text=own_text,
                                           media_urls=own_media))
    added = resolve_destinations(app, workspace, p.add_destinations,
                                 {k: v for k, v in p.destination_text.items() if k in adding and v is not None},
                                 {k: v for k, v in p.destination_media.items() if k in adding and v is not None})
    check_content(text, media_urls, revised + added)

    released: list[str] = []
    destinations: list[ev.Destination] = []
    for d in revised + added:
        is_new = (d.destination_id not in post.destinations
                  or post.destinations[d.destination_id].status in ("cancelled", "on_hold"))
        hold_id = post.destinations[d.destination_id].hold_id if not is_new else ""
        # Each destination keeps its own time unless this moves it (an added one comes at the post's time).
        due = publish_at if is_new else post.destinations[d.destination_id].due_at
        if not is_new and d.destination_id in moving and p.publish_at is not None:
            due = p.publish_at
        moved = not is_new and due != post.destinations[d.destination_id].due_at
        if is_new or moved:
            if hold_id and hold_id in wallet.holds and not is_new:
                wallet.release(ctx, hold_id, f"post_{change}")
                released.append(hold_id)
            hold_id = hold_id_for(post.post_id, d.destination_id, retry=ctx.command_id)
            wallet.place_hold(ctx, hold_id, post.post_id, d.destination_id, due_at=due)
        destinations.append(ev.Destination(
            destination_id=d.destination_id, social_account_id=d.social_account_id, platform=d.platform,
            handle=d.handle, text=d.text if d.text is not None else text, text_overridden=d.text is not None,
            media_urls=d.media_urls, hold_id=hold_id, due_at=due))

    if not removed and not destinations:
        raise Rejected(Reason.invalid_payload, "the edit changes nothing")
    before = len(post.pending_events)
    if removed:
        post.cancel_destinations(ctx, sorted(removed, key=list(post.destinations).index), p.reason)
    if destinations:
        post.revise(ctx, change, text, media_urls, publish_at, destinations, released, p.reason)
    changed: list[HeraldAggregate] = [post, wallet, *settle_holds(app, ctx, post, before)]
    # The daily slots follow each destination to its own local day (limits checked for what a day gains).
    workspace.move_post_slots(ctx, post.post_id, post.slot_due())
    changed += [workspace, *_dequeue_if_settled(app, ctx, post)]
    return unique(changed), {"post_id": post.post_id, "status": post.status, "publish_at": publish_at.isoformat(),
                              "destinations": [d.destination_id for d in destinations],
                              "due_at": {d.destination_id: (d.due_at or publish_at).isoformat() for d in destinations},
                              "removed": sorted(removed), "released_holds": released}
