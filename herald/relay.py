"""The outbox relay: the event store's notification log, in order, onto the events topic.

The event store is the source of truth and Kafka the transport: the relay keeps its
position in PostgreSQL, advances it only after the broker acknowledged a batch, and starts
again from position zero when the events topic is new (a fresh or emptied broker), so the
topic can always be rebuilt. Consumers skip what they already applied by global position.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any, Callable

from eventsourcing.persistence import Notification
from kafka import KafkaProducer
from psycopg_pool import ConnectionPool

from domain.application import HeraldApplication
from herald import metrics
from domain.base import derived_id
from schemas.events import CloudEvent, kafka_headers

log = logging.getLogger(__name__)

DDL = """
CREATE TABLE IF NOT EXISTS relay_positions (
    relay      text   PRIMARY KEY,
    position   bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
"""


def cloud_event_attributes(app: HeraldApplication, notification: Notification) -> dict[str, Any]:
    """The CloudEvent of a stored event as plain JSON-ready attributes (the relay's hot path:
    no event objects, no model validation; ``to_cloud_event`` validates the same dict)."""
    stored = app.mapper.transcoder.decode(notification.state)
    event_type = stored["type"]
    aggregate_type = event_type.split(".")[1]  # herald.<aggregate>.<event>.v<n>
    aggregate_id = str(notification.originator_id)
    return {
        "specversion": "1.0",
        "id": derived_id("event", aggregate_id, notification.originator_version),
        "source": f"/herald/{aggregate_type}",
        "type": event_type,
        "subject": aggregate_id,
        "time": stored["timestamp"].isoformat(),
        "datacontenttype": "application/json",
        "data": stored["data"],
        "workspaceid": stored["workspace_id"],
        "aggregateid": aggregate_id,
        "aggregatetype": aggregate_type,
        "aggregateversion": notification.originator_version,
        "position": notification.id,
        "causationid": stored["causation_id"],
        "correlationid": stored["correlation_id"],
    }


def to_cloud_event(app: HeraldApplication, notification: Notification) -> CloudEvent:
    return CloudEvent.model_validate(cloud_event_attributes(app, notification))


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
            attributes = cloud_event_attributes(self.app, notification)
            futures.append(
                self.producer.send(
                    self.topic,
                    key=attributes["workspaceid"].encode(),
                    value=json.dumps(attributes, separators=(",", ":")).encode(),
                    headers=kafka_headers(attributes),
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
