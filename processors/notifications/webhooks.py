"""A workspace's webhook endpoints, signed per the Standard Webhooks specification.

Spec: https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
- ``webhook-id`` (the message id, the same on every retry: the receiver's idempotency key),
  ``webhook-timestamp`` (integer Unix seconds), ``webhook-signature``: ``v1,<base64 HMAC-SHA256>``
  over ``<id>.<timestamp>.<body>`` with the decoded bytes of the ``whsec_`` secret as key; several
  signatures are space-separated, which is how a rotated secret overlaps the one it replaces
  (https://dret.github.io/webconcepts/concepts/http-header/webhook-signature).
- 2xx is delivered; 410 Gone asks the sender to stop; anything else is retried.

Secrets are generated here (``whsec_`` + base64 of 32 random bytes), shown once by the API, and
stored sealed (herald/crypto.py) in a private table nothing publishes. The URL is checked without
DNS when it is registered (``static_refusal``) and at every connection by the guarded client.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from psycopg import Connection
from psycopg.rows import dict_row

from herald.crypto import TokenCipher
from herald.net.guarded import DestinationRefused
from herald.net.safe_fetch import static_refusal

DDL = """
CREATE TABLE IF NOT EXISTS webhook_endpoints (
    endpoint_id            text        PRIMARY KEY,
    workspace_id           text        NOT NULL,
    url                    text        NOT NULL,
    description            text,
    sealed_secret          text        NOT NULL,
    sealed_previous_secret text,
    previous_until         timestamptz,
    status                 text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    disabled_reason        text,
    disabled_at            timestamptz,
    consecutive_failures   integer     NOT NULL DEFAULT 0,
    created_at             timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS webhook_endpoints_workspace ON webhook_endpoints (workspace_id, created_at);
"""

_VIEW = ("endpoint_id, workspace_id, url, description, status, disabled_reason, disabled_at, consecutive_failures,"
         " created_at, previous_until")


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


def secret_key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_"), validate=True)


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = msg_id.encode() + b"." + str(timestamp).encode() + b"." + body
    return "v1," + base64.b64encode(hmac.new(secret_key(secret), signed, hashlib.sha256).digest()).decode()


def signed_headers(secrets: list[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {"content-type": "application/json", "webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": " ".join(sign(s, msg_id, timestamp, body) for s in secrets)}


@dataclass(frozen=True)
class Endpoint:
    endpoint_id: str
    workspace_id: str
    url: str
    status: str
    sealed_secret: str
    sealed_previous_secret: str | None
    previous_until: datetime | None

    def __repr__(self) -> str:  # never a sealed value in a log line
        return f"Endpoint({self.endpoint_id!r}, {self.url!r}, status={self.status!r})"

    def secrets(self, cipher: TokenCipher, now: datetime) -> list[str]:
        """The secrets that sign now: the current one, and the previous one during the overlap."""
        out = [cipher.unseal(self.sealed_secret)]
        if self.sealed_previous_secret and self.previous_until and self.previous_until > now:
            out.append(cipher.unseal(self.sealed_previous_secret))
        return out


def refusal(url: str, allowed_networks: tuple[str, ...] | list[str] = ()) -> str | None:
    return static_refusal(url, allowed_networks)


def create(conn: Connection, cipher: TokenCipher, *, endpoint_id: str, workspace_id: str, url: str,
           description: str | None) -> tuple[dict[str, Any], str] | None:
    """(the endpoint, its secret in clear, to show once); None when the id exists already."""
    secret = new_secret()
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "INSERT INTO webhook_endpoints (endpoint_id, workspace_id, url, description, sealed_secret)"
            f" VALUES (%s, %s, %s, %s, %s) ON CONFLICT (endpoint_id) DO NOTHING RETURNING {_VIEW}",
            (endpoint_id, workspace_id, url, description, cipher.seal(secret))).fetchone()
    return (row, secret) if row else None


def listed(conn: Connection, workspace_id: str) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(f"SELECT {_VIEW} FROM webhook_endpoints WHERE workspace_id = %s ORDER BY created_at",
                           (workspace_id,)).fetchall()


def view(conn: Connection, workspace_id: str, endpoint_id: str) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(f"SELECT {_VIEW} FROM webhook_endpoints WHERE workspace_id = %s AND endpoint_id = %s",
                           (workspace_id, endpoint_id)).fetchone()


def find(conn: Connection, workspace_id: str, endpoint_id: str) -> Endpoint | None:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "SELECT endpoint_id, workspace_id, url, status, sealed_secret, sealed_previous_secret, previous_until"
            " FROM webhook_endpoints WHERE workspace_id = %s AND endpoint_id = %s", (workspace_id, endpoint_id),
        ).fetchone()
    return Endpoint(**row) if row else None


def active(conn: Connection, workspace_id: str) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT endpoint_id FROM webhook_endpoints WHERE workspace_id = %s AND status = 'active'"
        " ORDER BY created_at", (workspace_id,)).fetchall()]


def rotate(conn: Connection, cipher: TokenCipher, workspace_id: str, endpoint_id: str, now: datetime,
           overlap_s: float) -> tuple[dict[str, Any], str] | None:
    """A new secret; the one it replaces keeps signing for ``overlap_s`` (0: at once replaced)."""
    secret = new_secret()
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "UPDATE webhook_endpoints SET sealed_previous_secret = sealed_secret, sealed_secret = %s,"
            " previous_until = %s WHERE workspace_id = %s AND endpoint_id = %s"
            f" RETURNING {_VIEW}",
            (cipher.seal(secret), now + timedelta(seconds=overlap_s), workspace_id, endpoint_id)).fetchone()
    return (row, secret) if row else None


def delete(conn: Connection, workspace_id: str, endpoint_id: str) -> bool:
    return conn.execute("DELETE FROM webhook_endpoints WHERE workspace_id = %s AND endpoint_id = %s",
                        (workspace_id, endpoint_id)).rowcount == 1


def enable(conn: Connection, workspace_id: str, endpoint_id: str) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "UPDATE webhook_endpoints SET status = 'active', disabled_reason = NULL, disabled_at = NULL,"
            f" consecutive_failures = 0 WHERE workspace_id = %s AND endpoint_id = %s RETURNING {_VIEW}",
            (workspace_id, endpoint_id)).fetchone()


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    status_code: int | None
    error: str | None
    gone: bool = False  # 410 or a URL that can never be called: stop at once


def send(http: httpx.Client, endpoint: Endpoint, secrets: list[str], msg_id: str, timestamp: int, body: bytes,
         allowed_networks: tuple[str, ...] | list[str] = ()) -> Outcome:
    """One signed POST; never raises for what the receiver or the network did."""
    reason = refusal(endpoint.url, allowed_networks)
    if reason is not None:
        return Outcome(False, None, f"url refused: {reason}", gone=True)
    try:
        response = http.post(endpoint.url, content=body, headers=signed_headers(secrets, msg_id, timestamp, body),
                             follow_redirects=False)
    except DestinationRefused as refused:
        return Outcome(False, None, f"url refused: {refused.detail}", gone=True)
    except httpx.TimeoutException as error:
        return Outcome(False, None, f"timeout: {type(error).__name__}")
    except httpx.HTTPError as error:
        return Outcome(False, None, f"{type(error).__name__}: {error}")
    if 200 <= response.status_code < 300:
        return Outcome(True, response.status_code, None)
    if response.status_code == 410:
        return Outcome(False, 410, "HTTP 410 Gone: the receiver asks not to be called again", gone=True)
    return Outcome(False, response.status_code, f"HTTP {response.status_code}")
