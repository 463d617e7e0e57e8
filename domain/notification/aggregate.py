"""NotificationDelivery: one notice (or a digest of several) to one webhook endpoint or email
recipient, from queued to sent or given up. Each attempt's outcome is recorded once: the attempt
number fences it, so a record sent twice (a redelivered command, a sender that died after the
commit) cannot count an attempt twice or reopen a delivery that ended.

State is bounded: status, the attempt count and the notices folded in (a count, not the list).
"""

from __future__ import annotations

from enum import StrEnum

from schemas import events as ev

from domain.base import Context, HeraldAggregate
from domain.rejections import Reason, Rejected


class Status(StrEnum):
    queued = "queued"
    failed = "failed"  # tried, will be tried again
    sent = "sent"
    gave_up = "gave_up"


ENDED = (Status.sent, Status.gave_up)


class NotificationDelivery(HeraldAggregate):
    KIND = "notification_delivery"

    def __init__(self) -> None:
        super().__init__()
        self.delivery_id = ""
        self.channel = ""
        self.target_id = ""
        self.cause = ""
        self.status = Status.queued
        self.attempts = 0
        self.notices = 0

    @staticmethod
    def key(workspace_id: str, delivery_id: str) -> str:
        return f"{workspace_id}/{delivery_id}"

    @classmethod
    def queue(cls, ctx: Context, queued: ev.NotificationDeliveryQueued) -> NotificationDelivery:
        return cls.start(ctx, cls.key(ctx.workspace_id, queued.delivery_id), queued)

    def fold(self, ctx: Context, queued: ev.NotificationDeliveryQueued) -> None:
        """Another notice joins this delivery (a digest): only before its first attempt."""
        if self.status is not Status.queued or self.attempts:
            raise Rejected(Reason.notification_attempt_fenced,
                           f"delivery {self.delivery_id} was already attempted; nothing more can join it")
        self.record(ctx, queued.model_copy(update={"digest_count": self.notices + 1}))

    def attempted(self, ctx: Context, outcome: ev.NotificationDeliverySent | ev.NotificationDeliveryFailed
                  | ev.NotificationDeliveryGaveUp) -> None:
        if self.status in ENDED:
            raise Rejected(Reason.notification_delivery_ended, f"delivery {self.delivery_id} already {self.status}")
        # The next attempt; a give-up may also come without an attempt of its own (the endpoint was
        # deleted or disabled meanwhile): then it names the last attempt made.
        gave_up = isinstance(outcome, ev.NotificationDeliveryGaveUp)
        allowed = {self.attempts + 1, self.attempts} if gave_up else {self.attempts + 1}
        if outcome.attempt not in allowed:
            raise Rejected(Reason.notification_attempt_fenced,
                           f"attempt {outcome.attempt} of delivery {self.delivery_id}: {self.attempts} recorded")
        self.record(ctx, outcome)

    def endpoint_disabled(self, ctx: Context, disabled: ev.WebhookEndpointDisabled) -> None:
        self.record(ctx, disabled)

    def evolve(self, event: ev.EventData) -> None:
        match event:
            case ev.NotificationDeliveryQueued():
                if not self.delivery_id:
                    self.delivery_id, self.channel, self.target_id = event.delivery_id, event.channel, event.target_id
                    self.cause = event.cause
                self.notices += 1
            case ev.NotificationDeliverySent():
                self.status, self.attempts = Status.sent, event.attempt
            case ev.NotificationDeliveryFailed():
                self.status, self.attempts = Status.failed, event.attempt
            case ev.NotificationDeliveryGaveUp():
                self.status, self.attempts = Status.gave_up, event.attempt
