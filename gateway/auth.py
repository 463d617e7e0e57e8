"""API keys: the admin key (from settings) and service keys, each bound to one workspace.

Only a SHA-256 of a service key is stored; the key itself is shown once, when it is issued.
A service key's id is derived from the command that opened its workspace, so issuing is
idempotent: a retried request cannot mint a second key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from psycopg_pool import ConnectionPool

from domain.base import derived_id

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
"""

ADMIN_KEY_ID = "admin"


@dataclass(frozen=True)
class Principal:
    key_id: str
    scope: str  # admin | service
    workspace_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.scope == "admin"

    @property
    def issued_by(self) -> str:
        return f"api-key:{self.key_id}"

    def may_access(self, workspace_id: str) -> bool:
        return self.is_admin or self.workspace_id == workspace_id


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def authenticate(pool: ConnectionPool, admin_key: str, presented: str) -> Principal | None:
    """The principal a presented key stands for, or None for an unknown or revoked key."""
    if admin_key and hmac.compare_digest(presented.encode(), admin_key.encode()):
        return Principal(ADMIN_KEY_ID, "admin")
    # Looking up by hash is safe against timing: the hash of a guess reveals nothing about a key.
    with pool.connection() as conn:
        row = conn.execute(
            "SELECT key_id, scope, workspace_id FROM gateway_api_keys WHERE key_sha256 = %s AND revoked_at IS NULL",
            (digest(presented),),
        ).fetchone()
    return Principal(*row) if row else None


def service_key_id(command_id: str) -> str:
    return f"key_{derived_id('api-key', command_id)}"


def issue_service_key(pool: ConnectionPool, workspace_id: str, key_id: str) -> str | None:
    """A new service key for the workspace, or None if ``key_id`` was issued before."""
    key = f"hk_{secrets.token_urlsafe(32)}"
    with pool.connection() as conn:
        row = conn.execute(
            "INSERT INTO gateway_api_keys (key_id, key_sha256, scope, workspace_id) VALUES (%s, %s, 'service', %s)"
            " ON CONFLICT (key_id) DO NOTHING RETURNING key_id",
            (key_id, digest(key), workspace_id),
        ).fetchone()
    return key if row else None


def revoke(pool: ConnectionPool, key_id: str) -> bool:
    with pool.connection() as conn:
        row = conn.execute(
            "UPDATE gateway_api_keys SET revoked_at = now() WHERE key_id = %s AND revoked_at IS NULL RETURNING key_id",
            (key_id,),
        ).fetchone()
    return row is not None
