"""Queue read model: every destination's due time, status, attempt and text, and per workspace
how many posts wait against the tier's queue size. Built only from events.

``queue_destinations`` also serves the posts read model (``projections.posts``) as the
per-destination state of a post, and the dispatcher as its source of due work.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from psycopg import Connection, sql
from psycopg.rows import dict_row

from projections.base import Projection, applies
from schemas import events as ev
from schemas.events import CloudEvent, EventData
from schemas.statuses import ACTIVE, DESTINATION_STATUSES, PAUSED, TERMINAL

STATUSES = DESTINATION_STATUSES
MAX_LIMIT = 500

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
-- Added later: NULL on rows projected before, filled when their PostScheduled is applied again.
-- ADD COLUMN IF NOT EXISTS would still take an exclusive lock at every start; only ALTER when missing.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()
                    AND table_name = 'queue_destinations' AND column_name = 'text') THEN
        ALTER TABLE queue_destinations ADD COLUMN IF NOT EXISTS text text;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()
                    AND table_name = 'queue_destinations' AND column_name = 'ordinal') THEN
        ALTER TABLE queue_destinations ADD COLUMN IF NOT EXISTS ordinal integer;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()
                    AND table_name = 'queue_destinations' AND column_name = 'throttled_until') THEN
        ALTER TABLE queue_destinations ADD COLUMN IF NOT EXISTS throttled_until timestamptz;
    END IF;
END $$;
CREATE INDEX IF NOT EXISTS queue_destinations_due
    ON queue_destinations (due_at) WHERE status IN ('pending', 'retry_scheduled');
CREATE INDEX IF NOT EXISTS queue_destinations_workspace ON queue_destinations (workspace_id, due_at);
-- The default queue read (and the waiting count): only destinations still waiting or in flight.
CREATE INDEX IF NOT EXISTS queue_destinations_active
    ON queue_destinations (workspace_id, due_at, post_id, destination_id)
    WHERE status IN ('pending', 'retry_scheduled', 'attempting', 'outcome_unknown');
-- Every settled destination leaves dead entries in the active index until a vacuum; with the
-- default threshold (20% of the table) their number grows with history. A fixed one bounds them.
ALTER TABLE queue_destinations SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000);
CREATE TABLE IF NOT EXISTS queue_workspaces (
    workspace_id text    PRIMARY KEY,
    tier         text    NOT NULL,
    queue_size   integer NOT NULL
);
CREATE OR REPLACE VIEW queue_workspace_summary AS
SELECT w.workspace_id, w.tier, w.queue_size,
       (SELECT count(DISTINCT d.post_id) FROM queue_destinations d
         WHERE d.workspace_id = w.workspace_id
           AND d.status IN ('pending', 'retry_scheduled', 'attempting', 'outcome_unknown')) AS waiting
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
            ev.DestinationThrottled, ev.DestinationFailed, ev.DestinationSkipped, ev.OutcomeUnknown, ev.PostCancelled,
            ev.PostRevised, ev.DestinationsOnHold)
# A revised destination waits again from its own time (or the post's) with its new text; one added after the post was
# scheduled comes after those scheduled with it. Its attempt count goes on (never reset). A revision
# redelivered after the destination moved on (started, or revised again) changes nothing.
_REVISED = """
INSERT INTO queue_destinations (post_id, destination_id, workspace_id, social_account_id, platform, handle, due_at,
                                status, updated_at, text, ordinal)
VALUES (%s, %s, %s, %s, %s, %s, %s, 'pending', %s, %s, %s)
ON CONFLICT (post_id, destination_id) DO UPDATE
   SET due_at = EXCLUDED.due_at, status = 'pending', reason = '', throttled_until = NULL, text = EXCLUDED.text,
       updated_at = EXCLUDED.updated_at
 WHERE queue_destinations.status IN ('pending', 'cancelled', 'on_hold')
   AND queue_destinations.updated_at <= EXCLUDED.updated_at
