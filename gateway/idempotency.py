"""An Idempotency-Key stands for one request body.

The domain records the first outcome of a command id, and a synchronous request's command id is
derived from its Idempotency-Key; so a retry answers with the first outcome. A key sent again
with a *different* body is a client bug, not a retry: answering with the first outcome would
tell the client its second request happened. Like Stripe, which answers a reused key with
different parameters with an error (https://docs.stripe.com/changelog/2015-09-03/reuse-idempotency-tokens-alter-error),
the gateway keeps a digest of the first body per command id and answers a mismatch with 422.
"""

from __future__ import annotations

import hashlib
import json

from psycopg_pool import ConnectionPool

from schemas import commands as cmd

DDL = """
CREATE TABLE IF NOT EXISTS gateway_idempotency (
    command_id   text        PRIMARY KEY,
    body_sha256  text        NOT NULL,
    first_seen   timestamptz NOT NULL DEFAULT now()
);
"""


def body_digest(payload: cmd.Payload) -> str:
    """The digest of what a request asks for: its command type and canonical payload."""
    canonical = json.dumps(
        {"type": cmd.COMMAND_TYPE_OF[type(payload)], "payload": payload.model_dump(mode="json")},
        sort_keys=True, separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def same_body(pool: ConnectionPool, command_id: str, digest: str) -> bool:
    """Records ``digest`` as the body of ``command_id`` unless one was recorded before; True when
    this body is the first one (or equal to it)."""
    with pool.connection() as conn:
        conn.execute(
            "INSERT INTO gateway_idempotency (command_id, body_sha256) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (command_id, digest),
        )
        row = conn.execute("SELECT body_sha256 FROM gateway_idempotency WHERE command_id = %s",
                           (command_id,)).fetchone()
    return row is not None and row[0] == digest
