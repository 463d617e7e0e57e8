"""The dispatcher on a Ticker: claim due destinations, send their start commands, commit."""

from __future__ import annotations

from datetime import UTC, datetime

from kafka import KafkaProducer
from psycopg_pool import ConnectionPool

from herald.messaging.consumer import produce_commands
from herald.runtime.ticker import Ticker
from processors.publishing.dispatcher import due_attempts


def dispatch_once(pool: ConnectionPool, producer: KafkaProducer, commands_topic: str, *, limit: int,
                  redeliver_after_s: float, lead_s: float = 0.0) -> int:
    # Produce before commit: a crash in between re-sends the same command ids later.
    with pool.connection() as conn, conn.transaction():
        commands = due_attempts(conn, datetime.now(UTC), limit, redeliver_after_s, lead_s)
        return produce_commands(producer, commands_topic, commands)


def dispatch_ticker(pool: ConnectionPool, producer: KafkaProducer, commands_topic: str, *, interval_s: float,
                    limit: int, redeliver_after_s: float, lead_s: float = 0.0, name: str = "dispatcher") -> Ticker:
    """A tick sends at most ``limit`` starts; a full one is followed by another at once."""
    return Ticker(
        name, interval_s,
        lambda: dispatch_once(pool, producer, commands_topic, limit=limit, redeliver_after_s=redeliver_after_s,
                              lead_s=lead_s),
        full=limit,
    )
