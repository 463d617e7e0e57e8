"""The daily top-off: a ``top_off_slots`` command for every workspace with an active posting
schedule or series (found in the planning read models), with the workspace's active series.

The command id is derived from (workspace, UTC day), so every processors process, every restart
and every tick of one day send the same command: the domain decides it once. What a top-off
creates is idempotent anyway (slots unique per account and instant, series posts per occurrence);
the id only keeps the daily ticks from deciding a no-op again and again."""

from __future__ import annotations

from datetime import datetime

from psycopg import Connection

from processors.commands import command_for
from projections import calendar as planning
from schemas.commands import CommandEnvelope, TopOffSlots

ISSUED_BY = "processor:slot-top-off"


def due_commands(conn: Connection, now: datetime, limit: int, after: str = "") -> list[CommandEnvelope]:
    """Up to ``limit`` top-offs, for the workspaces after ``after`` (by id)."""
    return [command_for(TopOffSlots(series_ids=series), workspace_id=ws, id_parts=("top_off", ws, now.date()),
                        issued_by=ISSUED_BY)
            for ws, series in planning.workspaces_to_top_off(conn, after, limit)]
