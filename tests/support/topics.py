"""Filling and reading topics on the test broker directly, outside Herald's consumers."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from kafka import KafkaConsumer, TopicPartition

from herald.messaging import kafka_io


def fill_topic(bootstrap: str, topic: str, messages: Iterable[tuple[bytes | None, bytes]], partitions: int = 1) -> None:
    """Create ``topic`` and produce each (key, value) to it."""
    kafka_io.ensure_topics(bootstrap, {topic: partitions})
    producer = kafka_io.make_producer(bootstrap)
    for key, value in messages:
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()


def topic_consumer(bootstrap: str, topic: str) -> KafkaConsumer:
    """A consumer in no group, on every partition of ``topic``, at its start."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest")
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    return consumer


def read_topic(bootstrap: str, topic: str, *, idle_s: float = 1.0, until: Callable[[list], bool] | None = None,
               patience_s: float | None = None, timeout: float = 60) -> list:
    """Every record of ``topic`` from its start: read until nothing more came for ``idle_s``
    (and, given ``until``, what came satisfies it), or nothing came for ``patience_s``, or
    ``timeout`` passed. (Tansu under-reports end offsets, so quiet is the sign of the end.)"""
    consumer = topic_consumer(bootstrap, topic)
    try:
        records: list = []
        deadline, quiet_since = time.monotonic() + timeout, time.monotonic()
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=200)
            for partition_records in batch.values():
                records.extend(partition_records)
            if batch:
                quiet_since = time.monotonic()
            quiet = time.monotonic() - quiet_since
            if quiet > idle_s and (until is None or until(records)) or patience_s is not None and quiet > patience_s:
                break
        return records
    finally:
        consumer.close()
