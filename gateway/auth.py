"""API keys: the admin key (from settings) and stored keys, each with scopes and, usually, one
workspace.

Only a SHA-256 of a stored key is kept; the key itself is shown once, when it is issued. A key
is 256 random bits, so a plain hash is enough (no salt or slow hash: there is no dictionary to
guess from), and looking it up by hash reveals nothing through timing.

Scopes: ``admin`` (anything), ``workspace:read`` (GET a workspace's resources),
``workspace:write`` (connect accounts, schedule and cancel posts), ``credits:grant`` (grant
credits), ``analytics:read`` (analytics views). A key bound to a workspace reaches only that
workspace; a key bound to none (issued by the admin, e.g. for a billing service holding
``credits:grant``) reaches every workspace within its scopes.

Rotation issues a new key with the same scopes and workspace and lets the old one work until
the end of an overlap window, so clients can switch over without an outage. ``last_used_at`` is
written at most once a minute per key, so authenticating stays one read.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from domain.base import derived_id

ADMIN = "admin"
WORKSPACE_READ = "workspace:read"
WORKSPACE_WRITE = "workspace:write"
CREDITS_GRANT = "credits:grant"
ANALYTICS_READ = "analytics:read"
APPROVER = "approver"  # approve or reject posts awaiting approval; set the content policy
SCOPES = (ADMIN, WORKSPACE_READ, WORKSPACE_WRITE, CREDITS_GRANT, ANALYTICS_READ, APPROVER)
# What the key issued with a new workspace may do: run the workspace (and hand out narrower keys,
# e.g. an editor's without `approver`), not pay itself.
WORKSPACE_KEY_SCOPES = (WORKSPACE_READ, WORKSPACE_WRITE, APPROVER)

# ``scope`` is the key's kind, kept from the first version of this table: 'service' for a key
# bound to a workspace, 'admin' for one that is not. What a key may do is in ``scopes``.
DDL = """
CREATE TABLE IF NOT EXISTS gateway_api_keys (
    key_id       text        PRIMARY KEY,
    key_sha256   text        NOT NULL UNIQUE,
    scope        text        NOT NULL CHECK (scope IN ('admin', 'service')),
    workspace_id text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    CHECK ((scope = 'service') = (workspace_id IS NOT NULL))
);
ALTER TABLE gateway_api_keys ADD COLUMN IF NOT EXISTS scopes text[];
ALTER TABLE gateway_api_keys ADD COLUMN IF NOT EXISTS name text NOT NULL DEFAULT '';
ALTER TABLE gateway_api_keys ADD COLUMN IF NOT EXISTS created_by text NOT NULL DEFAULT '';
ALTER TABLE gateway_api_keys ADD COLUMN IF NOT EXISTS last_used_at timestamptz;
ALTER TABLE gateway_api_keys ADD COLUMN IF NOT EXISTS expires_at timestamptz;
ALTER TABLE gateway_api_keys ADD COLUMN IF NOT EXISTS rotated_to text;
-- Keys issued before scopes existed: a workspace key could read and write its workspace (and
-- grant itself credits, which it no longer may).
UPDATE gateway_api_keys SET scopes = CASE scope WHEN 'admin' THEN ARRAY['admin']
                                            ELSE ARRAY['workspace:read', 'workspace:write'] END
 WHERE scopes IS NULL;
