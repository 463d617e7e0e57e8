"""Changing a post: a draft freely (nothing is held), a scheduled post only where publishing has
not started.

A destination can be changed while it is ``pending``: no attempt of it has started. Once an
attempt started (attempting, outcome unknown, a retry waiting, or ended) its content and time are
what the platform was, or may have been, sent, so a change is refused with ``destination_started``.
A change that concerns the whole post (its text, media or time) needs every destination that is
not cancelled to be pending. The check and the change are one decision on the post, so an edit
racing the due time either lands before the attempt starts (which then sends the edited content)
or is refused: never both, never half.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from schemas import events as ev

from domain.base import Context
from domain.rejections import Reason, Rejected

if TYPE_CHECKING:
    from domain.post.aggregate import DestinationState, Post

CHANGEABLE = "pending"


class Editing:
    """The Post's changes (mixed into Post)."""

    def require_unstarted(self: Post, destination_ids: Iterable[str]) -> None:  # type: ignore[misc]
        started = []
        for destination_id in destination_ids:
            dest = self.destination(destination_id)
            if dest.status != CHANGEABLE:
                started.append(f"{destination_id} is {dest.status} (attempt {dest.attempt})")
        if started:
            raise Rejected(Reason.destination_started, "publishing has started, it can no longer be changed: "
                           + "; ".join(sorted(started)))

    def live_destinations(self: Post) -> list[str]:  # type: ignore[misc]
        """Every destination not cancelled nor on hold: those a change of the whole post concerns."""
        return [d_id for d_id, d in self.destinations.items() if d.status not in ("cancelled", "on_hold")]

    def redraft(self: Post, ctx: Context, stage: str, text: str, media_urls: list[str],  # type: ignore[misc]
                publish_at: datetime | None, destinations: list[ev.DraftDestination], reason: str) -> None:
        """An idea or draft as it now is (a post awaiting approval comes back to draft)."""
        self.require_stage("idea", "draft", "needs_approval")
        self.record(ctx, ev.PostDrafted(post_id=self.post_id, stage=stage, text=text, media_urls=media_urls,
                                        publish_at=publish_at, destinations=destinations, actor=ctx.issued_by,
                                        reason=reason))

    def revise(self: Post, ctx: Context, change: str, text: str, media_urls: list[str],  # type: ignore[misc]
               publish_at: datetime, destinations: list[ev.Destination], released_holds: list[str],
               reason: str) -> None:
        self.record(ctx, ev.PostRevised(post_id=self.post_id, change=change, text=text, media_urls=media_urls,
                                        publish_at=publish_at, destinations=destinations,
                                        released_holds=released_holds, actor=ctx.issued_by, reason=reason))

    def cancel_destinations(self: Post, ctx: Context, destination_ids: list[str], reason: str) -> None:  # type: ignore[misc]
        """Cancels some destinations still waiting; their daily slots are freed by the caller."""
        waiting = ("pending", "retry_scheduled", "on_hold")
        not_waiting = [f"{d} is {self.destination(d).status}" for d in destination_ids
                       if self.destination(d).status not in waiting]
        if not_waiting:
            raise Rejected(Reason.post_not_cancellable, "only waiting destinations can be cancelled: "
                           + "; ".join(not_waiting))
        self.record(ctx, ev.PostCancelled(post_id=self.post_id, reason=reason,
                                          cancelled_destinations=list(destination_ids),
                                          released_holds=[self.destinations[d].hold_id for d in destination_ids
                                                          if self.destinations[d].status != "on_hold"],
                                          actor=ctx.issued_by, slots_freed=True))

    def put_on_hold(self: Post, ctx: Context, destination_ids: list[str], reason: str) -> None:  # type: ignore[misc]
        """Keeps waiting destinations without publishing them; the caller releases their holds."""
        self.record(ctx, ev.DestinationsOnHold(post_id=self.post_id, destination_ids=list(destination_ids),
                                               released_holds=[self.destinations[d].hold_id for d in destination_ids],
                                               actor=ctx.issued_by, reason=reason))

    def evolve_revision(self: Post, event: ev.PostRevised) -> None:  # type: ignore[misc]
        from domain.post.aggregate import DestinationState

        self.text, self.media_urls, self.publish_at = event.text, list(event.media_urls), event.publish_at
        for d in event.destinations:
            old: DestinationState | None = self.destinations.get(d.destination_id)
            due = d.due_at or event.publish_at
            fresh = DestinationState(d.social_account_id, d.platform, d.handle, d.text, d.hold_id, due,
                                     text_overridden=d.text_overridden,
                                     media_urls=list(d.media_urls) if d.media_urls is not None else None,
                                     revised=True, slot_at=due)
            if old is not None:  # attempt numbers go on, so a re-added destination never repeats an attempt key
                fresh.attempt = old.attempt
                fresh.failures = old.failures if old.status != "cancelled" else 0
                fresh.slot_freed = False
            self.destinations[d.destination_id] = fresh
