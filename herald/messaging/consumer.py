"""The events-topic consumer every processor and projection runs on.

Delivery is at least once; effects are exactly once. For each batch, in ONE PostgreSQL
transaction: the handler's effects and this consumer's position per partition (Kafka offset
and the event's global position). An event at or below the applied position is skipped, so
a redelivered or republished event has no second effect. Commands a handler emits are
produced (and flushed) before that transaction commits: a crash in between re-emits them
with the same command ids, which the domain treats as repeats.

Every consumer, the command handler included, follows one failure policy (``FailurePolicy``):
a database or broker failure is not the messages' fault, so the batch is read again after a
growing delay, without end; any other exception from applying a batch is retried a few times,
then the batch is applied message by message and a message that still fails is parked on the
dead-letter topic with its cause, and the consumer moves on.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable, TypeVar

import eventsourcing.persistence
from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata
import psycopg
from psycopg import Connection
from psycopg_pool import ConnectionPool
from pydantic import ValidationError

from herald.messaging import kafka_io
from herald.redaction import redact_text
from herald.runtime import metrics
from herald.runtime.ticker import Backoff
from schemas.commands import CommandEnvelope
from schemas.events import CloudEvent, position_of

log = logging.getLogger(__name__)

EventHandler = Callable[[Connection, CloudEvent], Iterable[CommandEnvelope]]
# Called in the batch's transaction after the handlers, with the events applied (not skipped, not parked).
BatchHook = Callable[[Connection, list[CloudEvent]], None]
T = TypeVar("T")

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
    cause = redact_text(cause) or ""  # an error may quote the message, secrets and all
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


# The failure policy -----------------------------------------------------------------------

# Not the messages' fault: the database or the broker is away, or a connection broke.
INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (
    psycopg.OperationalError,  # includes psycopg_pool.PoolTimeout, AdminShutdown, serialization failures
    psycopg.InterfaceError,
    eventsourcing.persistence.OperationalError,  # eventsourcing's wrappers of the same
    eventsourcing.persistence.InterfaceError,
    KafkaError,  # every kafka-python error, KafkaTimeoutError included
)


class InfrastructureFailure(Exception):
    """The connection a batch ran on broke (``conn.broken``): whatever raised, retry the batch."""


def is_infrastructure(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it) is a database or broker failure rather than a
    failure of the messages: then the batch is read again later, never dead-lettered."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, (InfrastructureFailure, *INFRASTRUCTURE_ERRORS)):
            return True
        seen.add(id(current))
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return False


def describe(error: BaseException) -> str:
    """The cause a dead letter carries (and the logs say): the exception's type and message, its
    secrets redacted (a validation error quotes its input, tokens and all)."""
    return redact_text(f"{type(error).__name__}: {error}") or ""


@dataclass(frozen=True)
class FailurePolicy:
    """One failure policy for every consumer (events consumers and the command handler).

    - Infrastructure failures (``is_infrastructure``): the consumer seeks back to what it has not
      applied and :meth:`run` waits a growing delay (``backoff_initial_s`` doubling up to
      ``backoff_max_s``) before reading it again, without end.
    - Any other exception from applying a batch: :meth:`apply` retries the batch up to
      ``retries`` times (waiting the same growing delays), then applies it message by message;
      a message that still fails is dead-lettered with its cause and the consumer moves on.

    Every failed try counts in ``herald_batch_failures_total``; dead letters in
    ``herald_dead_letters_total``.
    """

    retries: int = 3
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 10.0

    @classmethod
    def from_settings(cls, settings: Any) -> FailurePolicy:
        return cls(settings.consumer_retries, settings.consumer_backoff_initial_s, settings.consumer_backoff_max_s)

    def backoff(self) -> Backoff:
        return Backoff(self.backoff_initial_s, max(self.backoff_max_s, self.backoff_initial_s))

    def apply(self, name: str, whole: Callable[[], T], alone: Callable[[], T],
              wait: Callable[[float], object]) -> T:
        """``whole()`` applies the batch at once; ``alone()`` message by message, parking the ones
        that fail. Infrastructure failures propagate at once (the caller seeks back)."""
        backoff = self.backoff()
        for attempt in range(self.retries + 1):
            try:
                return whole()
            except Exception as error:
                if is_infrastructure(error):
                    raise
                metrics.FAILURES.labels(name).inc()
                if attempt == self.retries:
                    log.warning("%s: batch failed %d times (%s); applying it message by message",
                                name, attempt + 1, describe(error))
                    break
                delay = backoff.next()
                log.warning("%s: batch failed (%s); retry %d of %d in %.2fs",
                            name, describe(error), attempt + 1, self.retries, delay, exc_info=attempt == 0)
                wait(delay)
        return alone()

    def run(self, name: str, stop: threading.Event, iteration: Callable[[], None]) -> None:
        """Run ``iteration`` (poll and process one batch) until ``stop``. One that raised has
        sought back to what it did not apply; wait a growing delay and go on."""
        backoff = self.backoff()
        while not stop.is_set():
            try:
                iteration()
            except Exception as error:  # noqa: BLE001 - the batch is read again after the delay
                metrics.FAILURES.labels(name).inc()
                delay = backoff.next()
                if is_infrastructure(error):
                    log.warning("%s: database or broker failure (%s); reading the batch again in %.2fs",
                                name, describe(error), delay, exc_info=backoff.failures == 1)
                else:
                    log.exception("%s: batch failed outside its messages; reading it again in %.2fs", name, delay)
                stop.wait(delay)
            else:
                backoff.reset()


def rewind(consumer: KafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
    """Seek each partition still assigned back to the offset to read again."""
    assigned = consumer.assignment()
    for tp, offset in offsets.items():
        if tp in assigned:
            consumer.seek(tp, offset)


def commit_offsets(consumer: KafkaConsumer, name: str, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
    """Commit Kafka offsets after a batch, for tooling: positions in PostgreSQL are what a
    consumer resumes from, so a failed commit (a rebalance, the broker away) is only logged."""
    try:
        consumer.commit({tp: offset_after(records[-1]) for tp, records in batch.items()})
    except KafkaError as error:
        log.warning("%s: offset commit failed (%s); resuming relies on the stored positions", name, describe(error))


class HandlerFailed(Exception):
    """A handler raised while the batch ran without savepoints (its cause is what it raised)."""


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
        on_batch: BatchHook | None = None,
        failure_policy: FailurePolicy = FailurePolicy(),
    ) -> None:
        self.name, self.topic, self.commands_topic, self.dlq_topic = name, topic, commands_topic, dlq_topic
        self.consumer, self.producer, self.pool, self.handler = consumer, producer, pool, handler
        self.poll_timeout_ms, self.max_records = poll_timeout_ms, max_records
        self.on_batch, self.failure_policy = on_batch, failure_policy
        self.stopping = threading.Event()  # run()'s stop event: cuts the waits between retries short
        self.expected: dict[TopicPartition, Position] = {}  # checked on the first record polled after assignment
        consumer.subscribe([topic], listener=ResumeFromStoredPositions(name, consumer, self._stored, self.expected))

    def _stored(self) -> dict[int, Position]:
        with self.pool.connection() as conn:
            return load_positions(conn, self.name, self.topic)

    def run(self, stop: threading.Event) -> None:
        self.stopping = stop
        try:
            self.failure_policy.run(self.name, stop, self.poll_once)
        finally:
            self.consumer.close()  # leaves the group so partitions move at once

    def poll_once(self) -> None:
        batch = self.consumer.poll(timeout_ms=self.poll_timeout_ms, max_records=self.max_records)
        if batch:
            with metrics.BATCH_SECONDS.labels(self.name).time():
                self.process(batch)
        metrics.observe_lag(self.name, self.consumer)
        metrics.beat(self.name)

    def process(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        """Apply one polled batch under the failure policy, then commit its offsets. When it
        raises (database or broker away), the batch's partitions were sought back to its start."""
        batch = self._drop_unverified(batch)
        metrics.CONSUMED.labels(self.name).inc(sum(len(r) for r in batch.values()))
        if not batch:
            return
        try:
            parsed = {tp: [(r, *self._parse(r)) for r in records] for tp, records in batch.items()}
            self.failure_policy.apply(
                self.name,
                lambda: self._apply(parsed, isolate=False),
                lambda: self._apply(parsed, isolate=True),  # event by event, parking the ones that fail
                self.stopping.wait,
            )
        except Exception:
            rewind(self.consumer, {tp: records[0].offset for tp, records in batch.items()})  # re-read it later
            raise
        commit_offsets(self.consumer, self.name, batch)

    def _apply(self, batch: dict[TopicPartition, list[tuple[ConsumerRecord, CloudEvent | None, str]]], *,
               isolate: bool) -> None:
        """Apply the batch in one transaction. Without ``isolate`` a failing handler aborts the
        whole batch (cheap: no savepoints, statements pipelined); with it, each event runs in a
        savepoint and one that fails is parked. Commands the handlers emit are produced, and
        unparseable records parked, once the effects are all in, before the commit."""
        with self.pool.connection() as conn:
            try:
                with conn.transaction():
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
                            raise HandlerFailed(describe(error)) from error
                    for records in batch.values():
                        for record, event, problem in records:
                            if event is None:
                                dead_letter(self.producer, self.dlq_topic, record, self.name, problem)
                    if emitted:
                        produce_commands(self.producer, self.commands_topic, emitted)
            except Exception as error:
                if conn.broken and not is_infrastructure(error):
                    raise InfrastructureFailure(describe(error)) from error
                raise

    def _apply_events(self, conn: Connection,
                      batch: dict[TopicPartition, list[tuple[ConsumerRecord, CloudEvent | None, str]]],
                      applied: dict[int, Position], *, isolate: bool) -> list[CommandEnvelope]:
        moved: dict[int, Position] = {}
        emitted: list[CommandEnvelope] = []
        done: list[CloudEvent] = []
        for tp, records in batch.items():
            for record, event, _ in records:
                if event is None:
                    continue
                if self._is_replay_for_us(conn, record):
                    if self._handle(conn, record, event, isolate, emitted):
                        done.append(event)
                    continue
                position = applied.get(tp.partition)
                if position and event.position <= position.global_position:
                    continue
                if self._handle(conn, record, event, isolate, emitted):  # parked or not, the position moves
                    metrics.APPLIED.labels(self.name).inc()
                    done.append(event)
                applied[tp.partition] = moved[tp.partition] = Position(record.offset, event.position)
        if done and self.on_batch is not None:
            self.on_batch(conn, done)
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

    def _parse(self, record: ConsumerRecord) -> tuple[CloudEvent | None, str]:
        """The event, or None and why not (parked with the batch, so a retried batch parks it once)."""
        try:
            return CloudEvent.model_validate_json(record.value), ""
        except (ValueError, ValidationError) as error:
            return None, f"unparseable event: {error}"

    def _handle(self, conn: Connection, record: ConsumerRecord, event: CloudEvent, isolate: bool,
                emitted: list[CommandEnvelope]) -> bool:
        """Run the handler on one event, adding what it emits to ``emitted``; False when isolated
        and the event was parked instead."""
        if not isolate:
            try:
                emitted.extend(self.handler(conn, event))
                return True
            except Exception as error:
                raise HandlerFailed(describe(error)) from error
        try:
            with conn.transaction():  # a savepoint: a failing event is undone alone
                commands = list(self.handler(conn, event))
        except Exception as error:  # noqa: BLE001 - a failing event is parked, never stops the stream
            if conn.closed or conn.broken:
                raise InfrastructureFailure(describe(error)) from error
            if is_infrastructure(error):
                raise
            dead_letter(self.producer, self.dlq_topic, record, self.name, describe(error))
            return False
        emitted.extend(commands)
        return True

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
    return position_of(record.value)


def offset_after(record: ConsumerRecord) -> OffsetAndMetadata:
    return OffsetAndMetadata(record.offset + 1, "", -1)
