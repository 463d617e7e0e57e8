"""Notice events → one webhook delivery per active endpoint of the workspace, sent by a ticker
with retries.

Every step is also an event in the event store (``NotificationDelivery``, domain/notification/):
queueing emits ``queue_notification_delivery`` commands from the consumer, and each attempt's
outcome is recorded in this table and, in the same transaction, as a ``record_notification_delivery``
command kept in the command inbox (a transactional outbox the relay produces). The table is the
sender's work queue; the delivery log API reads the read model projected from the events.

Enqueueing is the ``notifications`` consumer's job (exactly-once bookkeeping of the consumer
runtime, and a delivery id derived from the event id and the endpoint: a redelivered event inserts
nothing). The body is fixed when the delivery is queued, so every retry sends the same bytes under
the same ``webhook-id``. Sending claims one due row at a time (``FOR UPDATE SKIP LOCKED``: several
senders share the work) and records the outcome in the same transaction; a crash between the send
and the commit sends it once more, with the same ``webhook-id`` for the receiver to drop.

Statuses: ``queued`` (not tried yet), ``failed`` (tried, will be tried again at
``next_attempt_at``), ``sent``, ``gave_up`` (given up: ``give_up_after_s`` passed, the endpoint
answered 410 or was disabled or deleted). Retries back off exponentially with full jitter; an
endpoint that fails ``disable_after`` times in a row, or answers 410, is disabled.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Callable

import httpx
from psycopg import Connection
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from herald.crypto import TokenCipher
from herald.messaging import inbox
from herald.runtime.ticker import Ticker
from processors.commands import command_for
from processors.notifications import email, preferences, webhooks
from schemas import commands as cmd
from schemas import events as ev
from schemas.events import CloudEvent

DDL = """
CREATE TABLE IF NOT EXISTS notification_deliveries (
    delivery_id      text        PRIMARY KEY,
    workspace_id     text        NOT NULL,
    channel          text        NOT NULL,
    endpoint_id      text        NOT NULL,
    event_id         text        NOT NULL,
    event_ids        text[]      NOT NULL DEFAULT '{}',
    cause            text        NOT NULL,
    body             text        NOT NULL,
    status           text        NOT NULL DEFAULT 'queued'
                                 CHECK (status IN ('queued', 'failed', 'sent', 'gave_up')),
    attempts         integer     NOT NULL DEFAULT 0,
    last_error       text,
    last_status_code integer,
    next_attempt_at  timestamptz NOT NULL,
    created_at       timestamptz NOT NULL,
    sent_at          timestamptz,
    updated_at       timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS notification_deliveries_due ON notification_deliveries (next_attempt_at)
    WHERE status IN ('queued', 'failed');
CREATE INDEX IF NOT EXISTS notification_deliveries_events ON notification_deliveries USING gin (event_ids);
CREATE INDEX IF NOT EXISTS notification_deliveries_log ON notification_deliveries (workspace_id, created_at DESC);
"""

ACCOUNT_NEEDS_RECONNECT = "account_needs_reconnect"
ENDPOINT_DISABLED = "webhook_endpoint_disabled"
# Many posts failing (or skipped) at once make one digest per target: the first waits the window,
# the ones raised meanwhile fold into it (``data.count``, ``data.event_ids``).
DIGESTED = ("post_failed", "post_skipped")


def notice_of(event: CloudEvent) -> tuple[str, str] | None:
    """(cause, title) of a notice event; None for any other event. The causes are the inbox's
    (projections/notifications.py) plus account_needs_reconnect."""
    notice = _notice(event)
    return None if notice is None else notice[:2]


def _notice(event: CloudEvent) -> tuple[str, str, str] | None:
    """(cause, title, de-duplication key): one delivery per key and target, whichever event raised it."""
    model = ev.current_model(event.type)
    if model not in (ev.CreditsLow, ev.CreditsExpiringSoon, ev.DestinationSkipped, ev.DestinationFailed,
                     ev.CommandRejected, ev.SocialAccountNeedsReconnect, ev.WebhookEndpointDisabled):
        return None
    data = event.parsed_data()
    match data:
        case ev.CreditsLow():  # once per credit period, however many events say it
            period = data.period_start.isoformat() if data.period_start else ""
            return "low_credits", f"Only {data.available} credit(s) left", f"low_credits:{period}"
        case ev.CreditsExpiringSoon():  # once per grant
            return ("credits_expiring", f"{data.amount} credit(s) expire on {data.expires_at.date().isoformat()}",
                    f"credits_expiring:{data.grant_id}")
        case ev.DestinationSkipped():
            return "post_skipped", f"A post was skipped ({data.reason})", event.id
        case ev.DestinationFailed():
            return "post_failed", "A post failed to publish", event.id
        case ev.CommandRejected() if data.limit is not None:
            return "tier_limit_reached", f"Tier limit reached: {data.limit.limit}", event.id
        case ev.SocialAccountNeedsReconnect():
            return ACCOUNT_NEEDS_RECONNECT, f"A social account needs reconnecting ({data.reason})", event.id
        case ev.WebhookEndpointDisabled():
            return ENDPOINT_DISABLED, "A webhook endpoint was disabled", event.id
    return None


def delivery_id(key: str, endpoint_id: str) -> str:
    """Also the webhook-id: the same on every attempt of this delivery. ``key`` is the notice's
    de-duplication key (the event id, or the period / grant of a once-per-period notice)."""
    return "msg_" + hashlib.sha256(f"{key}/{endpoint_id}".encode()).hexdigest()[:32]


def body_of(event: CloudEvent, cause: str, title: str) -> str:
    return json.dumps({"type": f"notice.{cause}", "timestamp": event.time.astimezone(UTC).isoformat()
                       .replace("+00:00", "Z"),
                       "data": {"workspace_id": event.workspaceid, "cause": cause, "title": title,
                                "event_id": event.id, "event_type": event.type, "detail": event.data}},
                      separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def enqueue(conn: Connection, event: CloudEvent, digest_window_s: float = 60.0) -> list[cmd.CommandEnvelope]:
    """The consumer's handler: queue a delivery per active endpoint and email recipient the
    preferences allow (folded into a waiting digest for the causes in ``DIGESTED``); returns the
    ``queue_notification_delivery`` commands that record it (ids derived: a redelivered event
    repeats them, the domain sees a repeat)."""
    notice = _notice(event)
    if notice is None:
        return []
    cause, title, key = notice
    now = datetime.now(UTC)
    body = body_of(event, cause, title)
    targets = []
    if preferences.enabled(conn, event.workspaceid, cause, "webhook"):
        targets += [("webhook", e) for e in webhooks.active(conn, event.workspaceid)]
    if preferences.enabled(conn, event.workspaceid, cause, "email"):
        targets += [("email", r["recipient_id"]) for r in email.listed(conn, event.workspaceid)]
    digest = cause in DIGESTED and digest_window_s > 0
    commands = []
    for channel, target in targets:
        # A redelivered event, or a notice said already this period, finds its row: nothing new to
        # record (the commands of the transaction that made the row were produced before it committed).
        delivery = _folded(conn, event, target, cause, title) if digest else None
        if delivery == "":
            continue
        if delivery is None:
            delivery = delivery_id(key, target)
            due = now + timedelta(seconds=digest_window_s) if digest else now
            if conn.execute(
                "INSERT INTO notification_deliveries (delivery_id, workspace_id, channel, endpoint_id, event_id,"
                " event_ids, cause, body, next_attempt_at, created_at, updated_at)"
                " VALUES (%s, %s, %s, %s, %s, ARRAY[%s], %s, %s, %s, %s, %s) ON CONFLICT (delivery_id) DO NOTHING"
                " RETURNING 1",
                (delivery, event.workspaceid, channel, target, event.id, event.id, cause, body, due, now, now),
            ).fetchone() is None:
                continue
        commands.append(command_for(
            cmd.QueueNotificationDelivery(delivery_id=delivery, channel=channel, target_id=target, cause=cause,
                                          notice_event_id=event.id, notice_event_type=event.type),
            workspace_id=event.workspaceid, id_parts=("notification-queued", delivery, event.id),
            issued_by="notifications", caused_by=event))
    return commands


def _folded(conn: Connection, event: CloudEvent, target: str, cause: str, title: str) -> str | None:
    """The digest the event was folded into now; "" when it is in one already (a redelivery); None:
    start one."""
    if conn.execute("SELECT 1 FROM notification_deliveries WHERE workspace_id = %s AND endpoint_id = %s"
                    " AND event_ids @> ARRAY[%s]", (event.workspaceid, target, event.id)).fetchone():
        return ""
    waiting = conn.execute(
        "SELECT delivery_id, body, event_ids FROM notification_deliveries WHERE workspace_id = %s AND endpoint_id = %s"
        " AND cause = %s AND status = 'queued' AND attempts = 0 ORDER BY created_at DESC LIMIT 1 FOR UPDATE",
        (event.workspaceid, target, cause)).fetchone()
    if waiting is None:
        return None
    delivery, body, event_ids = waiting
    envelope = json.loads(body)
    ids = [*event_ids, event.id]
    envelope["data"].update(count=len(ids), event_ids=ids, detail=event.data,
                            title=f"{len(ids)} notices: {title}" if len(ids) > 1 else title)
    conn.execute("UPDATE notification_deliveries SET body = %s, event_ids = %s, updated_at = %s WHERE delivery_id = %s",
                 (json.dumps(envelope, separators=(",", ":"), ensure_ascii=False, sort_keys=True), ids,
                  datetime.now(UTC), delivery))
    return delivery


@dataclass(frozen=True)
class RetryPolicy:
    base_s: float = 30.0
    cap_s: float = 3600.0
    give_up_after_s: float = 86400.0
    disable_after: int = 15  # consecutive failures of an endpoint, across its deliveries

    def delay_s(self, attempts: int, rand: Callable[[], float] = random.random) -> float:
        """Full jitter: uniform in [0, min(cap, base·2^(attempts-1))], at least 1 s."""
        return max(1.0, rand() * min(self.cap_s, self.base_s * 2 ** min(attempts - 1, 40)))


_CLAIM = """
SELECT delivery_id, workspace_id, channel, endpoint_id, event_id, event_ids, cause, body, attempts, created_at
  FROM notification_deliveries
 WHERE status IN ('queued', 'failed') AND next_attempt_at <= %s AND channel = ANY(%s)
 ORDER BY next_attempt_at
 LIMIT 1
 FOR UPDATE SKIP LOCKED
"""


def deliver_one(conn: Connection, http: httpx.Client, cipher: TokenCipher, policy: RetryPolicy,
                allowed_networks: tuple[str, ...] | list[str] = (), now: datetime | None = None,
                smtp: email.SmtpSettings | None = None) -> bool:
    """Send the most overdue delivery, if any, and record its outcome (inside the caller's transaction).
    Email deliveries wait while no SMTP server is configured."""
    now = now or datetime.now(UTC)
    channels = ["webhook", "email"] if smtp is not None else ["webhook"]
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(_CLAIM, (now, channels)).fetchone()
    if row is None:
        return False
    if row["channel"] == "email":
        _mail(conn, row, cipher, policy, smtp, now)
        return True
    endpoint = webhooks.find(conn, row["workspace_id"], row["endpoint_id"])
    if endpoint is None or endpoint.status != "active":
        _record(conn, row, "gave_up", row["attempts"], now,
                "the endpoint was deleted" if endpoint is None else "the endpoint is disabled", None)
        return True
    attempts = row["attempts"] + 1
    body = row["body"].encode()
    try:
        secrets = endpoint.secrets(cipher, now)
    except ValueError as error:  # sealed with a key no longer in the ring: this row would block the queue
        _record(conn, row, "gave_up", row["attempts"], now, f"the secret cannot be unsealed: {error}", None)
        return True
    outcome = webhooks.send(http, endpoint, secrets, row["delivery_id"], int(now.timestamp()), body, allowed_networks)
    if outcome.delivered:
        _record(conn, row, "sent", attempts, now, None, outcome.status_code)
        conn.execute("UPDATE webhook_endpoints SET consecutive_failures = 0 WHERE endpoint_id = %s",
                     (endpoint.endpoint_id,))
        return True
    failures = conn.execute(
        "UPDATE webhook_endpoints SET consecutive_failures = consecutive_failures + 1 WHERE endpoint_id = %s"
        " RETURNING consecutive_failures", (endpoint.endpoint_id,)).fetchone()[0]
    if outcome.gone or failures >= policy.disable_after:
        reason = outcome.error if outcome.gone else f"{failures} consecutive failures, the last: {outcome.error}"
        disabled = conn.execute("UPDATE webhook_endpoints SET status = 'disabled', disabled_reason = %s,"
                                " disabled_at = %s WHERE endpoint_id = %s AND status = 'active'",
                                (reason, now, endpoint.endpoint_id)).rowcount
        # The give-up carries the disabling: one decision records both, and the WebhookEndpointDisabled
        # event is a notice (inbox, the workspace's other endpoints, email).
        _record(conn, row, "gave_up", attempts, now, outcome.error, outcome.status_code,
                disabled=reason if disabled else None)
        return True
    next_at = now + timedelta(seconds=policy.delay_s(attempts))
    if next_at > row["created_at"] + timedelta(seconds=policy.give_up_after_s):
        _record(conn, row, "gave_up", attempts, now, outcome.error, outcome.status_code)
    else:
        _record(conn, row, "failed", attempts, now, outcome.error, outcome.status_code, next_at)
    return True


def _mail(conn: Connection, row: dict[str, Any], cipher: TokenCipher, policy: RetryPolicy,
          smtp: email.SmtpSettings, now: datetime) -> None:
    address = email.address_of(conn, row["workspace_id"], row["endpoint_id"])
    if address is None:
        _record(conn, row, "gave_up", row["attempts"], now, "the recipient was removed", None)
        return
    attempts = row["attempts"] + 1
    error = email.send(smtp, email.message(smtp, cipher, address, row["delivery_id"], json.loads(row["body"])))
    if error is None:
        _record(conn, row, "sent", attempts, now, None, None)
        return
    next_at = now + timedelta(seconds=policy.delay_s(attempts))
    if next_at > row["created_at"] + timedelta(seconds=policy.give_up_after_s):
        _record(conn, row, "gave_up", attempts, now, error, None)
    else:
        _record(conn, row, "failed", attempts, now, error, None, next_at)


def _record(conn: Connection, row: dict[str, Any], status: str, attempts: int, now: datetime, error: str | None,
            status_code: int | None, next_at: datetime | None = None, disabled: str | None = None) -> None:
    """The outcome in the work queue and, in the same transaction, the command that records it as an
    event: both or neither. The command id names the attempt: a repeat is the same command."""
    conn.execute(
        "UPDATE notification_deliveries SET status = %s, attempts = %s, last_error = %s, last_status_code = %s,"
        " updated_at = %s, next_attempt_at = COALESCE(%s, next_attempt_at),"
        " sent_at = CASE WHEN %s = 'sent' THEN %s ELSE sent_at END WHERE delivery_id = %s",
        (status, attempts, error, status_code, now, next_at, status, now, row["delivery_id"]))
    inbox.keep(conn, command_for(
        cmd.RecordNotificationDelivery(
            delivery_id=row["delivery_id"], channel=row["channel"], target_id=row["endpoint_id"], cause=row["cause"],
            notice_event_id=row["event_id"], attempt=attempts, outcome=status,
            status_code=status_code if status_code is not None and 100 <= status_code <= 599 else None,
            error=(error or "")[:2000], next_attempt_at=next_at,
            notice_event_ids=list(row["event_ids"] or [row["event_id"]]),
            endpoint_disabled=disabled[:2000] if disabled else None),
        workspace_id=row["workspace_id"], id_parts=("notification-delivery", row["delivery_id"], attempts, status),
        issued_by="notification-sender"))


def deliver_due(pool: ConnectionPool, http: httpx.Client, cipher: TokenCipher, policy: RetryPolicy, *, limit: int,
                allowed_networks: tuple[str, ...] | list[str] = (), smtp: email.SmtpSettings | None = None) -> int:
    """Up to ``limit`` deliveries, each in a transaction of its own."""
    done = 0
    while done < limit:
        with pool.connection() as conn, conn.transaction():
            if not deliver_one(conn, http, cipher, policy, allowed_networks, smtp=smtp):
                break
        done += 1
    return done


def sender_ticker(pool: ConnectionPool, http: httpx.Client, cipher: TokenCipher, policy: RetryPolicy, *,
                  interval_s: float, limit: int, allowed_networks: tuple[str, ...] | list[str] = (),
                  smtp: email.SmtpSettings | None = None, name: str = "notification-sender") -> Ticker:
    return Ticker(name, interval_s,
                  lambda: deliver_due(pool, http, cipher, policy, limit=limit, allowed_networks=allowed_networks,
                                      smtp=smtp),
                  full=limit)
