"""Raw rates of the libraries Herald builds on: eventsourcing batched saves, kafka-python produce/consume."""

from __future__ import annotations

import os
import time

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from kafka import KafkaConsumer, TopicPartition

from herald.storage import db
from herald.messaging import kafka_io


class Trivial(Aggregate):
    def __init__(self, n: int) -> None:
        self.n = n


class BaselineApp(Application):
    name = "benchbaseline"


def save_aggregates(database_url: str, total: int = 20_000, per_save: int = 500) -> float:
    """Aggregates/s saving ``per_save`` new trivial aggregates per ``app.save`` call."""
    app = BaselineApp(db.eventsourcing_env(database_url))
    try:
        batches = [[Trivial(n) for n in range(i, i + per_save)] for i in range(0, total, per_save)]
        started = time.perf_counter()
        for batch in batches:
            app.save(*batch)
        elapsed = time.perf_counter() - started
    finally:
        app.close()
    return total / elapsed


def produce_consume(bootstrap: str, topic: str, total: int = 50_000, size: int = 300,
                    partitions: int = 6) -> tuple[float, float]:
    """(messages/s produced with acks=all, messages/s consumed from the beginning)."""
    value = os.urandom(size)
    records = [(str(i % 100).encode(), value, []) for i in range(total)]
    return produce(bootstrap, topic, records, partitions), consume(bootstrap, topic, total)


Record = tuple[bytes, bytes, list[tuple[str, bytes]]]


def produce(bootstrap: str, topic: str, records: list[Record], partitions: int = 6) -> float:
    """Messages/s sending ``records`` (key, value, headers) into a new topic, acks=all."""
    kafka_io.ensure_topics(bootstrap, {topic: partitions})
    producer = kafka_io.make_producer(bootstrap)
    try:
        started = time.perf_counter()
        futures = [producer.send(topic, key=key, value=value, headers=headers) for key, value, headers in records]
        producer.flush()
        for future in futures:
            future.get(timeout=30)
        return len(records) / (time.perf_counter() - started)
    finally:
        producer.close(timeout=5)


def consume(bootstrap: str, topic: str, total: int) -> float:
    """Messages/s reading ``total`` messages of ``topic`` from the beginning, without a group."""
    # kafka-python's default receive_message_max_bytes (1 MB) is below its default fetch_max_bytes
    # (50 MB): a multi-partition fetch response over 1 MB drops the connection (InvalidReceiveError).
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             receive_message_max_bytes=100_000_000)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        received = 0
        started = time.perf_counter()
        deadline = started + 120
        while received < total and time.perf_counter() < deadline:
            for records in consumer.poll(timeout_ms=500, max_records=5000).values():
                received += len(records)
        rate = received / (time.perf_counter() - started)
        if received < total:
            raise RuntimeError(f"baseline consumer got {received} of {total} messages of {topic}")
        return rate
    finally:
        consumer.close()
