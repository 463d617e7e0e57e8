"""Read-your-writes: per workspace, the highest event-store position the read models have
applied. A writer that knows the position of its last event waits until
``read_position(conn, workspace_id) >= that position`` before reading a projection.

The consumer runtime calls ``record`` once per batch, in the transaction that applied it.
"""

from __future__ import annotations

from collections.abc import Iterable

from psycopg import Connection

from schemas.events import CloudEvent

DDL = """
CREATE TABLE IF NOT EXISTS read_model_positions (
    workspace_id text        PRIMARY KEY,
    position     bigint      NOT NULL,
    updated_at   timestamptz NOT NULL
);
"""
TABLES = ("read_model_positions",)

_RECORD = """
INSERT INTO read_model_positions (workspace_id, position, updated_at)
SELECT b.workspace_id, b.position, now()
  FROM unnest(%s::text[], %s::bigint[]) AS b(workspace_id, position)
    ON CONFLICT (workspace_id) DO UPDATE
   SET position = GREATEST(read_model_positions.position, EXCLUDED.position), updated_at = EXCLUDED.updated_at
 WHERE EXCLUDED.position > read_model_positions.position
"""


def record(conn: Connection, events: Iterable[CloudEvent]) -> None:
    """Raise each workspace's position to the highest of the batch's events (never lowers it). One statement."""
    latest: dict[str, int] = {}
    for event in events:
        if event.position > latest.get(event.workspaceid, -1):
            latest[event.workspaceid] = event.position
    if not latest:
        return
    workspaces = sorted(latest)  # a fixed lock order, so concurrent batches cannot deadlock
    conn.execute(_RECORD, (workspaces, [latest[w] for w in workspaces]))


def read_position(conn: Connection, workspace_id: str) -> int:
    """The highest position applied for the workspace; 0 when none was."""
    row = conn.execute("SELECT position FROM read_model_positions WHERE workspace_id = %s", (workspace_id,)).fetchone()
    return row[0] if row else 0
