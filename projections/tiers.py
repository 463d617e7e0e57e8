"""Tiers read model: the tiers an admin defined (latest version of each), and a workspace's tier
changes carried into the ``workspaces`` and ``queue_workspaces`` rows (their other columns are
the workspaces and queue projections'); a downgrade waiting for the renewal in
``tier_changes_scheduled``."""

from __future__ import annotations

from typing import Any

from psycopg import Connection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from projections.base import Projection, applies
from schemas import events as ev
from schemas.events import CloudEvent, EventData

DDL = """
CREATE TABLE IF NOT EXISTS tiers (
    tier       text        PRIMARY KEY,
    version    integer     NOT NULL,
    limits     jsonb       NOT NULL,
    defined_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS tier_changes_scheduled (
    workspace_id text        PRIMARY KEY,
    to_tier      text        NOT NULL,
    effective_at timestamptz NOT NULL
);
"""
TABLES = ("tiers", "tier_changes_scheduled")

_APPLIED = (ev.TierDefined, ev.TierChanged, ev.TierChangeScheduled, ev.LimitsOverridden)


@applies(*_APPLIED)
def apply(conn: Connection, event: CloudEvent, data: EventData) -> None:
    ws = event.workspaceid
    match data:
        case ev.TierDefined():
            conn.execute(
                "INSERT INTO tiers AS t VALUES (%s, %s, %s, %s) ON CONFLICT (tier) DO UPDATE"
                " SET version = EXCLUDED.version, limits = EXCLUDED.limits, defined_at = EXCLUDED.defined_at"
                " WHERE t.version < EXCLUDED.version",
                (data.tier, data.version, Jsonb(dict(data.limits)), event.time),
            )
        case ev.TierChanged():
            conn.execute("UPDATE workspaces SET tier = %s, limits = %s WHERE workspace_id = %s",
                         (data.to_tier, Jsonb(dict(data.limits)), ws))
            conn.execute("UPDATE queue_workspaces SET tier = %s, queue_size = %s WHERE workspace_id = %s",
                         (data.to_tier, data.limits["queue_size"], ws))
            conn.execute("DELETE FROM tier_changes_scheduled WHERE workspace_id = %s", (ws,))
        case ev.TierChangeScheduled():
            conn.execute(
                "INSERT INTO tier_changes_scheduled VALUES (%s, %s, %s) ON CONFLICT (workspace_id) DO UPDATE"
                " SET to_tier = EXCLUDED.to_tier, effective_at = EXCLUDED.effective_at",
                (ws, data.to_tier, data.effective_at),
            )
        case ev.LimitsOverridden():
            conn.execute("UPDATE workspaces SET limit_overrides = %s, limits = %s WHERE workspace_id = %s",
                         (Jsonb(dict(data.limit_overrides)), Jsonb(dict(data.limits)), ws))
            conn.execute("UPDATE queue_workspaces SET queue_size = %s WHERE workspace_id = %s",
                         (data.limits["queue_size"], ws))


PROJECTION = Projection(name="tiers", ddl=DDL, tables=TABLES, handles=apply.handles, apply=apply,
                        needs=("workspaces", "queue"))


def read_tiers(conn: Connection) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("SELECT tier, version, limits, defined_at FROM tiers ORDER BY tier").fetchall()


def read_scheduled_change(conn: Connection, workspace_id: str) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("SELECT to_tier, effective_at FROM tier_changes_scheduled WHERE workspace_id = %s",
                           (workspace_id,)).fetchone()