"""
ADDED_ORDINAL = 1000  # + the destination's place in the revision


@applies(*_APPLIED)
def apply(conn: Connection, event: CloudEvent, data: EventData) -> None:
    """Apply one event; events that do not concern the queue are ignored (without parsing them)."""
    at = event.time
    match data:
        case ev.WorkspaceOpened():
            conn.execute(
                "INSERT INTO queue_workspaces VALUES (%s, %s, %s) ON CONFLICT (workspace_id) DO UPDATE"
                " SET tier = EXCLUDED.tier, queue_size = EXCLUDED.queue_size",
                (event.workspaceid, data.tier, data.limits["queue_size"]),
            )
        case ev.PostScheduled():
            # A repeat changes nothing but fills text/ordinal on rows projected before those columns existed.
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO queue_destinations (post_id, destination_id, workspace_id, social_account_id,"
                    " platform, handle, due_at, status, updated_at, text, ordinal)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, 'pending', %s, %s, %s)"
                    " ON CONFLICT (post_id, destination_id) DO UPDATE"
                    " SET text = EXCLUDED.text, ordinal = EXCLUDED.ordinal"
                    " WHERE queue_destinations.text IS NULL OR queue_destinations.ordinal IS NULL",
                    [
                        (data.post_id, d.destination_id, event.workspaceid, d.social_account_id, d.platform,
                         d.handle, data.publish_at, at, d.text, i)
                        for i, d in enumerate(data.destinations)
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
                " throttled_until = NULL, updated_at = %s WHERE post_id = %s AND destination_id = %s",
                (data.retry_at, data.detail, at, data.post_id, data.destination_id),
            )
        case ev.DestinationThrottled():
            conn.execute(
                "UPDATE queue_destinations SET status = 'retry_scheduled', due_at = %s, throttled_until = %s,"
                " reason = %s, updated_at = %s WHERE post_id = %s AND destination_id = %s",
                (data.until, data.until, data.detail, at, data.post_id, data.destination_id),
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
        case ev.DestinationsOnHold():
            for destination_id in data.destination_ids:
                _set(conn, data.post_id, destination_id, "on_hold", at, reason=data.reason)
        case ev.PostRevised():
            with conn.cursor() as cur:
                cur.executemany(_REVISED, [
                    (data.post_id, d.destination_id, event.workspaceid, d.social_account_id, d.platform, d.handle,
                     d.due_at or data.publish_at, at, d.text, ADDED_ORDINAL + i)
                    for i, d in enumerate(data.destinations)])


def _set(conn: Connection, post_id: str, destination_id: str, status: str, at: Any, *, reason: str = "", attempt: int = 0) -> None:
    conn.execute(
        _SET_STATUS,
        {"status": status, "attempt": attempt, "reason": reason, "time": at, "post_id": post_id, "destination_id": destination_id},
    )


PROJECTION = Projection(name="queue", ddl=DDL, tables=TABLES, handles=apply.handles, apply=apply,
                        needs=("tiers",))  # tier changes write queue_workspaces


# Reading ---------------------------------------------------------------------------------

_ENTRY_COLUMNS = sql.SQL(
    "post_id, destination_id, social_account_id, platform, handle, due_at, status, attempt,"
    " platform_post_id, url, reason, throttled_until, updated_at"
)


def encode_cursor(due_at: datetime, post_id: str, destination_id: str) -> str:
    """The opaque cursor after the row (due_at, post_id, destination_id)."""
    raw = json.dumps([due_at.isoformat(), post_id, destination_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str, str]:
    """(due_at, post_id, destination_id) from a cursor; ValueError when it is not one read_queue made."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        due_at, post_id, destination_id = json.loads(raw)
        if not isinstance(due_at, str) or not isinstance(post_id, str) or not isinstance(destination_id, str):
            raise TypeError("cursor fields are not strings")
        when = datetime.fromisoformat(due_at)
        if when.tzinfo is None:
            raise TypeError("cursor time has no time zone")
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError) as error:
        raise ValueError(f"malformed queue cursor {cursor[:80]!r}: pass back a next_cursor exactly as returned") from error
    return when, post_id, destination_id


