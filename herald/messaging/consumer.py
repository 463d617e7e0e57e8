"""The events-topic consumer every processor and projection runs on.

Delivery is at least once; effects are exactly once. For each batch, in ONE PostgreSQL
transaction: the handler's effects and this consumer's position per partition (Kafka offset
and the event's global position). An event at or below the applied position is skipped, so
a redelivered or republished event has no second effect. Commands a handler emits are
produced (and flushed) before that transaction commits: a crash in between re-emits them
with the same command ids, which the domain treats as repeats.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.structs import OffsetAndMetadata
import psycopg
from psycopg import Connection
from psycopg_pool import ConnectionPool
from pydantic import ValidationError

from herald.messaging import kafka_io
from herald.runtime import metrics
from schemas.commands import CommandEnvelope
from schemas.events import CloudEvent

log = logging.getLogger(__name__)

EventHandler = Callable[[Connection, CloudEvent], Iterable[CommandEnvelope]]

DDL = """
CREATE TABLE IF NOT EXISTS consumer_positions (
    consumer        text    NOT NULL,
    topic           text    NOT NULL,
    partition       integer NOT NULL,
    kafka_offset    bigint  NOT NULL,
    global_position bigint  NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, topic, partition)
);
CREATE TABLE IF NOT EXISTS consumer_replays (
    consumer      text NOT NULL,
    dead_letter   text NOT NULL,
    applied_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, dead_letter)
);
"""


@dataclass
class Position:
    offset: int
    global_position: int


def load_positions(conn: Connection, consumer: str, topic: str) -> dict[int, Position]:
    rows = conn.execute(
        "SELECT partition, kafka_offset, global_position FROM consumer_positions WHERE consumer = %s AND topic = %s",
        (consumer, topic),
    ).fetchall()
    return {partition: Position(offset, position) for partition, offset, position in rows}


def save_positions(conn: Connection, consumer: str, topic: str, positions: dict[int, Position]) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO consumer_positions (consumer, topic, partition, kafka_offset, global_position)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (consumer, topic, partition) DO UPDATE"
            " SET kafka_offset = EXCLUDED.kafka_offset, global_position = EXCLUDED.global_position, updated_at = now()",
            [(consumer, topic, p, pos.offset, pos.global_position) for p, pos in positions.items()],
        )


def dead_letter(producer: KafkaProducer, dlq_topic: str, record: ConsumerRecord, consumer: str, cause: str) -> None:
    """Park a message that cannot be applied, with why and where it came from in headers."""
    headers = [
        ("herald_dlq_cause", cause[:2000].encode()),
        ("herald_dlq_consumer", consumer.encode()),
        ("herald_dlq_topic", record.topic.encode()),
        ("herald_dlq_partition", str(record.partition).encode()),
        ("herald_dlq_offset", str(record.offset).encode()),
    ]
    producer.send(dlq_topic, key=record.key, value=record.value, headers=headers).get(timeout=30)
    metrics.DEAD_LETTERS.labels(consumer).inc()
    log.warning("dead-lettered %s[%s]@%s for %s: %s", record.topic, record.partition, record.offset, consumer, cause)


def produce_commands(producer: KafkaProducer, topic: str, commands: Iterable[CommandEnvelope]) -> int:
    futures = [
        producer.send(topic, key=c.workspace_id.encode(), value=c.model_dump_json().encode()) for c in commands
    ]
    producer.flush()
    for future in futures:
        future.get(timeout=30)  # raises if the broker did not take it
    metrics.PRODUCED.labels(topic).inc(len(futures))
    return len(futures)


class HandlerFailed(Exception):
    """A handler raised while the batch ran without savepoints: run it again isolated."""


class ResumeFromStoredPositions(ConsumerRebalanceListener):
    """On assignment, seek each partition to the offset stored with the last effect, and leave
    in ``expected`` what must be found there; the runner checks the first record it polls.
    When there is no record at that offset at all (the topic was rebuilt shorter) the
    partition is read from the start instead: a seek there would wait for records forever.
    Stored positions have an ``offset``."""

    def __init__(self, name: str, consumer: KafkaConsumer, load: Callable[[], dict[int, Any]],
                 expected: dict[TopicPartition, Any]) -> None:
        self.name, self.consumer, self.load, self.expected = name, consumer, load, expected

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        for tp in revoked:
            self.expected.pop(tp, None)

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        stored = self.load()
        positions = {tp: stored[tp.partition] for tp in assigned if tp.partition in stored}
        bootstrap = self.consumer.config["bootstrap_servers"]
        there = kafka_io.records_at(bootstrap, {tp: p.offset for tp, p in positions.items()})
        for tp, position in positions.items():
            if tp in there:
                self.consumer.seek(tp, position.offset)
                self.expected[tp] = position
            else:
                log.warning("%s: %s has no record at offset %s; reading it from the start", self.name, tp, position.offset)
                self.consumer.seek_to_beginning(tp)


class EventConsumer:
    def __init__(
        self,
        *,
        name: str,
        topic: str,
        commands_topic: str,
        dlq_topic: str,
        consumer: KafkaConsumer,
        producer: KafkaProducer,
        pool: ConnectionPool,
        handler: EventHandler,
        poll_timeout_ms: int = 200,
        max_records: int = 500,
    ) -> None:
        self.name, self.topic, self.commands_topic, self.dlq_topic = name, topic, commands_topic, dlq_topic
        self.consumer, self.producer, self.pool, self.handler = consumer, producer, pool, handler
        self.poll_timeout_ms, self.max_records = poll_timeout_ms, max_records
        self.expected: dict[TopicPartition, Position] = {}  # checked on the first record polled after assignment
        consumer.subscribe([topic], listener=ResumeFromStoredPositions(name, consumer, self._stored, self.expected))

    def _stored(self) -> dict[int, Position]:
        with self.pool.connection() as conn:
            return load_positions(conn, self.name, self.topic)

    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                batch = self.consumer.poll(timeout_ms=self.poll_timeout_ms, max_records=self.max_records)
                if batch:
                    with metrics.BATCH_SECONDS.labels(self.name).time():
                        self.process(batch)
                metrics.observe_lag(self.name, self.consumer)
                metrics.beat(self.name)
        finally:
            self.consumer.close()  # leaves the group so partitions move at once

    def process(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        batch = self._drop_unverified(batch)
        metrics.CONSUMED.labels(self.name).inc(sum(len(r) for r in batch.values()))
        try:
            parsed = {tp: [(r, self._parse(r)) for r in records] for tp, records in batch.items()}
            try:
                self._apply(parsed, isolate=False)
            except HandlerFailed:
                self._apply(parsed, isolate=True)  # again, event by event, parking the ones that fail
        except Exception:
            metrics.FAILURES.labels(self.name).inc()
            for tp, records in batch.items():
                self.consumer.seek(tp, records[0].offset)  # re-read after the failure is fixed
            raise
        self.consumer.commit({tp: offset_after(records[-1]) for tp, records in batch.items()})

    def _apply(self, batch: dict[TopicPartition, list[tuple[ConsumerRecord, CloudEvent | None]]], *,
               isolate: bool) -> None:
        """Apply the batch in one transaction. Without ``isolate`` a failing handler aborts the
        whole batch (cheap: no savepoints, statements pipelined); with it, each event runs in a
        savepoint. Commands the handlers emit are produced once the effects are all in."""
        with self.pool.connection() as conn, conn.transaction():
            applied = load_positions(conn, self.name, self.topic)
            if isolate:
                emitted = self._apply_events(conn, batch, applied, isolate=True)
            else:
                try:
                    with conn.pipeline():  # statements go out without waiting for each reply
                        emitted = self._apply_events(conn, batch, applied, isolate=False)
                except psycopg.Error as error:  # may surface at any later statement or at the sync
                    if conn.broken:
                        raise
                    raise HandlerFailed from error
            if emitted:
                produce_commands(self.producer, self.commands_topic, emitted)

    def _apply_events(self, conn: Connection, batch: dict[TopicPartition, list[tuple[ConsumerRecord, CloudEvent | None]]],
                      applied: dict[int, Position], *, isolate: bool) -> list[CommandEnvelope]:
        moved: dict[int, Position] = {}
        emitted: list[CommandEnvelope] = []
        for tp, records in batch.items():
            for record, event in records:
                if event is None:
                    continue
                if self._is_replay_for_us(conn, record):
                    emitted.extend(self._handle(conn, record, event, isolate))
                    continue
                position = applied.get(tp.partition)
                if position and event.position <= position.global_position:
                    continue
                emitted.extend(self._handle(conn, record, event, isolate))
                metrics.APPLIED.labels(self.name).inc()
                applied[tp.partition] = moved[tp.partition] = Position(record.offset, event.position)
        if moved:
            save_positions(conn, self.name, self.topic, moved)
        return emitted

    def _is_replay_for_us(self, conn: Connection, record: ConsumerRecord) -> bool:
        """A dead letter this consumer parked, sent back once the cause was fixed: apply it once."""
        headers = dict(record.headers or [])
        if headers.get("herald_replay_for", b"").decode() != self.name:
            return False
        inserted = conn.execute(  # RETURNING: in pipeline mode a fetch waits for the reply, rowcount may not
            "INSERT INTO consumer_replays (consumer, dead_letter) VALUES (%s, %s) ON CONFLICT DO NOTHING RETURNING 1",
            (self.name, headers.get("herald_replayed_from", b"").decode()),
        ).fetchone()
        return inserted is not None

    def _parse(self, record: ConsumerRecord) -> CloudEvent | None:
        try:
            return CloudEvent.model_validate_json(record.value)
        except (ValueError, ValidationError) as error:
            dead_letter(self.producer, self.dlq_topic, record, self.name, f"unparseable event: {error}")
            return None

    def _handle(self, conn: Connection, record: ConsumerRecord, event: CloudEvent, isolate: bool) -> list[CommandEnvelope]:
        if not isolate:
            try:
                return list(self.handler(conn, event))
            except Exception as error:
                raise HandlerFailed from error
        try:
            with conn.transaction():  # a savepoint: a failing event is undone alone
                return list(self.handler(conn, event))
        except Exception as error:  # noqa: BLE001 - any handler failure parks the event, never stops the stream
            if conn.closed or conn.broken:
                raise
            dead_letter(self.producer, self.dlq_topic, record, self.name, f"{type(error).__name__}: {error}")
            return []

    def _drop_unverified(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> dict[TopicPartition, list[ConsumerRecord]]:
        for tp in list(batch):
            expected = self.expected.pop(tp, None)
            if expected is None:
                continue
            first = batch[tp][0]
            if first.offset == expected.offset and _global_position(first) == expected.global_position:
                continue
            log.warning("%s: %s was recreated; re-reading it from the start", self.name, tp)
            self.consumer.seek_to_beginning(tp)
            del batch[tp]
        return batch


def _global_position(record: ConsumerRecord) -> int | None:
    for name, value in record.headers or []:
        if name == "ce_position":
            return int(value)
    return None


def offset_after(record: ConsumerRecord) -> OffsetAndMetadata:
    return OffsetAndMetadata(record.offset + 1, "", -1)
