"""The outbox relay: the event store's notification log, in order, onto the events topic.

The event store is the source of truth and Kafka the transport: the relay keeps its
position in PostgreSQL, advances it only after the broker acknowledged a batch, and starts
again from position zero when the events topic is new (a fresh or emptied broker), so the
topic can always be rebuilt. Consumers skip what they already applied by global position.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable
from uuid import UUID

from eventsourcing.persistence import Notification
from kafka import KafkaProducer
from psycopg_pool import ConnectionPool

from domain.application import HeraldApplication
from herald import metrics
from domain.base import derived_id
from schemas.events import CloudEvent

log = logging.getLogger(__name__)

DDL = """
CREATE TABLE IF NOT EXISTS relay_positions (
    relay      text   PRIMARY KEY,
    position   bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
"""


def to_cloud_event(app: HeraldApplication, notification: Notification) -> CloudEvent:
    event = app.mapper.to_domain_event(notification)
    aggregate_type = event.type.split(".")[1]  # herald.<aggregate>.<event>.v<n>
    aggregate_id = str(UUID(str(notification.originator_id)))
    return CloudEvent(
        id=derived_id("event", aggregate_id, notification.originator_version),
        source=f"/herald/{aggregate_type}",
        type=event.type,
        subject=aggregate_id,
        time=event.timestamp,
        data=event.data,
        workspaceid=event.workspace_id,
        aggregateid=aggregate_id,
        aggregatetype=aggregate_type,
        aggregateversion=notification.originator_version,
        position=notification.id,
        causationid=event.causation_id,
        correlationid=event.correlation_id,
    )


class Relay:
    def __init__(
        self,
        *,
        app: HeraldApplication,
        pool: ConnectionPool,
        producer: KafkaProducer,
        topic: str,
        name: str = "events",
        batch_size: int = 500,
        poll_interval_s: float = 0.2,
        after_outage: Callable[[], None] = lambda: None,
    ) -> None:
        self.app, self.pool, self.producer, self.topic, self.name = app, pool, producer, topic, name
        self.after_outage = after_outage  # e.g. recreate topics and republish what a fresh broker lost
        self.batch_size, self.poll_interval_s = batch_size, poll_interval_s

    def position(self) -> int:
        with self.pool.connection() as conn:
            row = conn.execute("SELECT position FROM relay_positions WHERE relay = %s", (self.name,)).fetchone()
        return row[0] if row else 0

    def set_position(self, position: int) -> None:
        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO relay_positions (relay, position) VALUES (%s, %s) ON CONFLICT (relay)"
                " DO UPDATE SET position = EXCLUDED.position, updated_at = now()",
                (self.name, position),
            )

    def resume(self, *, topic_is_new: bool, earliest_in_topic: Callable[[], int | None]) -> None:
        """Start from the stored position, unless the topic lost what was published: it is new,
        empty, or its earliest event is later than the store's first (then from zero). The
        events topic must therefore keep everything (retention.ms=-1 on Apache Kafka)."""
        position = self.position()
        if not position:
            return
        first = self.app.recorder.select_notifications(start=None, limit=1)
        earliest = None if topic_is_new else earliest_in_topic()
        if first and (earliest is None or earliest > first[0].id):
            log.warning("relay %s: events topic lost history (earliest %s); republishing from the start",
                        self.name, earliest)
            self.set_position(0)

    def relay_once(self) -> int:
        """Publish the next batch; returns how many events went out."""
        after = self.position()
        notifications = self.app.recorder.select_notifications(
            start=after, limit=self.batch_size, inclusive_of_start=False
        )  # ids can have gaps (rolled-back inserts); order is what matters
        if not notifications:
            return 0
        futures = []
        for notification in notifications:
            event = to_cloud_event(self.app, notification)
            futures.append(
                self.producer.send(
                    self.topic,
                    key=event.workspaceid.encode(),
                    value=event.model_dump_json().encode(),
                    headers=event.kafka_headers(),
                )
            )
        self.producer.flush()
        for future in futures:
            future.get(timeout=30)
        self.set_position(notifications[-1].id)
        metrics.PRODUCED.labels(self.topic).inc(len(notifications))
        return len(notifications)

    def run(self, stop: threading.Event) -> None:
        outage = False
        while not stop.is_set():
            try:
                if outage:
                    self.after_outage()
                    outage = False
                with metrics.BATCH_SECONDS.labels("relay").time():
                    sent = self.relay_once()
                metrics.beat("relay")
                if sent == self.batch_size:
                    continue
            except Exception:  # noqa: BLE001 - broker or database away: wait and resume from the stored position
                outage = True
                metrics.FAILURES.labels("relay").inc()
                log.exception("relay %s: batch failed; retrying from the stored position", self.name)
                stop.wait(1.0)
                continue
            stop.wait(self.poll_interval_s)
