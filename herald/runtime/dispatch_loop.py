"""Runs the dispatcher on a timer: claim due destinations, send their start commands, commit."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from kafka import KafkaProducer
from psycopg_pool import ConnectionPool

from herald.runtime import metrics
from herald.messaging.consumer import produce_commands
from processors.publishing.dispatcher import due_attempts

log = logging.getLogger(__name__)


def dispatch_once(pool: ConnectionPool, producer: KafkaProducer, commands_topic: str, *, limit: int,
                  redeliver_after_s: float) -> int:
    # Produce before commit: a crash in between re-sends the same command ids later.
    with pool.connection() as conn, conn.transaction():
        commands = due_attempts(conn, datetime.now(UTC), limit, redeliver_after_s)
        return produce_commands(producer, commands_topic, commands)


def run_dispatcher(pool: ConnectionPool, producer: KafkaProducer, commands_topic: str, stop: threading.Event, *,
                   interval_s: float, limit: int, redeliver_after_s: float) -> None:
    while not stop.is_set():
        try:
            sent = dispatch_once(pool, producer, commands_topic, limit=limit, redeliver_after_s=redeliver_after_s)
            metrics.beat("dispatcher")
        except Exception:  # noqa: BLE001 - database or broker away: try again next tick
            metrics.FAILURES.labels("dispatcher").inc()
            log.exception("dispatcher: tick failed")
            sent = 0
        if sent < limit:
            stop.wait(interval_s)
