"""The command inbox: a command the gateway answered 202 for is in PostgreSQL first.

The memory-only broker can lose the commands topic between the 202 and the handler. So the
gateway records the command here and acknowledges only then; the inbox relay produces it to
the commands topic; the handler marks it decided. When the commands topic turns out new or
empty, every undecided command is relayed again (a decided one repeated would be harmless
too: command ids are idempotency keys).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

import psycopg
from kafka import KafkaProducer
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from herald.redaction import carries_secret
from herald.runtime import metrics
from herald.messaging.consumer import produce_commands
from herald.messaging.relay import Wakeups
from schemas.commands import CommandEnvelope

log = logging.getLogger(__name__)

CHANNEL = "command_inbox"  # accept() notifies it; the inbox relay listens

DDL = """
CREATE TABLE IF NOT EXISTS command_inbox (
    id           bigserial   PRIMARY KEY,
    workspace_id text        NOT NULL,
    command_id   text        NOT NULL,
    envelope     jsonb       NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    relayed_at   timestamptz,
    decided_at   timestamptz,
    UNIQUE (workspace_id, command_id)
);
CREATE INDEX IF NOT EXISTS command_inbox_unrelayed ON command_inbox (id) WHERE relayed_at IS NULL;
"""


def scrub_secrets(url: str) -> int:
    """Remove the tokens an older version kept here in clear (it accepted a connect_social_account
    on the generic inlet); run once, at the first start of this version. Returns the rows scrubbed."""
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(
            "UPDATE command_inbox SET envelope = envelope #- '{payload,access_token}'"
            " WHERE envelope->'payload' ? 'access_token'"
        ).rowcount


def accept(pool: ConnectionPool, command: CommandEnvelope) -> None:
    """Durably keep the command; a resubmitted command id is kept once. A command carrying a
    secret is refused (ValueError): it would be kept, and produced, in clear."""
    with pool.connection() as conn:
        keep(conn, command)


def keep(conn: psycopg.Connection, command: CommandEnvelope) -> None:
    """``accept`` inside the caller's transaction: a processor records its own effect and the
    command that reports it together (a transactional outbox), so neither is kept without the other."""
    if carries_secret(command.payload):
        raise ValueError(f"command {command.command_id} carries a secret; it is not kept in the inbox")
    conn.execute(
        "INSERT INTO command_inbox (workspace_id, command_id, envelope) VALUES (%s, %s, %s)"
        " ON CONFLICT (workspace_id, command_id) DO NOTHING",
        (command.workspace_id, command.command_id, Jsonb(command.model_dump(mode="json"))),
    )
    conn.execute(f"NOTIFY {CHANNEL}")  # delivered at commit


def mark_decided(pool: ConnectionPool, commands: Iterable[CommandEnvelope]) -> None:
    keys = [(c.workspace_id, c.command_id) for c in commands]
    if not keys:
        return
    with pool.connection() as conn, conn.cursor() as cur:
        cur.executemany(
            "UPDATE command_inbox SET decided_at = now() WHERE workspace_id = %s AND command_id = %s"
            " AND decided_at IS NULL",
            keys,
        )


class InboxRelay:
    def __init__(self, *, pool: ConnectionPool, producer: KafkaProducer, topic: str, batch_size: int = 500,
                 poll_interval_s: float = 0.2) -> None:
        self.pool, self.producer, self.topic = pool, producer, topic
        self.batch_size, self.poll_interval_s = batch_size, poll_interval_s

    def resume(self, *, topic_is_new: bool) -> None:
        if topic_is_new:
            with self.pool.connection() as conn:
                requeued = conn.execute(
                    "UPDATE command_inbox SET relayed_at = NULL WHERE decided_at IS NULL AND relayed_at IS NOT NULL"
                ).rowcount
            if requeued:
                log.warning("inbox: commands topic is new; relaying %s undecided command(s) again", requeued)

    def relay_once(self) -> int:
        with self.pool.connection() as conn, conn.transaction():
            rows = conn.execute(
                "SELECT id, envelope FROM command_inbox WHERE relayed_at IS NULL ORDER BY id LIMIT %s"
                " FOR UPDATE SKIP LOCKED",
                (self.batch_size,),
            ).fetchall()
            if not rows:
                return 0
            produce_commands(self.producer, self.topic, [CommandEnvelope.model_validate(e) for _, e in rows])
            conn.execute("UPDATE command_inbox SET relayed_at = now() WHERE id = ANY(%s)", ([r[0] for r in rows],))
        return len(rows)

    def run(self, stop: threading.Event) -> None:
        """Relays at once when a command is accepted (NOTIFY), else every poll interval."""
        wakeups = Wakeups(self.pool.conninfo, CHANNEL)
        try:
            while not stop.is_set():
                try:
                    sent = self.relay_once()
                    metrics.beat("inbox-relay")
                    if sent == self.batch_size:
                        continue
                except Exception:  # broker or database away: the rows stay unrelayed; retry
                    metrics.FAILURES.labels("inbox-relay").inc()
                    log.exception("inbox relay: batch failed; retrying")
                    stop.wait(1.0)
                    continue
                wakeups.wait_at_most(stop, self.poll_interval_s)
        finally:
            wakeups.close()
