"""Deciding the content workflow's commands: drafts, submission, approval.

Scheduling itself is the same as ``schedule_post``'s (domain/post/handlers.py,
``place_on_schedule``): content checked per platform, the queue and daily limits, a hold per
destination — at the moment the post becomes scheduled, never before.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from schemas import commands as cmd

from domain.base import Context
from domain.post.aggregate import Post
from domain.post.handlers import check_content, check_due, place_on_schedule, post_id_for, resolve_destinations
from domain.registry import Outcome, handles
from domain.rejections import Reason, Rejected

if TYPE_CHECKING:
    from domain.application import HeraldApplication


@handles(cmd.CreateDraft)
def create_draft(app: HeraldApplication, ctx: Context, p: cmd.CreateDraft) -> Outcome:
    workspace = app.workspace(ctx)
    post_id = post_id_for(ctx.command_id, p)
    if app.find(Post, post_id) is not None:
        raise Rejected(Reason.post_exists, f"post {post_id} already exists")
    drafts = resolve_destinations(app, workspace, p.destinations, p.destination_text, p.destination_media)
    post = Post.draft(ctx, post_id, p.text, [str(u) for u in p.media_urls], p.publish_at, drafts, stage=p.stage)
    return [post], {"post_id": post_id, "status": post.status,
                    "publish_at": p.publish_at.isoformat() if p.publish_at else None}


@handles(cmd.SubmitPost)
def submit_post(app: HeraldApplication, ctx: Context, p: cmd.SubmitPost) -> Outcome:
    """draft → needs_approval where the workspace requires approval, else draft → scheduled."""
    post = app.post(ctx, p.post_id)
    post.require_stage("draft")
    workspace = app.workspace(ctx)
    publish_at = p.publish_at or post.publish_at or ctx.now
    check_due(app, ctx, publish_at)
    drafts = list((post.drafts or {}).values())
    if not drafts:
        raise Rejected(Reason.no_destinations, f"post {p.post_id} has no destination to publish to")
    if workspace.requires_approval:
        check_content(post.text, post.media_urls, drafts)  # an approver sees only what could be published
        post.submit_for_approval(ctx, p.comment)
        return [post], {"post_id": p.post_id, "status": post.status, "publish_at": _iso(p.publish_at or post.publish_at)}
    return _schedule(app, ctx, post, publish_at, p.comment or "submitted")


@handles(cmd.ApprovePost)
def approve_post(app: HeraldApplication, ctx: Context, p: cmd.ApprovePost) -> Outcome:
    post = app.post(ctx, p.post_id)
    post.approve(ctx, p.comment)
    publish_at = p.publish_at or post.publish_at or ctx.now
    check_due(app, ctx, publish_at)
    return _schedule(app, ctx, post, publish_at, "approved")


@handles(cmd.RejectPost)
def reject_post(app: HeraldApplication, ctx: Context, p: cmd.RejectPost) -> Outcome:
    post = app.post(ctx, p.post_id)
    post.reject(ctx, p.comment)
    return [post], {"post_id": p.post_id, "status": post.status}


def _schedule(app: HeraldApplication, ctx: Context, post: Post, publish_at: datetime, reason: str) -> Outcome:
    drafts = list((post.drafts or {}).values())
    workspace, wallet, destinations = place_on_schedule(app, ctx, post.post_id, post.text, post.media_urls,
                                                        publish_at, drafts)
    post.put_on_schedule(ctx, publish_at, destinations, reason)
    return [workspace, wallet, post], {"post_id": post.post_id, "status": post.status,
                                       "publish_at": publish_at.isoformat()}


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None
