"""Pending OAuth authorizations: what Herald remembers between sending a user to a platform's
authorization page and the callback that brings the code back (gateway/routes/oauth.py).

One row per authorization request, used once. The ``state`` is a bearer secret for the callback
(with it and a code one could connect an account), so only its SHA-256 is stored; the PKCE
verifier is sealed (herald/crypto.py) and unsealed only to exchange the code. A row is taken
atomically (``used_at`` set in the statement that checks it is unused and unexpired): a replayed
or concurrent callback finds it used. Rows are kept a day past their expiry so that a late or
repeated callback is told "used" or "expired" rather than "unknown", then pruned when new ones
are made (by the expiry index: never a scan of all rows).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from psycopg import Connection
from psycopg.rows import dict_row

TTL_S = 600.0  # how long a user has to approve at the platform
KEEP_AFTER_EXPIRY_S = 86_400.0

DDL = """
CREATE TABLE IF NOT EXISTS oauth_authorizations (
    state_sha256         text        PRIMARY KEY,
    workspace_id         text        NOT NULL,
    platform             text        NOT NULL,
    instance_url         text,
    redirect_uri         text        NOT NULL,
    social_account_id    text,
    handle               text,
    sealed_code_verifier text,
    created_at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    expires_at           timestamptz NOT NULL,
    used_at              timestamptz
);
CREATE INDEX IF NOT EXISTS oauth_authorizations_expiry ON oauth_authorizations (expires_at);
"""

_COLUMNS = "workspace_id, platform, instance_url, redirect_uri, social_account_id, handle, sealed_code_verifier, expires_at"


class Refusal(StrEnum):
    unknown = "unknown"  # never issued, or issued to another workspace
    expired = "expired"
    used = "used"


@dataclass(frozen=True)
class Pending:
    workspace_id: str
    platform: str
    instance_url: str | None
    redirect_uri: str
    social_account_id: str | None
    handle: str | None
    sealed_code_verifier: str | None
    expires_at: datetime

    def __repr__(self) -> str:  # never print the sealed verifier
        return f"Pending({self.workspace_id!r}, {self.platform!r}, instance={self.instance_url!r})"


def state_digest(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def create(conn: Connection, *, state: str, workspace_id: str, platform: str, instance_url: str | None,
           redirect_uri: str, social_account_id: str | None, handle: str | None,
           sealed_code_verifier: str | None, ttl_s: float = TTL_S) -> datetime:
    """Remember one authorization request; returns when it expires. Prunes long-expired ones."""
    conn.execute("DELETE FROM oauth_authorizations WHERE expires_at < clock_timestamp() - make_interval(secs => %s)",
                 (KEEP_AFTER_EXPIRY_S,))
    (expires_at,) = conn.execute(
        "INSERT INTO oauth_authorizations (state_sha256, workspace_id, platform, instance_url, redirect_uri,"
        " social_account_id, handle, sealed_code_verifier, expires_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, clock_timestamp() + make_interval(secs => %s)) RETURNING expires_at",
        (state_digest(state), workspace_id, platform, instance_url, redirect_uri, social_account_id, handle,
         sealed_code_verifier, ttl_s)).fetchone()
    return expires_at


def take(conn: Connection, state: str, workspace_id: str) -> Pending | Refusal:
    """The workspace's pending authorization for ``state``, now used; or why there is none. Another
    workspace's state is ``unknown`` here and stays usable by its own workspace."""
    digest = state_digest(state)
    with conn.cursor(row_factory=dict_row) as cur:
        row: dict[str, Any] | None = cur.execute(
            f"UPDATE oauth_authorizations SET used_at = clock_timestamp() WHERE state_sha256 = %s"
            f" AND workspace_id = %s AND used_at IS NULL AND expires_at > clock_timestamp() RETURNING {_COLUMNS}",
            (digest, workspace_id)).fetchone()
        if row is not None:
            return Pending(**row)
        found = cur.execute("SELECT used_at FROM oauth_authorizations WHERE state_sha256 = %s AND workspace_id = %s",
                            (digest, workspace_id)).fetchone()
    if found is None:
        return Refusal.unknown
    return Refusal.used if found["used_at"] is not None else Refusal.expired
