"""The outbox relay: the event store's notification log, in order, onto the events topic.

The event store is the source of truth and Kafka the transport: the relay keeps its
position in PostgreSQL, advances it only after the broker acknowledged a batch, and starts
again from position zero when the events topic is new (a fresh or emptied broker), so the
topic can always be rebuilt. Consumers skip what they already applied by global position.

A broker can also come back empty while the relay runs. Consumers skip an event at or below a
position they applied in its partition, so nothing newer may reach a fresh topic before the
history does: the relay checks the cluster id before each batch (and while a batch waits), its
sends cannot create topics, and on a change it abandons its unacknowledged sends, recreates the
topics and republishes from zero.

It wakes on the event store's NOTIFY (LISTEN on its own connection) and polls every
``poll_interval_s`` as a watchdog, so a lost notification or a broken LISTEN only delays.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
from eventsourcing.persistence import Notification
from kafka import KafkaProducer
from kafka.errors import KafkaTimeoutError
from psycopg import sql
from psycopg_pool import ConnectionPool

from domain.application import HeraldApplication
from domain.base import derived_id
from herald.runtime import metrics
from herald.messaging.kafka_io import ClusterWatch
from schemas.events import CloudEvent, kafka_headers, public_data

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
        "data": public_data(stored["data"]),  # events stored before the credentials store carry a sealed token
        "workspaceid": stored["workspace_id"],
        "aggregateid": aggregate_id,
        "aggregatetype": aggregate_type,
        "aggregateversion": notification.originator_version,
        "position": notification.id,
        "causationid": stored["causation_id"],
        "correlationid": stored["correlation_id"],
    }


def to_record(attributes: dict[str, Any]) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """Key, value and headers of the Kafka record carrying a CloudEvent (structured JSON value,
    the attributes also as ``ce_`` headers)."""
    return (attributes["workspaceid"].encode(), json.dumps(attributes, separators=(",", ":")).encode(),
            kafka_headers(attributes))


def to_cloud_event(app: HeraldApplication, notification: Notification) -> CloudEvent:
    return CloudEvent.model_validate(cloud_event_attributes(app, notification))


class Wakeups:
    """LISTEN on ``channel`` on a connection of its own. ``wait`` returns True on a NOTIFY, and
    right after (re)connecting, since what was notified while not listening is lost; False after
    the timeout. A broken connection is dropped and made again at the next wait."""

    def __init__(self, conninfo: str, channel: str) -> None:
        self.conninfo, self.channel = conninfo, channel
        self._conn: psycopg.Connection | None = None

    def wait(self, stop: threading.Event, timeout_s: float) -> bool:
        try:
            if self._conn is None:
                self._conn = psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5)
                self._conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                return True
            if not any(True for _ in self._conn.notifies(timeout=timeout_s, stop_after=1)):
                return False
            for _ in self._conn.notifies(timeout=0):  # a burst of inserts needs one look
                pass
            return True
        except psycopg.Error as e:
            log.warning("LISTEN %s: %s; polling until it is back", self.channel, e)
            self.close()
            stop.wait(timeout_s)
            return False

    def wait_at_most(self, stop: threading.Event, interval_s: float) -> None:
        """Until a NOTIFY, ``interval_s`` (the polling watchdog) or ``stop``."""
        deadline = time.monotonic() + interval_s
        while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
            if self.wait(stop, min(left, 1.0)):
                return

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


class Relay:
    def __init__(
        self,
        *,
        app: HeraldApplication,
        pool: ConnectionPool,
        make_producer: Callable[[], KafkaProducer],
        topic: str,
        name: str = "events",
        batch_size: int = 500,
        poll_interval_s: float = 0.2,
        send_timeout_s: float = 30.0,
        after_outage: Callable[[], None] = lambda: None,
        cluster: ClusterWatch | None = None,
    ) -> None:
        """``make_producer`` makes the relay's own producer, one that cannot auto-create topics:
        after an outage the relay abandons it (with its unacknowledged sends) and makes another.
        ``cluster`` tells a broker that came back empty (a new cluster id); without it only failed
        batches are noticed."""
        self.app, self.pool, self.topic, self.name = app, pool, topic, name
        self.make_producer, self.cluster = make_producer, cluster
        self.after_outage = after_outage  # e.g. recreate topics and republish what a fresh broker lost
        self.batch_size, self.poll_interval_s, self.send_timeout_s = batch_size, poll_interval_s, send_timeout_s
        self._producer: KafkaProducer | None = None
        self._cluster_id: str | None = None

    @property
    def producer(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = self.make_producer()
        return self._producer

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
            key, value, headers = to_record(cloud_event_attributes(self.app, notification))
            futures.append(self.producer.send(self.topic, key=key, value=value, headers=headers))
        self._await(futures)
        self.set_position(notifications[-1].id)
        metrics.PRODUCED.labels(self.topic).inc(len(notifications))
        return len(notifications)

    def _await(self, futures: list) -> None:
        """Until the broker acknowledged every send; raises if one failed, if the broker was
        replaced meanwhile (the sends wait for a topic that only the relay will recreate), or
        after ``send_timeout_s``."""
        deadline = time.monotonic() + self.send_timeout_s
        while True:
            try:
                self.producer.flush(timeout=1.0)
                break
            except KafkaTimeoutError:
                if self._broker_replaced() or time.monotonic() > deadline:
                    raise
        for future in futures:
            future.get(timeout=0)

    def _broker_replaced(self) -> bool:
        if self.cluster is None:
            return False
        seen = self.cluster.cluster_id()
        if self._cluster_id is None:
            self._cluster_id = seen
        if seen == self._cluster_id:
            return False
        log.warning("relay %s: the broker is a new cluster (%s, was %s)", self.name, seen, self._cluster_id)
        return True

    def _recover(self) -> None:
        """After a failed batch or a replaced broker: abandon the unacknowledged sends (they must
        not reach a fresh topic ahead of the history), then recreate topics and republish what
        they lost (``after_outage``)."""
        seen = self.cluster.cluster_id() if self.cluster else None
        self._drop_producer()
        self.after_outage()
        self._cluster_id = seen  # a replacement after ``seen`` shows at the next check

    def _drop_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is None:
            return
        # kafka-python's close(timeout=0) flushes first and raises while sends are pending; force
        # closing its sender fails the pending sends instead of delivering them later.
        producer._sender.force_close()
        producer._sender.join(timeout=10)
        try:
            producer.close(timeout=0)
        except Exception:  # already failed and closing: nothing left to lose
            log.debug("relay %s: closing the abandoned producer", self.name, exc_info=True)

    def close(self) -> None:
        self._drop_producer()  # nothing is pending between batches
        if self.cluster is not None:
            self.cluster.close()

    def run(self, stop: threading.Event) -> None:
        wakeups = Wakeups(self.pool.conninfo, self.app.recorder.channel_name)
        outage = False
        try:
            while not stop.is_set():
                try:
                    if outage or self._broker_replaced():
                        self._recover()
                        outage = False
                    with metrics.BATCH_SECONDS.labels("relay").time():
                        sent = self.relay_once()
                    metrics.beat("relay")
                    if sent == self.batch_size:
                        continue
                except Exception:  # broker or database away: wait and resume from the stored position
                    outage = True
                    metrics.FAILURES.labels("relay").inc()
                    log.exception("relay %s: batch failed; retrying from the stored position", self.name)
                    stop.wait(1.0)
                    continue
                wakeups.wait_at_most(stop, self.poll_interval_s)
        finally:
            wakeups.close()
