"""Deciding notification delivery commands: the notifications processor queues a delivery, the
sender records each attempt's outcome (and, when that outcome disabled the webhook endpoint, the
notice saying so)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from schemas import commands as cmd
from schemas import events as ev

from domain.base import Context
from domain.notification.aggregate import NotificationDelivery
from domain.registry import Outcome, handles

if TYPE_CHECKING:
    from domain.application import HeraldApplication


def _queued(p: cmd.QueueNotificationDelivery | cmd.RecordNotificationDelivery, count: int = 1,
            event_type: str | None = None) -> ev.NotificationDeliveryQueued:
    return ev.NotificationDeliveryQueued(delivery_id=p.delivery_id, channel=p.channel, target_id=p.target_id,
                                         cause=p.cause, notice_event_id=p.notice_event_id,
                                         notice_event_type=event_type, digest_count=count)


@handles(cmd.QueueNotificationDelivery)
def queue_notification_delivery(app: HeraldApplication, ctx: Context, p: cmd.QueueNotificationDelivery) -> Outcome:
    delivery = app.find(NotificationDelivery, NotificationDelivery.key(ctx.workspace_id, p.delivery_id))
    if delivery is None:
        delivery = NotificationDelivery.queue(ctx, _queued(p, event_type=p.notice_event_type))
    else:
        delivery.fold(ctx, _queued(p, event_type=p.notice_event_type))
    return [delivery], {"delivery_id": p.delivery_id, "status": str(delivery.status), "notices": delivery.notices}


@handles(cmd.RecordNotificationDelivery)
def record_notification_delivery(app: HeraldApplication, ctx: Context, p: cmd.RecordNotificationDelivery) -> Outcome:
    delivery = app.find(NotificationDelivery, NotificationDelivery.key(ctx.workspace_id, p.delivery_id))
    if delivery is None:  # its queue command was lost or refused: the outcome still tells what happened
        delivery = NotificationDelivery.queue(ctx, _queued(p))
    common = {"delivery_id": p.delivery_id, "channel": p.channel, "target_id": p.target_id, "cause": p.cause,
              "attempt": p.attempt, "status_code": p.status_code,
              "notice_event_ids": list(p.notice_event_ids) or [p.notice_event_id]}
    match p.outcome:
        case "sent":
            delivery.attempted(ctx, ev.NotificationDeliverySent(**common))
        case "failed":
            delivery.attempted(ctx, ev.NotificationDeliveryFailed(error=p.error, next_attempt_at=p.next_attempt_at,
                                                                  **common))
        case _:
            delivery.attempted(ctx, ev.NotificationDeliveryGaveUp(error=p.error, **common))
    if p.endpoint_disabled is not None and p.channel == "webhook":
        delivery.endpoint_disabled(ctx, ev.WebhookEndpointDisabled(endpoint_id=p.target_id, reason=p.endpoint_disabled,
                                                                   delivery_id=p.delivery_id))
    return [delivery], {"delivery_id": p.delivery_id, "status": str(delivery.status), "attempts": delivery.attempts}
