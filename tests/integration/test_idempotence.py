"""The idempotent producer is used when the broker grants producer ids; the embedded Tansu
does not (it answers InitProducerId with error -1), so Herald produces without it there."""

from __future__ import annotations

import pytest

from herald.messaging import kafka_io

pytestmark = pytest.mark.integration


def test_the_test_broker_grants_no_producer_ids_so_unset_means_off(kafka_bootstrap, topic_prefix):
    assert kafka_io.grants_producer_ids(kafka_bootstrap) is False
    assert kafka_io.use_idempotence(None, kafka_bootstrap) is False
    topic = f"{topic_prefix}idempotence"
    kafka_io.ensure_topics(kafka_bootstrap, {topic: 1})
    producer = kafka_io.make_producer(kafka_bootstrap, idempotent=False)
    assert producer.send(topic, value=b"x").get(timeout=10).offset == 0
    producer.close()


def test_an_explicit_setting_is_not_second_guessed(kafka_bootstrap):
    assert kafka_io.use_idempotence(True, kafka_bootstrap) is True
    assert kafka_io.use_idempotence(False, kafka_bootstrap) is False

