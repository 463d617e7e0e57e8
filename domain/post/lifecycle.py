"""A post before it is on the schedule: idea → draft → needs_approval → (approved) scheduled.

An idea or a draft holds no credits and is not in the workspace's queue; a submitted draft waits
for an approver when the workspace requires approval, and an approver's rejection sends it back to
draft with a comment. Once scheduled (``PostScheduled``), the destinations carry the state
(domain/post/aggregate.py). Every step is an event naming its actor and reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from schemas import events as ev

from domain.base import Context
from domain.rejections import Reason, Rejected

if TYPE_CHECKING:
    from domain.post.aggregate import Post

# The stages before the schedule; a post past them has ``stage`` None.
UNSCHEDULED = ("idea", "draft", "needs_approval")


class Drafting:
    """The Post's steps before the schedule (mixed into Post)."""

    # Class defaults: a snapshot taken before drafts existed loads without them.
    stage: str | None = None
    drafts: dict[str, ev.DraftDestination] | None = None

    @classmethod
    def draft(
        cls: type[Post],  # type: ignore[misc]
        ctx: Context,
        post_id: str,
        text: str,
        media_urls: list[str],
        publish_at: datetime | None,
        destinations: list[ev.DraftDestination],
        stage: str = "draft",
        reason: str = "drafted",
    ) -> Post:
        """A new idea or draft: recorded, nothing held, nothing queued, no limit counted."""
        drafted = ev.PostDrafted(post_id=post_id, stage=stage, text=text, media_urls=media_urls,
                                 publish_at=publish_at, destinations=destinations, actor=ctx.issued_by,
                                 reason=reason)
        return cls.start(ctx, post_id, drafted)

    def require_stage(self: Post, *stages: str) -> None:  # type: ignore[misc]
        if self.cancelled or self.stage not in stages:
            reason = Reason.post_not_awaiting_approval if stages == ("needs_approval",) else Reason.post_not_draft
            raise Rejected(reason, f"post {self.post_id} is {self.status}; this needs it to be {' or '.join(stages)}")

    def submit_for_approval(self: Post, ctx: Context, comment: str) -> None:  # type: ignore[misc]
        self.require_stage("draft")
        self.record(ctx, ev.PostSubmitted(post_id=self.post_id, actor=ctx.issued_by, reason=comment or "submitted"))

    def approve(self: Post, ctx: Context, comment: str) -> None:  # type: ignore[misc]
        """Approval only; the handler puts the post on the schedule in the same decision."""
        self.require_stage("needs_approval")
        self.record(ctx, ev.PostApproved(post_id=self.post_id, actor=ctx.issued_by, reason=comment or "approved"))

    def reject(self: Post, ctx: Context, comment: str) -> None:  # type: ignore[misc]
        self.require_stage("needs_approval")
        self.record(ctx, ev.PostRejected(post_id=self.post_id, actor=ctx.issued_by, reason=comment))

    def put_on_schedule(self: Post, ctx: Context, publish_at: datetime,  # type: ignore[misc]
                        destinations: list[ev.Destination], reason: str) -> None:
        """The draft (submitted, or approved) on the schedule: its holds were placed by the caller."""
        self.record(ctx, ev.PostScheduled(post_id=self.post_id, text=self.text, media_urls=list(self.media_urls),
                                          publish_at=publish_at, destinations=destinations,
                                          actor=ctx.issued_by, reason=reason))

    def evolve_draft(self: Post, event: ev.EventData) -> bool:  # type: ignore[misc]
        """Applies a pre-schedule event; False when ``event`` is not one."""
        match event:
            case ev.PostDrafted():
                self.post_id, self.text, self.stage = event.post_id, event.text, event.stage
                self.media_urls, self.publish_at = list(event.media_urls), event.publish_at
                self.drafts = {d.destination_id: d for d in event.destinations}
            case ev.PostSubmitted():
                self.stage = "needs_approval"
            case ev.PostApproved():
                pass  # the PostScheduled beside it moves the post on
            case ev.PostRejected():
                self.stage = "draft"
            case _:
                return False
        return True
