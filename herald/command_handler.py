"""The handler role: commands topic → domain decisions → event store.

Offsets are committed to Kafka after each batch is decided. A command redelivered after a
crash is a repeat of a known command id, which the domain answers from its record.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Callable

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from pydantic import ValidationError

from domain.application import HeraldApplication
from herald import metrics
from herald.consumer import dead_letter, offset_after
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
    ) -> None:
        self.app, self.consumer, self.producer, self.dlq_topic = app, consumer, producer, dlq_topic
        self.on_decided = on_decided
        self.poll_timeout_ms, self.max_records = poll_timeout_ms, max_records
        consumer.subscribe([topic])

    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                batch = self.consumer.poll(timeout_ms=self.poll_timeout_ms, max_records=self.max_records)
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
        """Decide the whole batch in one transaction, then commit the offsets."""
        metrics.CONSUMED.labels("handler").inc(sum(len(r) for r in batch.values()))
        commands = [c for records in batch.values() for c in map(self._parse, records) if c is not None]
        for command, decision in zip(commands, self.app.handle_batch(commands)):
            if not decision.accepted:
                log.info("command %s rejected: %s %s", command.command_id, decision.reason_code, decision.detail)
        self.on_decided(commands)
        self.consumer.commit({tp: offset_after(records[-1]) for tp, records in batch.items()})

    def _parse(self, record: ConsumerRecord) -> CommandEnvelope | None:
        try:
            return CommandEnvelope.model_validate(json.loads(record.value))
        except (ValueError, ValidationError) as error:
            dead_letter(self.producer, self.dlq_topic, record, "handler", f"unparseable command: {error}")
            return None
