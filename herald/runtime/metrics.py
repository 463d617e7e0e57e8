"""Prometheus metrics every role reports (served at /metrics by the gateway, or by a small
HTTP server in roles without one).

Consumer lag comes from the high watermark each fetch response carries, not from a
ListOffsets request: Tansu under-reports "latest" offsets (measured: 1 for a partition
holding 100 records, while its fetch responses said 100), Apache Kafka reports both right."""

from __future__ import annotations

import time

from kafka import KafkaConsumer
from prometheus_client import Counter, Gauge, Histogram

CONSUMED = Counter("herald_messages_consumed_total", "Messages read from Kafka", ["consumer"])
APPLIED = Counter("herald_events_applied_total", "Events applied (not skipped as already applied)", ["consumer"])
PRODUCED = Counter("herald_messages_produced_total", "Messages produced to Kafka", ["producer"])
BATCH_SECONDS = Histogram("herald_batch_seconds", "Time to process one batch", ["loop"],
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
FAILURES = Counter("herald_batch_failures_total", "Batches that failed and will be retried", ["loop"])
DEAD_LETTERS = Counter("herald_dead_letters_total", "Messages parked on the dead-letter topic", ["consumer"])
LAG = Gauge("herald_consumer_lag_records", "Records between the consumer's position and the partition's"
            " high watermark, as of its last fetch", ["consumer", "partition"])
IN_FLIGHT = Gauge("herald_publish_calls_in_flight", "Platform calls in flight", ["engine"])
PUBLISH_OUTCOMES = Counter("herald_publish_outcomes_total", "Attempt outcomes reported to the domain", ["engine"])
HEARTBEAT = Gauge("herald_loop_heartbeat_timestamp_seconds", "Last time a loop completed an iteration", ["loop"])


_last_beats: dict[str, float] = {}


def beat(loop: str) -> None:
    """A loop finished an iteration that did its work (a failed one does not beat)."""
    now = time.time()
    _last_beats[loop] = now
    HEARTBEAT.labels(loop).set(now)


def last_beat(loop: str) -> float | None:
    return _last_beats.get(loop)


def observe_lag(consumer_name: str, consumer: KafkaConsumer) -> None:
    for tp in consumer.assignment():
        high = consumer.highwater(tp)  # None until a fetch for the partition returned
        if high is not None:
            LAG.labels(consumer_name, str(tp.partition)).set(max(0, high - consumer.position(tp)))
