"""Audit read model: every rejected command, per workspace, with its reason, who sent it and
what it was about (``subjects``: ``post:<id>``, ``wallet``, ``social_account:<id>``); and the
publishing events of each social account (they live in the posts' streams, not the account's).

The HTTP answer to a rejected command is gone once sent; this keeps the rejection findable:
listed per workspace (``GET …/rejections``) and merged into the history of the post, wallet or
account it concerned (``herald.audit.history``).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from psycopg import Connection
from psycopg.rows import dict_row

from projections.base import Projection, applies
from schemas import events as ev
from schemas.events import CloudEvent, EventData

MAX_LIMIT = 500

DDL = """
CREATE TABLE IF NOT EXISTS command_rejections (
    workspace_id  text        NOT NULL,
    command_id    text        NOT NULL,
    command_type  text        NOT NULL,
    reason_code   text        NOT NULL,
    detail        text        NOT NULL,
    issued_by     text,
    subjects      text[]      NOT NULL,
    rejected_at   timestamptz NOT NULL,
    position      bigint      NOT NULL,
    PRIMARY KEY (workspace_id, command_id)
);
CREATE INDEX IF NOT EXISTS command_rejections_by_position ON command_rejections (workspace_id, position);
CREATE TABLE IF NOT EXISTS command_rejection_subjects (
    workspace_id text   NOT NULL,
    subject      text   NOT NULL,
    position     bigint NOT NULL,
    command_id   text   NOT NULL,
    PRIMARY KEY (workspace_id, subject, position, command_id)
);
-- Which account each destination publishes to, and what happened to it: an account's history
-- shows the scheduling, attempts and outcomes of the posts sent to it.
CREATE TABLE IF NOT EXISTS audit_destinations (
    post_id           text NOT NULL,
    destination_id    text NOT NULL,
    social_account_id text NOT NULL,
    PRIMARY KEY (post_id, destination_id)
);
CREATE TABLE IF NOT EXISTS audit_account_events (
    workspace_id      text        NOT NULL,
    social_account_id text        NOT NULL,
    position          bigint      NOT NULL,
    post_id           text        NOT NULL,
    type              text        NOT NULL,
    time              timestamptz NOT NULL,
    causation_id      text        NOT NULL,
    correlation_id    text        NOT NULL,
    aggregate_version integer     NOT NULL,
    data              jsonb       NOT NULL,
    PRIMARY KEY (workspace_id, social_account_id, position)
);
"""
TABLES = ("command_rejections", "command_rejection_subjects", "audit_destinations", "audit_account_events")

_DESTINATION_EVENTS = (ev.AttemptStarted, ev.DestinationPublished, ev.RetryScheduled, ev.DestinationThrottled,
                       ev.DestinationFailed, ev.DestinationSkipped, ev.OutcomeUnknown)

_COLUMNS = "command_id, command_type, reason_code, detail, issued_by, subjects, rejected_at, position"


@applies(ev.CommandRejected, ev.PostScheduled, ev.PostCancelled, *_DESTINATION_EVENTS)
def apply(conn: Connection, event: CloudEvent, data: EventData) -> None:
    """Record one rejection or publishing event (a repeat changes nothing)."""
    match data:
        case ev.CommandRejected():
            _rejected(conn, event, data)
        case ev.PostScheduled():
            conn.execute(
                "INSERT INTO audit_destinations SELECT %s, d, a FROM unnest(%s::text[], %s::text[]) AS x(d, a)"
                " ON CONFLICT DO NOTHING",
                (data.post_id, [d.destination_id for d in data.destinations],
                 [d.social_account_id for d in data.destinations]),
            )
            _account_event(conn, event, data.post_id, None)
        case ev.PostCancelled():
            _account_event(conn, event, data.post_id, data.cancelled_destinations)
        case _:
            _account_event(conn, event, data.post_id, [data.destination_id])  # type: ignore[attr-defined]


def _account_event(conn: Connection, event: CloudEvent, post_id: str, destinations: list[str] | None) -> None:
    """The event in the history of the accounts of ``destinations`` (None: all the post's)."""
    data = {k: v for k, v in event.data.items() if k != "sealed_token"}
    conn.execute(
        "INSERT INTO audit_account_events SELECT %(ws)s, social_account_id, %(position)s, %(post)s, %(type)s,"
        " %(time)s, %(causation)s, %(correlation)s, %(version)s, %(data)s::jsonb FROM audit_destinations"
        " WHERE post_id = %(post)s AND (%(dests)s::text[] IS NULL OR destination_id = ANY(%(dests)s::text[]))"
        " ON CONFLICT DO NOTHING",
        {"ws": event.workspaceid, "position": event.position, "post": post_id, "type": event.type, "time": event.time,
         "causation": event.causationid, "correlation": event.correlationid, "version": event.aggregateversion,
         "data": json.dumps(data), "dests": destinations},
    )


def _rejected(conn: Connection, event: CloudEvent, data: ev.CommandRejected) -> None:
    ws = event.workspaceid
    conn.execute(
        f"INSERT INTO command_rejections (workspace_id, {_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT DO NOTHING",
        (ws, data.command_id, data.command_type, data.reason_code, data.detail, data.issued_by, list(data.subjects),
         event.time, event.position),
    )
    if data.subjects:
        conn.execute(
            "INSERT INTO command_rejection_subjects (workspace_id, subject, position, command_id)"
            " SELECT %s, s, %s, %s FROM unnest(%s::text[]) AS s ON CONFLICT DO NOTHING",
            (ws, event.position, data.command_id, list(data.subjects)),
        )


PROJECTION = Projection(name="audit", ddl=DDL, tables=TABLES, handles=apply.handles, apply=apply)


def list_rejections(conn: Connection, workspace_id: str, *, after: int = 0, limit: int = 100,
                    since: datetime | None = None, until: datetime | None = None) -> list[dict[str, Any]]:
    """The workspace's rejected commands after position ``after``, oldest first, at most ``limit``."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}, not {limit!r}")
    where, params = ["workspace_id = %s", "position > %s"], [workspace_id, after]
    if since is not None:
        where.append("rejected_at >= %s")
        params.append(since)
    if until is not None:
        where.append("rejected_at < %s")
        params.append(until)
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"SELECT {_COLUMNS} FROM command_rejections WHERE {' AND '.join(where)} ORDER BY position LIMIT %s",
            (*params, limit),
        ).fetchall()


def rejections_about(conn: Connection, workspace_id: str, subject: str, *, after: int, limit: int) -> list[dict[str, Any]]:
    """Rejected commands about one subject after position ``after``, oldest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"SELECT {', '.join('r.' + c.strip() for c in _COLUMNS.split(','))}"
            " FROM command_rejection_subjects s JOIN command_rejections r USING (workspace_id, command_id)"
            " WHERE s.workspace_id = %s AND s.subject = %s AND s.position > %s ORDER BY s.position LIMIT %s",
            (workspace_id, subject, after, limit),
        ).fetchall()


def account_events(conn: Connection, workspace_id: str, social_account_id: str, *, after: int,
                   limit: int) -> list[dict[str, Any]]:
    """Publishing events of one account's destinations after position ``after``, oldest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT position, post_id, type, time, causation_id, correlation_id, aggregate_version, data"
            " FROM audit_account_events WHERE workspace_id = %s AND social_account_id = %s AND position > %s"
            " ORDER BY position LIMIT %s",
            (workspace_id, social_account_id, after, limit),
        ).fetchall()


def has_rejections_about(conn: Connection, workspace_id: str, subject: str) -> bool:
    return conn.execute(
        "SELECT 1 FROM command_rejection_subjects WHERE workspace_id = %s AND subject = %s LIMIT 1",
        (workspace_id, subject),
    ).fetchone() is not None
