"""Republishing a range of the event store to the events topic, for a consumer that lost its data.

The records are exactly the relay's (same key, value and header; the event id is derived from
aggregate and version), so Herald's own consumers skip what they already applied by position.
Progress is kept per range in ``replay_progress`` after each acknowledged page: a crashed replay
run again with the same range goes on after the last page the broker acknowledged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from kafka import KafkaProducer

from domain.application import HeraldApplication
from herald.messaging.relay import cloud_event_attributes, to_record
from herald.replay import store

DDL = """
CREATE TABLE IF NOT EXISTS replay_progress (
    name       text        PRIMARY KEY,
    position   bigint      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
"""


@dataclass
class ReplayProgress:
    sent: int = 0
    position: int = 0
    first: int = 0
    last: int = 0


def replay(app: HeraldApplication, database_url: str, producer: KafkaProducer, topic: str, *, start: int = 1,
           stop: int | None = None, page: int = 5_000,
           on_progress: Callable[[ReplayProgress], None] = lambda p: None) -> ReplayProgress:
    """Publish the events with ``start <= position <= stop`` (``stop`` None: the head now), in order."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(DDL)
        stop = store.head(conn, app) if stop is None else stop
        name = f"{start}-{stop}"
        row = conn.execute("SELECT position FROM replay_progress WHERE name = %s", (name,)).fetchone()
        after = row[0] if row else start - 1
        progress = ReplayProgress(position=after, first=start, last=stop)
        for notifications in store.notifications(conn, app, after, stop, page):
            futures = []
            for notification in notifications:
                key, value, headers = to_record(cloud_event_attributes(app, notification))
                futures.append(producer.send(topic, key=key, value=value, headers=headers))
            producer.flush()
            for future in futures:
                future.get(timeout=30)  # raises if the broker did not take it: the page is sent again
            progress.position = notifications[-1].id
            progress.sent += len(notifications)
            conn.execute("INSERT INTO replay_progress (name, position) VALUES (%s, %s) ON CONFLICT (name)"
                         " DO UPDATE SET position = EXCLUDED.position, updated_at = now()", (name, progress.position))
            on_progress(progress)
        conn.execute("DELETE FROM replay_progress WHERE name = %s", (name,))
    return progress
