"""Social accounts read model: which accounts a workspace can publish to, and whether one must be
connected again. No token is ever here (they live in the private credentials store)."""

from __future__ import annotations

from typing import Any

from psycopg import Connection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from projections.base import Projection, applies
from schemas import events as ev
from schemas.events import CloudEvent, EventData

DDL = """
CREATE TABLE IF NOT EXISTS social_accounts (
    social_account_id text        PRIMARY KEY,
    workspace_id      text        NOT NULL,
    platform          text        NOT NULL,
    handle            text        NOT NULL,
    instance_url      text,
    connected_at      timestamptz NOT NULL
);
ALTER TABLE social_accounts
    ADD COLUMN IF NOT EXISTS status                 text NOT NULL DEFAULT 'active',
    ADD COLUMN IF NOT EXISTS needs_reconnect_reason text,
    ADD COLUMN IF NOT EXISTS settings               jsonb NOT NULL DEFAULT '{}';
CREATE INDEX IF NOT EXISTS social_accounts_workspace ON social_accounts (workspace_id, connected_at, social_account_id);
"""
TABLES = ("social_accounts",)

_APPLIED = (ev.SocialAccountConnected, ev.SocialAccountReconnected, ev.SocialAccountNeedsReconnect,
            ev.SocialAccountDisconnected)
_COLUMNS = "social_account_id, workspace_id, platform, handle, instance_url, connected_at, settings"
_SHOWN = f"{_COLUMNS}, status, needs_reconnect_reason"


@applies(*_APPLIED)
def apply(conn: Connection, event: CloudEvent, data: EventData) -> None:
    """Apply one event to ``social_accounts``; others are ignored without parsing them."""
    match data:
        case ev.SocialAccountConnected():
            conn.execute(
                f"INSERT INTO social_accounts ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (data.social_account_id, event.workspaceid, data.platform, data.handle, data.instance_url, event.time,
                 Jsonb(data.settings)),
            )
        case ev.SocialAccountReconnected():
            conn.execute(
                "UPDATE social_accounts SET handle = %s, instance_url = %s, status = 'active',"
                " needs_reconnect_reason = NULL, settings = COALESCE(%s, settings) WHERE social_account_id = %s",
                (data.handle, data.instance_url, Jsonb(data.settings) if data.settings is not None else None,
                 data.social_account_id),
            )
        case ev.SocialAccountNeedsReconnect():
            conn.execute(
                "UPDATE social_accounts SET status = 'needs_reconnect', needs_reconnect_reason = %s"
                " WHERE social_account_id = %s AND status <> 'disconnected'", (data.reason, data.social_account_id),
            )
        case ev.SocialAccountDisconnected():
            conn.execute("UPDATE social_accounts SET status = 'disconnected', needs_reconnect_reason = NULL"
                         " WHERE social_account_id = %s", (data.social_account_id,))


PROJECTION = Projection(name="accounts", ddl=DDL, tables=TABLES, handles=apply.handles, apply=apply)


def read_account(conn: Connection, workspace_id: str, account_id: str) -> dict[str, Any] | None:
    """One account of the workspace (None if absent or another workspace's)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"SELECT {_SHOWN} FROM social_accounts WHERE social_account_id = %s AND workspace_id = %s",
            (account_id, workspace_id),
        ).fetchone()


def list_accounts(conn: Connection, workspace_id: str) -> list[dict[str, Any]]:
    """The workspace's accounts, in the order they were connected."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"SELECT {_SHOWN} FROM social_accounts WHERE workspace_id = %s ORDER BY connected_at, social_account_id",
            (workspace_id,),
        ).fetchall()