CREATE INDEX IF NOT EXISTS gateway_api_keys_workspace ON gateway_api_keys (workspace_id, created_at);
"""

ADMIN_KEY_ID = "admin"
LAST_USED_RESOLUTION = timedelta(minutes=1)
_COLUMNS = "key_id, name, scopes, workspace_id, created_at, created_by, last_used_at, expires_at, revoked_at, rotated_to"


@dataclass(frozen=True)
class Principal:
    key_id: str
    scopes: frozenset[str]
    workspace_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return ADMIN in self.scopes

    @property
    def issued_by(self) -> str:
        return f"api-key:{self.key_id}"

    def may_access(self, workspace_id: str) -> bool:
        return self.is_admin or self.workspace_id is None or self.workspace_id == workspace_id

    def holds(self, scope: str) -> bool:
        return self.is_admin or scope in self.scopes


ROOT = Principal(ADMIN_KEY_ID, frozenset({ADMIN}))


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def authenticate(pool: ConnectionPool, admin_key: str, presented: str) -> Principal | None:
    """The principal a presented key stands for, or None for an unknown, revoked or expired key."""
    if admin_key and hmac.compare_digest(presented.encode(), admin_key.encode()):
        return ROOT
    with pool.connection() as conn:
        row = conn.execute(
            "SELECT key_id, scopes, workspace_id, last_used_at < now() - %s OR last_used_at IS NULL"
            "  FROM gateway_api_keys"
            " WHERE key_sha256 = %s AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())",
            (LAST_USED_RESOLUTION, digest(presented)),
        ).fetchone()
        if row is None:
            return None
        key_id, scopes, workspace_id, stale = row
        if stale:
            conn.execute("UPDATE gateway_api_keys SET last_used_at = now() WHERE key_id = %s", (key_id,))
    return Principal(key_id, frozenset(scopes), workspace_id)


def service_key_id(command_id: str) -> str:
    return f"key_{derived_id('api-key', command_id)}"


def issue_service_key(pool: ConnectionPool, workspace_id: str, key_id: str) -> str | None:
    """The key of a new workspace, or None if ``key_id`` was issued before."""
    issued = issue(pool, key_id=key_id, scopes=WORKSPACE_KEY_SCOPES, workspace_id=workspace_id,
                   name="workspace key", created_by=f"api-key:{ADMIN_KEY_ID}")
    return issued[1] if issued else None


def issue(pool: ConnectionPool, *, key_id: str, scopes: tuple[str, ...] | list[str], workspace_id: str | None,
          name: str = "", created_by: str = "") -> tuple[dict[str, Any], str] | None:
    """A new key: (its view, the key), or None if ``key_id`` was issued before."""
    key = f"hk_{secrets.token_urlsafe(32)}"
    with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "INSERT INTO gateway_api_keys (key_id, key_sha256, scope, workspace_id, scopes, name, created_by)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (key_id) DO NOTHING"
            f" RETURNING {_COLUMNS}",
            (key_id, digest(key), "service" if workspace_id else "admin", workspace_id,
             sorted(set(scopes)), name, created_by),
        )
        row = cur.fetchone()
    return (row, key) if row else None


def find(pool: ConnectionPool, key_id: str) -> dict[str, Any] | None:
    with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        cur.execute(f"SELECT {_COLUMNS} FROM gateway_api_keys WHERE key_id = %s", (key_id,))
        return cur.fetchone()


def listed(pool: ConnectionPool, workspace_id: str | None, limit: int) -> list[dict[str, Any]]:
    """Keys of one workspace (or every key), newest first; never their hashes."""
    where, params = ("WHERE workspace_id = %s", [workspace_id]) if workspace_id is not None else ("", [])
    with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        cur.execute(f"SELECT {_COLUMNS} FROM gateway_api_keys {where} ORDER BY created_at DESC, key_id LIMIT %s",
                    [*params, limit])
        return cur.fetchall()


def revoke(pool: ConnectionPool, key_id: str) -> bool:
    with pool.connection() as conn:
        row = conn.execute(
            "UPDATE gateway_api_keys SET revoked_at = now() WHERE key_id = %s AND revoked_at IS NULL RETURNING key_id",
            (key_id,),
        ).fetchone()
    return row is not None


def rotate(pool: ConnectionPool, key_id: str, new_key_id: str, overlap: timedelta,
           created_by: str) -> tuple[dict[str, Any], str | None] | None:
    """A successor of ``key_id`` with its scopes and workspace; the old key keeps working for
    ``overlap``, then stops. Repeating a rotation (same ``new_key_id``) answers the successor
    without its key. None when ``key_id`` is unknown, revoked or already past its end."""
    key = f"hk_{secrets.token_urlsafe(32)}"
    with pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(f"SELECT {_COLUMNS} FROM gateway_api_keys WHERE key_id = %s", (new_key_id,))
        earlier = cur.fetchone()
        if earlier is not None:
            return earlier, None
        cur.execute(
            "SELECT scopes, workspace_id, name FROM gateway_api_keys WHERE key_id = %s AND revoked_at IS NULL"
            " AND (expires_at IS NULL OR expires_at > now()) FOR UPDATE", (key_id,))
        old = cur.fetchone()
        if old is None:
            return None
        cur.execute(
            "INSERT INTO gateway_api_keys (key_id, key_sha256, scope, workspace_id, scopes, name, created_by)"
            f" VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING {_COLUMNS}",
            (new_key_id, digest(key), "service" if old["workspace_id"] else "admin", old["workspace_id"],
             old["scopes"], old["name"], created_by),
        )
        successor = cur.fetchone()
        cur.execute("UPDATE gateway_api_keys SET expires_at = LEAST(COALESCE(expires_at, 'infinity'), now() + %s),"
                    " rotated_to = %s WHERE key_id = %s", (overlap, new_key_id, key_id))
    return successor, key


def expired_or_revoked(view: dict[str, Any], now: datetime) -> bool:
    return view["revoked_at"] is not None or (view["expires_at"] is not None and view["expires_at"] <= now)
