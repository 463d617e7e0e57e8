"""Notification delivery log read model: one row per delivery (a notice, or a digest of several,
to one webhook endpoint or email recipient) folded from its events: queued, then each attempt's
outcome (sent, failed with the next attempt's time, gave_up). The delivery log API reads it, per
notice (``notice_event_ids`` holds every notice a digest carried) or per cause.

``fold`` is the one rule; the live ``apply`` and the bulk path (projections/bulk/notifications.py)
both use it, so they cannot disagree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import Connection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from projections.base import Projection, applies
from schemas import events as ev
from schemas.events import CloudEvent, EventData

DDL = """
CREATE TABLE IF NOT EXISTS notification_delivery_log (
    workspace_id      text        NOT NULL,
    delivery_id       text        NOT NULL,
    channel           text        NOT NULL,
    target_id         text        NOT NULL,
    cause             text        NOT NULL,
    notice_event_id   text        NOT NULL,
    notice_event_ids  jsonb       NOT NULL,
    status            text        NOT NULL,
    attempts          integer     NOT NULL,
    last_status_code  integer,
    last_error        text,
    next_attempt_at   timestamptz,
    queued_at         timestamptz NOT NULL,
    sent_at           timestamptz,
    updated_at        timestamptz NOT NULL,
    last_position     bigint      NOT NULL,
    PRIMARY KEY (workspace_id, delivery_id)
);
CREATE INDEX IF NOT EXISTS notification_delivery_log_latest ON notification_delivery_log (workspace_id, queued_at DESC);
CREATE INDEX IF NOT EXISTS notification_delivery_log_notices ON notification_delivery_log USING gin (notice_event_ids);
"""
TABLES = ("notification_delivery_log",)
COLUMNS = ("workspace_id", "delivery_id", "channel", "target_id", "cause", "notice_event_id", "notice_event_ids",
           "status", "attempts", "last_status_code", "last_error", "next_attempt_at", "queued_at", "sent_at",
           "updated_at", "last_position")
JSONB = ("notice_event_ids",)
EVENTS = (ev.NotificationDeliveryQueued, ev.NotificationDeliverySent, ev.NotificationDeliveryFailed,
          ev.NotificationDeliveryGaveUp)
_OUTCOME = {ev.NotificationDeliverySent.type: "sent", ev.NotificationDeliveryFailed.type: "failed",
            ev.NotificationDeliveryGaveUp.type: "gave_up"}


def _instant(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def fold(row: dict[str, Any] | None, workspace_id: str, event_type: str, at: datetime, d: dict[str, Any],
         position: int) -> dict[str, Any] | None:
    """The row after the event (``d``: its data as JSON); None when the event changes nothing (an
    older or repeated position)."""
    if row is not None and row["last_position"] >= position:
        return None
    if row is None:
        row = {"workspace_id": workspace_id, "delivery_id": d["delivery_id"], "channel": d["channel"],
               "target_id": d["target_id"], "cause": d["cause"],
               "notice_event_id": d.get("notice_event_id") or d["notice_event_ids"][0], "notice_event_ids": [],
               "status": "queued", "attempts": 0, "last_status_code": None, "last_error": None,
               "next_attempt_at": None, "queued_at": at, "sent_at": None, "updated_at": at, "last_position": position}
    else:
        row = dict(row, notice_event_ids=list(row["notice_event_ids"]))
    if event_type == ev.NotificationDeliveryQueued.type:
        if d["notice_event_id"] not in row["notice_event_ids"]:
            row["notice_event_ids"].append(d["notice_event_id"])
    else:
        status = _OUTCOME[event_type]
        row.update(status=status, attempts=d["attempt"], last_status_code=d.get("status_code"),
                   last_error=d.get("error") or None, next_attempt_at=_instant(d.get("next_attempt_at")),
                   notice_event_ids=list(d["notice_event_ids"]))
        if status == "sent":
            row["sent_at"] = at
    row.update(updated_at=at, last_position=position)
    return row


@applies(*EVENTS)
def apply(conn: Connection, event: CloudEvent, data: EventData) -> None:
    d = data.model_dump(mode="json")
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(f"SELECT {', '.join(COLUMNS)} FROM notification_delivery_log"
                          " WHERE workspace_id = %s AND delivery_id = %s FOR UPDATE",
                          (event.workspaceid, d["delivery_id"])).fetchone()
    new = fold(row, event.workspaceid, event.type, event.time, d, event.position)
    if new is None:
        return
    conn.execute(
        f"INSERT INTO notification_delivery_log ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"
        f" ON CONFLICT (workspace_id, delivery_id) DO UPDATE SET"
        f" {', '.join(f'{c} = EXCLUDED.{c}' for c in COLUMNS[2:])}",
        [Jsonb(new[c]) if c in JSONB else new[c] for c in COLUMNS])


PROJECTION = Projection(name="notification_deliveries", ddl=DDL, tables=TABLES, handles=apply.handles, apply=apply)


def read_log(conn: Connection, workspace_id: str, *, event_id: str | None = None, cause: str | None = None,
             limit: int = 100) -> list[dict[str, Any]]:
    """The workspace's deliveries, latest first; those carrying one notice event, or of one cause."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT delivery_id, channel, target_id AS endpoint_id, notice_event_id AS event_id,"
            " notice_event_ids AS event_ids, cause, status, attempts, last_error, last_status_code, next_attempt_at,"
            " queued_at AS created_at, sent_at, updated_at FROM notification_delivery_log"
            " WHERE workspace_id = %s AND (%s::text IS NULL OR notice_event_ids ? %s::text)"
            " AND (%s::text IS NULL OR cause = %s) ORDER BY queued_at DESC, delivery_id LIMIT %s",
            (workspace_id, event_id, event_id, cause, cause, limit)).fetchall()
