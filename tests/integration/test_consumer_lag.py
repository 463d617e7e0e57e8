"""Consumer lag as exported: the high watermark of the last fetch minus the position."""

from __future__ import annotations

import pytest
from kafka import TopicPartition
from prometheus_client import REGISTRY

from herald.messaging import kafka_io
from herald.runtime import metrics
from tests.support import fill_topic

pytestmark = pytest.mark.integration


def _lag() -> float | None:
    return REGISTRY.get_sample_value("herald_consumer_lag_records", {"consumer": "lag-probe", "partition": "0"})


def test_lag_is_what_the_consumer_has_not_read_yet(kafka_bootstrap, topic_prefix):
    topic = f"{topic_prefix}lag"
    fill_topic(kafka_bootstrap, topic, [(None, b"x")] * 100)
    consumer = kafka_io.make_consumer(kafka_bootstrap, None, [])
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    read = 0
    while read < 10:
        read += sum(len(records) for records in consumer.poll(timeout_ms=500, max_records=10 - read).values())
    metrics.observe_lag("lag-probe", consumer)
    assert _lag() == 90
    while read < 100:
        read += sum(len(records) for records in consumer.poll(timeout_ms=500).values())
    metrics.observe_lag("lag-probe", consumer)
    assert _lag() == 0
    consumer.close()
