"""The events topic keeps history as the docs promise: created with retention.ms=-1 and
cleanup.policy=delete, and a start-up warning when an existing one says otherwise."""

from __future__ import annotations

import logging

import pytest
from kafka.admin import KafkaAdminClient, NewTopic

from herald.messaging import kafka_io
from herald.runtime.wiring import EVENTS_TOPIC_CONFIGS

pytestmark = pytest.mark.integration


def test_the_events_topic_is_created_keeping_everything(heralds, settings, caplog):
    caplog.set_level(logging.WARNING)
    herald = heralds.start()
    expected = {settings.events_topic: EVENTS_TOPIC_CONFIGS}
    assert kafka_io.topic_config_disagreements(settings.kafka_bootstrap, expected) == []
    assert EVENTS_TOPIC_CONFIGS == {"retention.ms": "-1", "cleanup.policy": "delete"}
    assert herald.check_topic_configs({settings.events_topic: EVENTS_TOPIC_CONFIGS}) == []
    assert "topic configuration" not in caplog.text


def test_an_existing_events_topic_that_would_delete_history_is_warned_about(heralds, settings, caplog):
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="test")
    try:  # as an older Herald (or an operator) created it
        admin.create_topics([NewTopic(settings.events_topic, settings.topic_partitions, 1,
                                      topic_configs={"retention.ms": "604800000"})])
    finally:
        admin.close()
    caplog.set_level(logging.WARNING)
    heralds.start()
    warnings = [r.getMessage() for r in caplog.records if "topic configuration" in r.getMessage()]
    assert any(f"{settings.events_topic}: retention.ms=604800000 (expected -1)" in w for w in warnings), warnings
    assert any("cleanup.policy" in w for w in warnings), "not reported by the broker: said so"
