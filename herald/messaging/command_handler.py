"""The handler role: commands topic → domain decisions → event store.

Each batch's decisions are saved in one transaction with the handler's position in every
partition it read (``command_positions``), and on assignment the handler resumes from there,
not from Kafka's committed offsets (still committed, for tooling). A command seen again all
the same (a topic rebuilt after broker loss, a command re-relayed from the inbox) is a repeat
of a known command id, which the domain answers from its record.

Failures follow the consumers' one policy (``herald.messaging.consumer.FailurePolicy``): a
database or broker failure re-reads the batch after a growing delay, without end; a batch
whose deciding raises (a rejection is a decision, not a failure) is retried, then decided one
command at a time, each alone in a transaction with the position just past it; a command that
still raises is dead-lettered with its cause, and the position moves past it all the same.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Callable

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from psycopg_pool import ConnectionPool
from pydantic import ValidationError

from domain.application import Decision, HeraldApplication
from herald.runtime import metrics
from herald.messaging.consumer import (
    FailurePolicy,
    ResumeFromStoredPositions,
    commit_offsets,
    dead_letter,
    describe,
    is_infrastructure,
    rewind,
)
from herald.storage.event_store import CommandPosition, CommandPositions, digest, load_command_positions
from schemas.commands import CommandEnvelope

log = logging.getLogger(__name__)

Parsed = dict[TopicPartition, list[tuple[ConsumerRecord, CommandEnvelope | None, str]]]


class CommandHandler:
    def __init__(
        self,
        *,
        app: HeraldApplication,
        consumer: KafkaConsumer,
        producer: KafkaProducer,
        topic: str,
        dlq_topic: str,
        poll_timeout_ms: int = 200,
        max_records: int = 500,
        on_decided: Callable[[list[CommandEnvelope]], None] = lambda commands: None,
        pool: ConnectionPool,
        name: str = "handler",
        failure_policy: FailurePolicy = FailurePolicy(),
    ) -> None:
        self.app, self.consumer, self.producer, self.dlq_topic = app, consumer, producer, dlq_topic
        self.topic, self.pool, self.name = topic, pool, name
        self.on_decided, self.failure_policy = on_decided, failure_policy
        self.poll_timeout_ms, self.max_records = poll_timeout_ms, max_records
        self.stopping = threading.Event()  # run()'s stop event: cuts the waits between retries short
        self.expected: dict[TopicPartition, CommandPosition] = {}  # checked on the first record polled
        consumer.subscribe([topic], listener=ResumeFromStoredPositions(name, consumer, self._stored, self.expected))

    def _stored(self) -> dict[int, CommandPosition]:
        with self.pool.connection() as conn:
            return load_command_positions(conn, self.name, self.topic)

    def run(self, stop: threading.Event) -> None:
        self.stopping = stop
        try:
            self.failure_policy.run(self.name, stop, self.poll_once)
        finally:
            self.consumer.close()

    def poll_once(self) -> None:
        batch = self.consumer.poll(timeout_ms=self.poll_timeout_ms, max_records=self.max_records)
        metrics.observe_lag(self.name, self.consumer)
        if batch:
            with metrics.BATCH_SECONDS.labels(self.name).time():
                self.process(batch)
        metrics.beat(self.name)

    def process(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        """Decide the batch under the failure policy, then commit the offsets. When it raises
        (database or broker away), its partitions were sought back to the first record not decided."""
        batch = self._drop_decided(batch)
        metrics.CONSUMED.labels(self.name).inc(sum(len(r) for r in batch.values()))
        if not batch:
            return
        parsed: Parsed = {tp: [(r, *self._parse(r)) for r in records] for tp, records in batch.items()}
        undecided = {tp: records[0].offset for tp, records in batch.items()}  # per partition: read again from
        try:
            self.failure_policy.apply(
                self.name,
                lambda: self._decide_batch(parsed),
                lambda: self._decide_alone(parsed, undecided),
                self.stopping.wait,
            )
        except Exception:
            rewind(self.consumer, undecided)
            raise
        commit_offsets(self.consumer, self.name, batch)

    def _decide_batch(self, parsed: Parsed) -> None:
        """All the batch's commands in one transaction with the position of every partition."""
        commands = [command for records in parsed.values() for _, command, _ in records if command is not None]
        positions = CommandPositions(self.name, self.topic, {
            tp.partition: CommandPosition(records[-1][0].offset, digest(records[-1][0].value))
            for tp, records in parsed.items()
        })
        self._log_rejections(commands, self.app.handle_batch(commands, checkpoint=positions))
        self._park_unparseable(parsed)  # after the save: a batch retried on a failure parks them once
        self.on_decided(commands)

    def _decide_alone(self, parsed: Parsed, undecided: dict[TopicPartition, int]) -> None:
        """Each command in a transaction of its own, with its partition's position just past it.
        One that raises is parked, and only the position is saved: the handler moves past it."""
        for tp, records in parsed.items():
            for record, command, problem in records:
                checkpoint = CommandPositions(self.name, self.topic, {
                    tp.partition: CommandPosition(record.offset, digest(record.value))})
                if command is None:
                    dead_letter(self.producer, self.dlq_topic, record, self.name, problem)
                    self.app.handle_batch([], checkpoint=checkpoint)
                else:
                    try:
                        decisions = self.app.handle_batch([command], checkpoint=checkpoint)
                    except Exception as error:  # noqa: BLE001 - a command that cannot be decided is parked
                        if is_infrastructure(error):
                            raise
                        dead_letter(self.producer, self.dlq_topic, record, self.name, describe(error))
                        self.app.handle_batch([], checkpoint=checkpoint)
                    else:
                        self._log_rejections([command], decisions)
                        self.on_decided([command])
                undecided[tp] = record.offset + 1

    def _park_unparseable(self, parsed: Parsed) -> None:
        for records in parsed.values():
            for record, command, problem in records:
                if command is None:
                    dead_letter(self.producer, self.dlq_topic, record, self.name, problem)

    @staticmethod
    def _log_rejections(commands: list[CommandEnvelope], decisions: list[Decision]) -> None:
        for command, decision in zip(commands, decisions):
            if not decision.accepted:
                log.info("command %s rejected: %s %s", command.command_id, decision.reason_code, decision.detail)

    def _drop_decided(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> dict[TopicPartition, list[ConsumerRecord]]:
        """After an assignment the first record of a partition must be the last one decided;
        if it is not, the topic was rebuilt, and it is read again from the start."""
        for tp in list(batch):
            expected = self.expected.pop(tp, None)
            if expected is None:
                continue
            first = batch[tp][0]
            if first.offset == expected.offset and digest(first.value) == expected.digest:
                batch[tp] = batch[tp][1:]
                if not batch[tp]:
                    del batch[tp]
                continue
            log.warning("%s: %s does not hold the last decided command; re-reading it from the start", self.name, tp)
            self.consumer.seek_to_beginning(tp)
            del batch[tp]
        return batch

    def _parse(self, record: ConsumerRecord) -> tuple[CommandEnvelope | None, str]:
        """The command, or None and why not (it is parked once the batch is decided)."""
        try:
            return CommandEnvelope.model_validate(json.loads(record.value)), ""
        except (ValueError, ValidationError) as error:
            return None, f"unparseable command: {error}"
