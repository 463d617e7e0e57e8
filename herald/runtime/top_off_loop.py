"""The daily top-off on a Ticker: one pass over every planning workspace, a page at a time."""

from __future__ import annotations

from datetime import UTC, datetime

from kafka import KafkaProducer
from psycopg_pool import ConnectionPool

from herald.messaging.consumer import produce_commands
from herald.runtime.ticker import Ticker
from processors.planning.top_off import due_commands


def top_off_once(pool: ConnectionPool, producer: KafkaProducer, commands_topic: str, *, page: int) -> int:
    """Send today's top-off to every workspace that plans; the same ids all day (decided once)."""
    sent, after, now = 0, "", datetime.now(UTC)
    while True:
        with pool.connection() as conn:
            commands = due_commands(conn, now, page, after)
        if not commands:
            return sent
        sent += produce_commands(producer, commands_topic, commands)
        after = commands[-1].workspace_id


def top_off_ticker(pool: ConnectionPool, producer: KafkaProducer, commands_topic: str, *, interval_s: float,
                   page: int, name: str = "slot-top-off") -> Ticker:
    return Ticker(name, interval_s, lambda: top_off_once(pool, producer, commands_topic, page=page))
