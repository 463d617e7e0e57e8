"""The credit clock on a Ticker: claim due items, send their commands, commit."""

from __future__ import annotations

from datetime import UTC, datetime

from kafka import KafkaProducer
from psycopg_pool import ConnectionPool

from herald.messaging.consumer import produce_commands
from herald.runtime.ticker import Ticker
from processors.credit_clock.clock import due_commands


def clock_once(pool: ConnectionPool, producer: KafkaProducer, commands_topic: str, *, limit: int,
               redeliver_after_s: float) -> int:
    # Produce before commit: a crash in between sends the same command ids again later.
    with pool.connection() as conn, conn.transaction():
        commands = due_commands(conn, datetime.now(UTC), limit, redeliver_after_s)
        return produce_commands(producer, commands_topic, commands)


def clock_ticker(pool: ConnectionPool, producer: KafkaProducer, commands_topic: str, *, interval_s: float,
                 limit: int, redeliver_after_s: float, name: str = "credit-clock") -> Ticker:
    """A tick sends at most ``limit`` commands; a full one is followed by another at once."""
    return Ticker(
        name, interval_s,
        lambda: clock_once(pool, producer, commands_topic, limit=limit, redeliver_after_s=redeliver_after_s),
        full=limit,
    )
