"""Workspaces read model: each workspace's name, tier, time zone, limits and publishing policy. The queue summary
(tier, queue_size, waiting) stays in the queue projection (``queue_workspace_summary``)."""

from __future__ import annotations

from typing import Any

from psycopg import Connection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from projections.base import Projection, applies
from schemas import events as ev
from schemas.events import CloudEvent, EventData

DDL = """
CREATE TABLE IF NOT EXISTS workspaces (
    workspace_id    text        PRIMARY KEY,
    name            text        NOT NULL,
    tier            text        NOT NULL,
    timezone        text        NOT NULL,
    limit_overrides jsonb       NOT NULL,
    limits          jsonb       NOT NULL,
    opened_at       timestamptz NOT NULL
);
ALTER TABLE workspaces ADD COLUMN IF NOT EXISTS missed_window_s double precision;
"""
TABLES = ("workspaces",)

_APPLIED = (ev.WorkspaceOpened, ev.PublishingPolicySet)


@applies(*_APPLIED)
def apply(conn: Connection, event: CloudEvent, data: EventData) -> None:
    """Apply one event to ``workspaces``; others are ignored without parsing them."""
    match data:
        case ev.WorkspaceOpened():
            conn.execute(
                "INSERT INTO workspaces (workspace_id, name, tier, timezone, limit_overrides, limits, opened_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (event.workspaceid, data.name, data.tier, data.timezone, Jsonb(dict(data.limit_overrides)),
                 Jsonb(dict(data.limits)), event.time),
            )
        case ev.PublishingPolicySet():
            conn.execute("UPDATE workspaces SET missed_window_s = %s WHERE workspace_id = %s",
                         (data.missed_window_s, event.workspaceid))


PROJECTION = Projection(name="workspaces", ddl=DDL, tables=TABLES, handles=apply.handles, apply=apply,
                        needs=("tiers",))  # tier changes and overrides write its rows


def read_workspace(conn: Connection, workspace_id: str) -> dict[str, Any] | None:
    """The workspace (workspace_id, name, tier, timezone, limit_overrides, limits, opened_at,
    missed_window_s: null for Herald's default), or None."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT workspace_id, name, tier, timezone, limit_overrides, limits, opened_at, missed_window_s"
            " FROM workspaces"
            " WHERE workspace_id = %s",
            (workspace_id,),
        ).fetchone()
