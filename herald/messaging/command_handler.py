"""The handler role: commands topic → domain decisions → event store.

Each batch's decisions are saved in one transaction with the handler's position in every
partition it read (``command_positions``), and on assignment the handler resumes from there,
not from Kafka's committed offsets (still committed, for tooling). A command seen again all
the same (a topic rebuilt after broker loss, a command re-relayed from the inbox) is a repeat
of a known command id, which the domain answers from its record.
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

from domain.application import HeraldApplication
from herald.runtime import metrics
from herald.messaging.consumer import ResumeFromStoredPositions, dead_letter, offset_after
from herald.storage.event_store import CommandPosition, CommandPositions, digest, load_command_positions
from schemas.commands import CommandEnvelope

log = logging.getLogger(__name__)


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
    ) -> None:
        self.app, self.consumer, self.producer, self.dlq_topic = app, consumer, producer, dlq_topic
        self.topic, self.pool, self.name = topic, pool, name
        self.on_decided = on_decided
        self.poll_timeout_ms, self.max_records = poll_timeout_ms, max_records
        self.expected: dict[TopicPartition, CommandPosition] = {}  # checked on the first record polled
        consumer.subscribe([topic], listener=ResumeFromStoredPositions(name, consumer, self._stored, self.expected))

    def _stored(self) -> dict[int, CommandPosition]:
        with self.pool.connection() as conn:
            return load_command_positions(conn, self.name, self.topic)

    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                batch = self.consumer.poll(timeout_ms=self.poll_timeout_ms, max_records=self.max_records)
                metrics.observe_lag("handler", self.consumer)
                metrics.beat("handler")
                if not batch:
                    continue
                try:
                    with metrics.BATCH_SECONDS.labels("handler").time():
                        self.process(batch)
                except Exception:  # noqa: BLE001 - database away: re-read the batch once it is back
                    metrics.FAILURES.labels("handler").inc()
                    log.exception("handler: batch failed; retrying")
                    for tp, records in batch.items():
                        self.consumer.seek(tp, records[0].offset)
                    stop.wait(1.0)
        finally:
            self.consumer.close()

    def process(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        """Decide the whole batch in one transaction with the positions, then commit the offsets."""
        batch = self._drop_decided(batch)
        metrics.CONSUMED.labels("handler").inc(sum(len(r) for r in batch.values()))
        if not batch:
            return
        commands = [c for records in batch.values() for c in map(self._parse, records) if c is not None]
        positions = CommandPositions(self.name, self.topic, {
            tp.partition: CommandPosition(records[-1].offset, digest(records[-1].value)) for tp, records in batch.items()
        })
        for command, decision in zip(commands, self.app.handle_batch(commands, checkpoint=positions)):
            if not decision.accepted:
                log.info("command %s rejected: %s %s", command.command_id, decision.reason_code, decision.detail)
        self.on_decided(commands)
        self.consumer.commit({tp: offset_after(records[-1]) for tp, records in batch.items()})

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
            log.warning("handler: %s does not hold the last decided command; re-reading it from the start", tp)
            self.consumer.seek_to_beginning(tp)
            del batch[tp]
        return batch

    def _parse(self, record: ConsumerRecord) -> CommandEnvelope | None:
        try:
            return CommandEnvelope.model_validate(json.loads(record.value))
        except (ValueError, ValidationError) as error:
            dead_letter(self.producer, self.dlq_topic, record, "handler", f"unparseable command: {error}")
            return None

