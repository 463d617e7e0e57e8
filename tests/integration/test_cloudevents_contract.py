"""The events topic read as an outside consumer would: with an independent Kafka client
(confluent-kafka, librdkafka) and the CloudEvents Python SDK's Kafka binding, auto-detecting the
content mode. Every record must come out as a structured-mode CloudEvent whose ``data`` is the
event's data (not the whole envelope) and whose attributes match the checked-in schema.

SDK: https://github.com/cloudevents/sdk-python (``cloudevents.core.bindings.kafka.from_kafka_event``);
binding: https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/bindings/kafka-protocol-binding.md
"""

from __future__ import annotations

import json
import time
from importlib import resources

import pytest
from cloudevents.core.bindings.kafka import KafkaMessage, from_kafka_event
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from schemas import commands as cmd
from schemas.events import EVENT_TYPES
from tests.support import decide_all, envelope, relay_everything, sandbox_workspace, stored_notifications

pytestmark = pytest.mark.integration


def read_with_confluent(bootstrap: str, topic: str, expected: int, timeout_s: float = 30) -> list:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "independent-reader",
                         "enable.auto.commit": False})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        messages, deadline = [], time.monotonic() + timeout_s
        while len(messages) < expected and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                messages.append(message)
        return messages
    finally:
        consumer.close()


def test_an_outside_consumer_reads_structured_cloudevents(herald):
    decide_all(herald.app, "ce", sandbox_workspace("ce", accounts=("a",), credits=3, posts=2))
    assert herald.app.handle(envelope(cmd.GrantCredits(amount=1, grant_id="dup"), workspace_id="ce",
                                      command_id="g-dup")).accepted
    rejected = herald.app.handle(envelope(cmd.GrantCredits(amount=1, grant_id="dup"), workspace_id="ce",
                                          command_id="g-dup-2"))
    assert rejected.reason_code == "grant_exists"
    relay_everything(herald.relay())
    stored = stored_notifications(herald.app)

    messages = read_with_confluent(herald.kafka_bootstrap, herald.settings.events_topic, len(stored))
    assert len(messages) == len(stored)

    schema_dir = resources.files("schemas") / "json" / "events"
    seen_positions = set()
    for message in messages:
        headers = dict(message.headers() or [])
        assert list(headers) == ["content-type"], "structured mode: one content-type header, no ce_* headers"
        assert headers["content-type"].startswith(b"application/cloudevents+json")
        event = from_kafka_event(KafkaMessage(headers=headers, key=message.key(), value=message.value()))
        record = json.loads(message.value())
        assert event.get_specversion() == "1.0"
        assert event.get_type() == record["type"] and event.get_id() == record["id"]
        assert event.get_source() == record["source"] and event.get_subject() == record["subject"]
        assert event.get_data() == record["data"], "data is the event's data, not the whole envelope"
        assert "specversion" not in event.get_data()
        position = event.get_extension("position")
        assert position == record["position"] and event.get_extension("workspaceid") == "ce"
        assert event.get_extension("causationid") == record["causationid"]
        assert message.key() == b"ce"
        EVENT_TYPES[event.get_type()].model_validate(event.get_data())  # the data is this type's model
        required = json.loads((schema_dir / f"{event.get_type()}.json").read_text())["required"]
        assert "specversion" in required and set(required) <= set(record)
        seen_positions.add(position)
    assert seen_positions == {n.id for n in stored}
