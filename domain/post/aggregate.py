"""Post: content bound for several destinations, each with its own publishing state.

Per destination: pending → attempting(n) → published | retry_scheduled | failed | skipped |
outcome_unknown; pending or retry_scheduled → cancelled; outcome_unknown → published | failed
once resolved. Only the expected attempt number can start, and only the running attempt can
report an outcome, so a destination is never published twice whatever order commands arrive in.
A throttled attempt (the platform said wait) waits as retry_scheduled without using up a retry.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from schemas import events as ev
from schemas.commands import Outcome, RecordPublishOutcome, Resolution, ResolvePublishOutcome
from schemas.statuses import TERMINAL, WAITING, post_status

from domain.base import Context, HeraldAggregate, derived_id
from domain.post.edits import Editing
from domain.post.lifecycle import Drafting
from domain.rejections import Reason, Rejected



def hold_id_for(post_id: str, destination_id: str, retry: str = "") -> str:
    """The destination's hold; an admin's retry (``retry``: its command id) places a new one."""
    if retry:
        return derived_id("hold", post_id, destination_id, "retry", retry)
    return derived_id("hold", post_id, destination_id)


def attempt_key_for(post_id: str, destination_id: str, attempt: int) -> str:
    return derived_id("attempt", post_id, destination_id, attempt)


@dataclass
class DestinationState:
    social_account_id: str
    platform: str
    handle: str
    text: str
    hold_id: str
    due_at: datetime
    status: str = "pending"
    attempt: int = 0
    platform_post_id: str | None = None
    url: str | None = None
    reason: str = ""
    failures: int = 0  # attempts that failed and were retried; throttled attempts do not count
    text_overridden: bool = False
    media_urls: list[str] | None = None  # the destination's own media; None: the post's
    revised: bool = False  # its time was set by a revision: a start long before it was asked for the old time
    slot_freed: bool = False  # cancelled on its own: its daily slot was freed then, not when the post settles
    slot_at: datetime | None = None  # the time its daily slot was counted for (retries move due_at, not this)


@dataclass(frozen=True)
class PublishPolicy:
    retry_delays_s: tuple[float, ...] = (60.0, 300.0, 900.0)
    missed_window_s: float = 3600.0
    scheduling_horizon_s: float = 366 * 86400.0  # how far ahead a post may be due
    # Each retry delay is spread by up to ±this share, so destinations that failed together
    # (a platform outage) do not all come back at the same instant.
    retry_jitter: float = 0.2
    # How far ahead of its due time an attempt may start (the dispatcher starts them a little ahead).
    start_ahead_s: float = 60.0

    def retry_delay_s(self, failures: int, attempt_key: str) -> float:
        """The delay before retrying after the ``failures``-th failure (1-based), jittered by the
        attempt key: deterministic for one attempt, spread across attempts."""
        base = self.retry_delays_s[failures - 1]
        spread = int.from_bytes(hashlib.sha256(attempt_key.encode()).digest()[:8], "big") / 2**64
        return base * (1 + self.retry_jitter * (2 * spread - 1))


ENDS_A_HOLD = (ev.DestinationPublished, ev.DestinationFailed, ev.DestinationSkipped, ev.PostCancelled)


class Post(Drafting, Editing, HeraldAggregate):
    KIND = "post"

    def __init__(self) -> None:
        super().__init__()
        self.post_id = ""
        self.text = ""
        self.media_urls: list[str] = []
        self.publish_at: datetime | None = None
        self.destinations: dict[str, DestinationState] = {}
        self.cancelled = False

    @classmethod
    def schedule(
        cls,
        ctx: Context,
        post_id: str,
        text: str,
        media_urls: list[str],
        publish_at: datetime,
        destinations: list[ev.Destination],
    ) -> Post:
        scheduled = ev.PostScheduled(
            post_id=post_id, text=text, media_urls=media_urls, publish_at=publish_at, destinations=destinations,
            actor=ctx.issued_by, reason="scheduled",
        )
        return cls.start(ctx, post_id, scheduled)

    def record(self, ctx: Context, event: ev.EventData) -> None:
        # A destination that ends has its hold ended in the same decision (the post handlers do it:
        # domain/post/handlers.py, settle_holds), so the events say so and the settler leaves them be.
        if isinstance(event, ENDS_A_HOLD):
            event = event.model_copy(update={"hold_settled": True})
        super().record(ctx, event)

    @property
    def status(self) -> str:
        if self.stage is not None:
            return "cancelled" if self.cancelled else self.stage
        return post_status(d.status for d in self.destinations.values())

    def media_of(self, dest: DestinationState) -> list[str]:
        return list(dest.media_urls) if dest.media_urls is not None else list(self.media_urls)

    def slot_due(self) -> list[tuple[str, datetime]]:
        """(platform, the time its daily slot counts for) of each destination whose slot is not freed."""
        return [(d.platform, d.slot_at or self.publish_at or d.due_at) for d in self.destinations.values()
                if not d.slot_freed]

    @property
    def settled(self) -> bool:
        return all(d.status in TERMINAL for d in self.destinations.values())

    def destination(self, destination_id: str) -> DestinationState:
        try:
            return self.destinations[destination_id]
        except KeyError:
            raise Rejected(Reason.unknown_destination, f"post {self.post_id} has no destination {destination_id}") from None

    def start_attempt(
        self, ctx: Context, destination_id: str, attempt: int, account: ev.SocialAccountConnected, policy: PublishPolicy,
        skip_reason: str | None = None,
    ) -> None:
        """Start the attempt, or skip the destination: when it is past the missed window, or with
        ``skip_reason`` (e.g. its account must be reconnected first)."""
        dest = self.destination(destination_id)
        if dest.status not in WAITING or attempt != dest.attempt + 1:
            raise Rejected(
                Reason.attempt_fenced,
                f"destination is {dest.status} after attempt {dest.attempt}; attempt {attempt} cannot start",
            )
        if dest.revised and (dest.due_at - ctx.now).total_seconds() > policy.start_ahead_s:
            # a start asked for before the post was moved later (the dispatcher read the old time)
            raise Rejected(Reason.not_due, f"destination is due at {dest.due_at.isoformat()}, not yet")
        late_by = (ctx.now - dest.due_at).total_seconds()
        if late_by > policy.missed_window_s:
            skip_reason = "missed"
        if skip_reason:
            self.record(
                ctx,
                ev.DestinationSkipped(
                    post_id=self.post_id, destination_id=destination_id, hold_id=dest.hold_id, reason=skip_reason
                ),
            )
            return
        self.record(
            ctx,
            ev.AttemptStarted(
                post_id=self.post_id,
                destination_id=destination_id,
                attempt=attempt,
                attempt_key=attempt_key_for(self.post_id, destination_id, attempt),
                social_account_id=dest.social_account_id,
                platform=account.platform,
                handle=account.handle,
                instance_url=account.instance_url,
                text=dest.text,
                media_urls=self.media_of(dest),
                not_before=dest.due_at,
                account_settings=dict(account.settings),
            ),
        )

    def record_outcome(self, ctx: Context, outcome: RecordPublishOutcome, policy: PublishPolicy) -> None:
        dest = self.destination(outcome.destination_id)
        if dest.status != "attempting" or outcome.attempt != dest.attempt:
            raise Rejected(
                Reason.outcome_fenced,
                f"destination is {dest.status} at attempt {dest.attempt}; an outcome of attempt "
                f"{outcome.attempt} cannot be recorded",
            )
        common = {"post_id": self.post_id, "destination_id": outcome.destination_id}
        match outcome.outcome:
            case Outcome.published:
                assert outcome.platform_post_id
                self.record(
                    ctx,
                    ev.DestinationPublished(
                        **common,
                        attempt=outcome.attempt,
                        hold_id=dest.hold_id,
                        platform_post_id=outcome.platform_post_id,
                        url=outcome.url,
                    ),
                )
            case Outcome.throttled:
                wait = max(outcome.retry_after_s or 0.0, 1.0)
                self.record(
                    ctx,
                    ev.DestinationThrottled(
                        **common,
                        attempt=outcome.attempt,
                        until=ctx.now + timedelta(seconds=wait),
                        detail=outcome.detail,
                        status_code=outcome.status_code,
                    ),
                )
            case Outcome.retry if dest.failures < len(policy.retry_delays_s):
                key = attempt_key_for(self.post_id, outcome.destination_id, outcome.attempt)
                delay = max(policy.retry_delay_s(dest.failures + 1, key), outcome.retry_after_s or 0.0)
                self.record(
                    ctx,
                    ev.RetryScheduled(
                        **common,
                        attempt=outcome.attempt,
                        retry_at=ctx.now + timedelta(seconds=delay),
                        error_kind=outcome.error_kind,
                        detail=outcome.detail,
                        status_code=outcome.status_code,
                    ),
                )
            case Outcome.retry | Outcome.failed:
                detail = outcome.detail
                if outcome.outcome is Outcome.retry:
                    detail = f"gave up after {dest.failures + 1} failed attempts: {detail}"
                self.record(
                    ctx,
                    ev.DestinationFailed(
                        **common,
                        attempt=outcome.attempt,
                        hold_id=dest.hold_id,
                        error_kind=outcome.error_kind,
                        detail=detail,
                        status_code=outcome.status_code,
                    ),
                )
            case Outcome.skipped:
                self.record(ctx, ev.DestinationSkipped(**common, hold_id=dest.hold_id, reason=outcome.detail or "skipped"))
            case Outcome.unknown:
                self.record(ctx, ev.OutcomeUnknown(**common, attempt=outcome.attempt, detail=outcome.detail))

    def resolve_outcome(self, ctx: Context, resolution: ResolvePublishOutcome) -> None:
        """End a destination whose outcome is unknown, with what the platform was found to hold."""
        dest = self.destination(resolution.destination_id)
        if dest.status != "outcome_unknown" or resolution.attempt != dest.attempt:
            raise Rejected(
                Reason.outcome_fenced,
                f"destination is {dest.status} at attempt {dest.attempt}; only an unknown outcome of its "
                f"running attempt can be resolved (asked: attempt {resolution.attempt})",
            )
        common = {"post_id": self.post_id, "destination_id": resolution.destination_id, "attempt": dest.attempt,
                  "hold_id": dest.hold_id}
        if resolution.resolution is Resolution.published:
            assert resolution.platform_post_id
            self.record(ctx, ev.DestinationPublished(**common, platform_post_id=resolution.platform_post_id,
                                                     url=resolution.url, resolved_by=ctx.issued_by))
        else:
            detail = f"resolved by {ctx.issued_by}: not published" + (f" ({resolution.note})" if resolution.note else "")
            self.record(ctx, ev.DestinationFailed(**common, error_kind="not_published", detail=detail))

    def retry(self, ctx: Context, destination_id: str, hold_id: str) -> None:
        """An admin's retry of a destination that ended without being published: it waits again,
        due now, with ``hold_id`` (placed by the caller) as its hold."""
        dest = self.destination(destination_id)
        if dest.status not in ("failed", "skipped"):
            raise Rejected(Reason.destination_not_retryable,
                           f"destination is {dest.status}; only a failed or skipped destination can be retried")
        self.record(ctx, ev.RetryScheduled(
            post_id=self.post_id, destination_id=destination_id, attempt=dest.attempt, retry_at=ctx.now,
            error_kind=None, detail=f"retry asked for by {ctx.issued_by}", requested_by=ctx.issued_by,
            hold_id=hold_id))

    def cancel(self, ctx: Context, reason: str) -> None:
        if self.stage is not None and not self.cancelled:  # an idea or a draft: nothing held
            self.record(ctx, ev.PostCancelled(post_id=self.post_id, reason=reason, cancelled_destinations=[],
                                              released_holds=[], actor=ctx.issued_by))
            return
        cancellable = [d_id for d_id, d in self.destinations.items() if d.status in WAITING or d.status == "on_hold"]
        if not cancellable:
            raise Rejected(Reason.post_not_cancellable, f"post is {self.status}; no destination is still waiting")
        self.record(
            ctx,
            ev.PostCancelled(
                post_id=self.post_id,
                reason=reason,
                cancelled_destinations=cancellable,
                released_holds=[self.destinations[d].hold_id for d in cancellable
                                if self.destinations[d].status != "on_hold"],
                actor=ctx.issued_by,
            ),
        )

    def evolve(self, event: ev.EventData) -> None:
        if self.evolve_draft(event):
            return
        match event:
            case ev.PostScheduled():
                self.post_id, self.text = event.post_id, event.text
                self.media_urls, self.publish_at = list(event.media_urls), event.publish_at
                self.stage, self.drafts = None, None
                self.destinations = {
                    d.destination_id: DestinationState(
                        d.social_account_id, d.platform, d.handle, d.text, d.hold_id, event.publish_at,
                        text_overridden=d.text_overridden,
                        media_urls=list(d.media_urls) if d.media_urls is not None else None,
                        slot_at=event.publish_at,
                    )
                    for d in event.destinations
                }
            case ev.AttemptStarted():
                dest = self.destinations[event.destination_id]
                dest.status, dest.attempt = "attempting", event.attempt
            case ev.DestinationPublished():
                dest = self.destinations[event.destination_id]
                dest.status, dest.platform_post_id, dest.url = "published", event.platform_post_id, event.url
            case ev.RetryScheduled():
                dest = self.destinations[event.destination_id]
                dest.status, dest.due_at, dest.reason = "retry_scheduled", event.retry_at, event.detail
                if event.requested_by is None:
                    dest.failures += 1
                else:  # an admin's retry: a new hold, and the retries start over
                    dest.failures = 0
                    dest.hold_id = event.hold_id or dest.hold_id
            case ev.DestinationThrottled():
                dest = self.destinations[event.destination_id]
                dest.status, dest.due_at, dest.reason = "retry_scheduled", event.until, event.detail
            case ev.DestinationFailed():
                dest = self.destinations[event.destination_id]
                dest.status, dest.reason = "failed", event.detail
            case ev.DestinationSkipped():
                dest = self.destinations[event.destination_id]
                dest.status, dest.reason = "skipped", event.reason
            case ev.OutcomeUnknown():
                dest = self.destinations[event.destination_id]
                dest.status, dest.reason = "outcome_unknown", event.detail
            case ev.PostRevised():
                self.evolve_revision(event)
            case ev.DestinationsOnHold():
                for destination_id in event.destination_ids:
                    dest = self.destinations[destination_id]
                    dest.status, dest.reason, dest.slot_freed = "on_hold", event.reason, True
            case ev.PostCancelled():
                self.cancelled = True
                for destination_id in event.cancelled_destinations:
                    dest = self.destinations[destination_id]
                    dest.status, dest.reason = "cancelled", event.reason
                    dest.slot_freed = dest.slot_freed or event.slots_freed
