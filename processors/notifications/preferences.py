"""Per workspace, per notice cause and channel: on unless the workspace turned it off."""

from __future__ import annotations

from typing import Any

from psycopg import Connection
from psycopg.rows import dict_row

DDL = """
CREATE TABLE IF NOT EXISTS notification_preferences (
    workspace_id text    NOT NULL,
    cause        text    NOT NULL,
    channel      text    NOT NULL,
    enabled      boolean NOT NULL,
    PRIMARY KEY (workspace_id, cause, channel)
);
"""

CAUSES = ("low_credits", "credits_expiring", "post_skipped", "post_failed", "tier_limit_reached",
          "account_needs_reconnect", "webhook_endpoint_disabled")
CHANNELS = ("webhook", "email")


def enabled(conn: Connection, workspace_id: str, cause: str, channel: str) -> bool:
    row = conn.execute("SELECT enabled FROM notification_preferences WHERE workspace_id = %s AND cause = %s"
                       " AND channel = %s", (workspace_id, cause, channel)).fetchone()
    return True if row is None else row[0]


def put(conn: Connection, workspace_id: str, cause: str, channel: str, on: bool) -> None:
    conn.execute("INSERT INTO notification_preferences VALUES (%s, %s, %s, %s) ON CONFLICT (workspace_id, cause,"
                 " channel) DO UPDATE SET enabled = EXCLUDED.enabled", (workspace_id, cause, channel, on))


def listed(conn: Connection, workspace_id: str) -> list[dict[str, Any]]:
    """Every cause × channel with its setting (the default, on, where none was set)."""
    with conn.cursor(row_factory=dict_row) as cur:
        set_ = {(r["cause"], r["channel"]): r["enabled"] for r in cur.execute(
            "SELECT cause, channel, enabled FROM notification_preferences WHERE workspace_id = %s",
            (workspace_id,)).fetchall()}
    return [{"cause": c, "channel": ch, "enabled": set_.get((c, ch), True)} for c in CAUSES for ch in CHANNELS]
