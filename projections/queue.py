"""Queue read model: every destination's due time, status and attempt, and per workspace
how many posts wait against the tier's queue size. Built only from events."""

from __future__ import annotations

from typing import Any

from psycopg import Connection
from psycopg.rows import dict_row

from schemas import events as ev
from schemas.events import CloudEvent, current_model

DDL = """
CREATE TABLE IF NOT EXISTS queue_destinations (
    post_id           text        NOT NULL,
    destination_id    text        NOT NULL,
    workspace_id      text        NOT NULL,
    social_account_id text        NOT NULL,
    platform          text        NOT NULL,
    handle            text        NOT NULL,
    due_at            timestamptz NOT NULL,
    status            text        NOT NULL,
    attempt           integer     NOT NULL DEFAULT 0,
    platform_post_id  text,
    url               text,
    reason            text        NOT NULL DEFAULT '',
    updated_at        timestamptz NOT NULL,
    PRIMARY KEY (post_id, destination_id)
);
CREATE INDEX IF NOT EXISTS queue_destinations_due
    ON queue_destinations (due_at) WHERE status IN ('pending', 'retry_scheduled');
CREATE INDEX IF NOT EXISTS queue_destinations_workspace ON queue_destinations (workspace_id, due_at);
CREATE TABLE IF NOT EXISTS queue_workspaces (
    workspace_id text    PRIMARY KEY,
    tier         text    NOT NULL,
    queue_size   integer NOT NULL
);
CREATE OR REPLACE VIEW queue_workspace_summary AS
SELECT w.workspace_id, w.tier, w.queue_size,
       (SELECT count(DISTINCT d.post_id) FROM queue_destinations d
         WHERE d.workspace_id = w.workspace_id
           AND d.status NOT IN ('published', 'failed', 'skipped', 'cancelled')) AS waiting
  FROM queue_workspaces w;
"""
TABLES = ("queue_destinations", "queue_workspaces")

_SET_STATUS = """
UPDATE queue_destinations
   SET status = %(status)s, attempt = GREATEST(attempt, %(attempt)s), reason = %(reason)s, updated_at = %(time)s
 WHERE post_id = %(post_id)s AND destination_id = %(destination_id)s
"""


# The event models the match in apply() handles; checked by type name first, so others cost no parsing.
_APPLIED = (ev.WorkspaceOpened, ev.PostScheduled, ev.AttemptStarted, ev.DestinationPublished, ev.RetryScheduled,
            ev.DestinationFailed, ev.DestinationSkipped, ev.OutcomeUnknown, ev.PostCancelled)


def apply(conn: Connection, event: CloudEvent) -> None:
    """Apply one event; events that do not concern the queue are ignored (without parsing them)."""
    if current_model(event.type) not in _APPLIED:
        return
    data = event.parsed_data()
    at = event.time
    match data:
        case ev.WorkspaceOpened():
            conn.execute(
                "INSERT INTO queue_workspaces VALUES (%s, %s, %s) ON CONFLICT (workspace_id) DO UPDATE"
                " SET tier = EXCLUDED.tier, queue_size = EXCLUDED.queue_size",
                (event.workspaceid, data.tier, data.limits["queue_size"]),
            )
        case ev.PostScheduled():
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO queue_destinations (post_id, destination_id, workspace_id, social_account_id,"
                    " platform, handle, due_at, status, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, 'pending', %s)"
                    " ON CONFLICT DO NOTHING",
                    [
                        (data.post_id, d.destination_id, event.workspaceid, d.social_account_id, d.platform,
                         d.handle, data.publish_at, at)
                        for d in data.destinations
                    ],
                )
        case ev.AttemptStarted():
            _set(conn, data.post_id, data.destination_id, "attempting", at, attempt=data.attempt)
        case ev.DestinationPublished():
            conn.execute(
                "UPDATE queue_destinations SET status = 'published', platform_post_id = %s, url = %s,"
                " attempt = %s, reason = '', updated_at = %s WHERE post_id = %s AND destination_id = %s",
                (data.platform_post_id, data.url, data.attempt, at, data.post_id, data.destination_id),
            )
        case ev.RetryScheduled():
            conn.execute(
                "UPDATE queue_destinations SET status = 'retry_scheduled', due_at = %s, reason = %s,"
                " updated_at = %s WHERE post_id = %s AND destination_id = %s",
                (data.retry_at, data.detail, at, data.post_id, data.destination_id),
            )
        case ev.DestinationFailed():
            _set(conn, data.post_id, data.destination_id, "failed", at, reason=data.detail, attempt=data.attempt)
        case ev.DestinationSkipped():
            _set(conn, data.post_id, data.destination_id, "skipped", at, reason=data.reason)
        case ev.OutcomeUnknown():
            _set(conn, data.post_id, data.destination_id, "outcome_unknown", at, reason=data.detail)
        case ev.PostCancelled():
            for destination_id in data.cancelled_destinations:
                _set(conn, data.post_id, destination_id, "cancelled", at, reason=data.reason)


def _set(conn: Connection, post_id: str, destination_id: str, status: str, at: Any, *, reason: str = "", attempt: int = 0) -> None:
    conn.execute(
        _SET_STATUS,
        {"status": status, "attempt": attempt, "reason": reason, "time": at, "post_id": post_id, "destination_id": destination_id},
    )


def read_queue(conn: Connection, workspace_id: str) -> dict[str, Any]:
    """The queue as the gateway shows it: summary plus every destination, soonest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT tier, queue_size, waiting FROM queue_workspace_summary WHERE workspace_id = %s", (workspace_id,))
        summary = cur.fetchone() or {"tier": None, "queue_size": None, "waiting": 0}
        cur.execute(
            "SELECT post_id, destination_id, social_account_id, platform, handle, due_at, status, attempt,"
            " platform_post_id, url, reason, updated_at FROM queue_destinations"
            " WHERE workspace_id = %s ORDER BY due_at, post_id, destination_id",
            (workspace_id,),
        )
        destinations = cur.fetchall()
    return {"workspace_id": workspace_id, **summary, "destinations": destinations}