def read_queue(conn: Connection, workspace_id: str, **filters: Any) -> dict[str, Any]:
    """One page of the workspace's queue, soonest first, with the workspace's summary.

    ``filters`` are ``page_query``'s: ``statuses`` defaults to the destinations still waiting or
    in flight (``ACTIVE``), settled ones are shown only when asked for; ``due_from`` is
    inclusive, ``due_to`` exclusive. Pages are keyset-ordered by (due_at, post_id,
    destination_id); ``next_cursor`` is None on the last page. Raises ValueError for an unknown
    status, a malformed cursor or a limit outside 1..MAX_LIMIT.
    """
    query, params = page_query(workspace_id, **filters)
    limit = params["limit"] - 1
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT tier, queue_size, waiting FROM queue_workspace_summary WHERE workspace_id = %s", (workspace_id,))
        summary = cur.fetchone() or {"tier": None, "queue_size": None, "waiting": 0}
        cur.execute(query, params)
        destinations = cur.fetchall()
    next_cursor = None
    if len(destinations) > limit:
        destinations = destinations[:limit]
        last = destinations[-1]
        next_cursor = encode_cursor(last["due_at"], last["post_id"], last["destination_id"])
    return {"workspace_id": workspace_id, **summary, "destinations": destinations, "next_cursor": next_cursor}


def page_query(
    workspace_id: str,
    *,
    statuses: list[str] | None = None,
    social_account_id: str | None = None,
    due_from: datetime | None = None,
    due_to: datetime | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[sql.Composed, dict[str, Any]]:
    """The query (and its parameters) of one read_queue page; it fetches limit + 1 rows to
    tell whether another page follows. Validates the arguments (ValueError)."""
    if statuses is None:
        wanted = ACTIVE
    else:
        unknown = sorted(set(statuses) - STATUSES)
        if unknown:
            raise ValueError(f"unknown destination status {', '.join(map(repr, unknown))}; known: {', '.join(sorted(STATUSES))}")
        if not statuses:
            raise ValueError("statuses is empty; leave it out for the default (waiting and in-flight destinations)")
        wanted = tuple(s for s in (*ACTIVE, *sorted(PAUSED), *sorted(TERMINAL)) if s in statuses)
    if not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}, not {limit!r}")
    after = decode_cursor(cursor) if cursor is not None else None

    # Statuses are checked against STATUSES, so they go in as literals: the planner then sees
    # that a read of active statuses only is covered by the partial index queue_destinations_active.
    where = [sql.SQL("workspace_id = %(workspace_id)s"), _status_filter(wanted)]
    params: dict[str, Any] = {"workspace_id": workspace_id, "limit": limit + 1}
    if social_account_id is not None:
        where.append(sql.SQL("social_account_id = %(account)s"))
        params["account"] = social_account_id
    if due_from is not None:
        where.append(sql.SQL("due_at >= %(due_from)s"))
        params["due_from"] = due_from
    if due_to is not None:
        where.append(sql.SQL("due_at < %(due_to)s"))
        params["due_to"] = due_to
    if after is not None:
        where.append(sql.SQL("(due_at, post_id, destination_id) > (%(a_due)s, %(a_post)s, %(a_dest)s)"))
        params.update(a_due=after[0], a_post=after[1], a_dest=after[2])
    query = sql.SQL(
        "SELECT {columns} FROM queue_destinations WHERE {where}"
        " ORDER BY due_at, post_id, destination_id LIMIT %(limit)s"
    ).format(columns=_ENTRY_COLUMNS, where=sql.SQL(" AND ").join(where))

    return query, params


def _status_filter(wanted: tuple[str, ...]) -> sql.Composable:
    listed = sql.SQL("status IN ({})").format(sql.SQL(", ").join(map(sql.Literal, wanted)))
    if set(wanted) < set(ACTIVE):
        # A subset of the active set: repeat the index's own predicate so the partial index still applies.
        return sql.SQL("{} AND {}").format(_status_filter(ACTIVE), listed)
    return listed
