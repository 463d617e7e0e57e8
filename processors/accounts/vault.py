"""The credentials store: social-account tokens, sealed (AES-256-GCM, herald/crypto.py), in a
private table that nothing publishes. One row per account and credential version:

- the gateway's connect endpoint seals the tokens and stores them under a version derived from
  the command id *before* the domain decides (a repeat stores nothing new), then tells the domain
  only the version; a rejected connect removes its row, an accepted reconnect removes the rows
  it replaces;
- the publishing engine reads the account's newest row of its own workspace at call time;
- a refresh rotates the tokens of a row in place, compare-and-set on ``revision``, so two
  refreshers never overwrite each other (and the rotated-away refresh token is never stored again);
- a refresh refused for good sets ``status = 'needs_reconnect'``; a reconnect is a new row.

Nothing here unseals: rows carry sealed values only, and callers unseal at the moment of use.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import Connection
from psycopg.rows import dict_row

DDL = """
CREATE TABLE IF NOT EXISTS account_credentials (
    social_account_id    text        NOT NULL,
    version              text        NOT NULL,
    workspace_id         text        NOT NULL,
    platform             text        NOT NULL,
    instance_url         text,
    status               text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'needs_reconnect')),
    reason               text,
    sealed_access_token  text        NOT NULL,
    sealed_refresh_token text,
    access_expires_at    timestamptz,
    revision             integer     NOT NULL DEFAULT 0,
    created_at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (social_account_id, version)
);
CREATE INDEX IF NOT EXISTS account_credentials_newest
    ON account_credentials (social_account_id, workspace_id, created_at DESC);
-- The proactive refresher walks this index from the soonest expiry: never all accounts.
CREATE INDEX IF NOT EXISTS account_credentials_expiring ON account_credentials (access_expires_at)
    WHERE status = 'active' AND sealed_refresh_token IS NOT NULL AND access_expires_at IS NOT NULL;
"""

_COLUMNS = ("social_account_id, version, workspace_id, platform, instance_url, status, reason, sealed_access_token,"
            " sealed_refresh_token, access_expires_at, revision")


@dataclass(frozen=True)
class StoredCredential:
    social_account_id: str
    version: str
    workspace_id: str
    platform: str
    instance_url: str | None
    status: str
    reason: str | None
    sealed_access_token: str
    sealed_refresh_token: str | None
    access_expires_at: datetime | None
    revision: int

    def __repr__(self) -> str:  # never print a sealed value, even by accident in a log line
        return (f"StoredCredential({self.social_account_id!r}, version={self.version!r}, status={self.status!r}, "
                f"expires={self.access_expires_at}, revision={self.revision})")


def _one(row: dict[str, Any] | None) -> StoredCredential | None:
    return StoredCredential(**row) if row else None


def store(conn: Connection, *, social_account_id: str, version: str, workspace_id: str, platform: str,
          instance_url: str | None, sealed_access_token: str, sealed_refresh_token: str | None,
          access_expires_at: datetime | None) -> bool:
    """Store a version once; True when it is new (a repeat with the same version changes nothing)."""
    row = conn.execute(
        "INSERT INTO account_credentials (social_account_id, version, workspace_id, platform, instance_url,"
        " sealed_access_token, sealed_refresh_token, access_expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (social_account_id, version) DO NOTHING RETURNING 1",
        (social_account_id, version, workspace_id, platform, instance_url, sealed_access_token, sealed_refresh_token,
         access_expires_at),
    ).fetchone()
    return row is not None


def discard(conn: Connection, social_account_id: str, version: str, workspace_id: str) -> None:
    """The domain refused the connect that stored this version."""
    conn.execute("DELETE FROM account_credentials WHERE social_account_id = %s AND version = %s AND workspace_id = %s",
                 (social_account_id, version, workspace_id))


def supersede(conn: Connection, social_account_id: str, version: str, workspace_id: str) -> int:
    """The domain accepted this version: the same workspace's older versions of the account go."""
    return conn.execute(
        "DELETE FROM account_credentials c USING account_credentials v"
        " WHERE v.social_account_id = %(a)s AND v.version = %(v)s AND v.workspace_id = %(w)s"
        " AND c.social_account_id = %(a)s AND c.workspace_id = %(w)s AND c.version <> %(v)s"
        " AND c.created_at < v.created_at",
        {"a": social_account_id, "v": version, "w": workspace_id},
    ).rowcount


def current(conn: Connection, social_account_id: str, workspace_id: str) -> StoredCredential | None:
    """The account's newest credentials in its workspace (another workspace's rows never count)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return _one(cur.execute(
            f"SELECT {_COLUMNS} FROM account_credentials WHERE social_account_id = %s AND workspace_id = %s"
            " ORDER BY created_at DESC LIMIT 1", (social_account_id, workspace_id)).fetchone())


def lock(conn: Connection, social_account_id: str, version: str) -> StoredCredential | None:
    """The row, locked until the transaction ends: one refresher per row at a time, across processes."""
    with conn.cursor(row_factory=dict_row) as cur:
        return _one(cur.execute(
            f"SELECT {_COLUMNS} FROM account_credentials WHERE social_account_id = %s AND version = %s FOR UPDATE",
            (social_account_id, version)).fetchone())


def rotate(conn: Connection, seen: StoredCredential, *, sealed_access_token: str, sealed_refresh_token: str | None,
           access_expires_at: datetime | None) -> StoredCredential | None:
    """Replace the tokens if the row is still at the revision ``seen`` (compare-and-set); the new
    row, or None when another refresher got there first."""
    with conn.cursor(row_factory=dict_row) as cur:
        return _one(cur.execute(
            "UPDATE account_credentials SET sealed_access_token = %s, sealed_refresh_token = %s,"
            " access_expires_at = %s, revision = revision + 1, updated_at = clock_timestamp()"
            " WHERE social_account_id = %s AND version = %s AND revision = %s AND status = 'active'"
            f" RETURNING {_COLUMNS}",
            (sealed_access_token, sealed_refresh_token, access_expires_at, seen.social_account_id, seen.version,
             seen.revision)).fetchone())


def mark_needs_reconnect(conn: Connection, seen: StoredCredential, reason: str) -> bool:
    """Compare-and-set too: a row refreshed meanwhile by someone else is not marked."""
    return conn.execute(
        "UPDATE account_credentials SET status = 'needs_reconnect', reason = %s, revision = revision + 1,"
        " updated_at = clock_timestamp() WHERE social_account_id = %s AND version = %s AND revision = %s",
        (reason, seen.social_account_id, seen.version, seen.revision)).rowcount == 1


def expiring(conn: Connection, within_s: float, limit: int) -> list[StoredCredential]:
    """Refreshable rows whose access token expires within ``within_s``, soonest first (by index)."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"SELECT {_COLUMNS} FROM account_credentials WHERE status = 'active'"
            " AND sealed_refresh_token IS NOT NULL AND access_expires_at IS NOT NULL"
            " AND access_expires_at < now() + make_interval(secs => %s) ORDER BY access_expires_at LIMIT %s",
            (float(within_s), limit)).fetchall()
    return [StoredCredential(**row) for row in rows]
