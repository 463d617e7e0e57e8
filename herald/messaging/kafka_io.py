"""Kafka plumbing on kafka-python: topics, producers and consumers configured one way."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator

from kafka import (
    KafkaAdminClient,
    KafkaClient,
    KafkaConsumer,
    KafkaProducer,
    TopicPartition,
)
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaTimeoutError, TopicAlreadyExistsError
from kafka.protocol.init_producer_id import InitProducerIdRequest

from schemas.events import position_of

# Topics are made by ensure_topics with the configured partitions. A client that may auto-create
# (kafka-python's default; Tansu then makes 4 partitions) would also recreate a topic a restarted,
# empty broker lost, and let sends meant for the old topic land there first.
log = logging.getLogger(__name__)

NO_AUTO_CREATE = {"allow_auto_create_topics": False}


def ensure_topics(bootstrap: str, topics: dict[str, int], replication: int = 1,
                  configs: dict[str, dict[str, str]] | None = None) -> set[str]:
    """Create the missing topics (with their ``configs``, e.g. ``retention.ms``); returns the names
    this call created (a racing creator's don't count).

    Returns once every created topic shows all its partitions with a leader in fresh metadata.
    """
    configs = configs or {}
    metadata = _metadata_client(bootstrap)
    try:
        existing = set(metadata.topics())
        missing = [NewTopic(name, n, replication, topic_configs=configs.get(name, {}))
                   for name, n in topics.items() if name not in existing]
        created: set[str] = set()
        if missing:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="herald-admin")
            try:
                for topic in missing:  # one per request: kafka-python raises on the first topic error
                    try:
                        admin.create_topics([topic])
                        created.add(topic.name)
                    except TopicAlreadyExistsError:
                        pass
            finally:
                admin.close()
        _wait_for_leaders(metadata, {name: topics[name] for name in created})
        return created
    finally:
        metadata.close()


def topic_config_disagreements(bootstrap: str, expected: dict[str, dict[str, str]]) -> list[str]:
    """What differs between each topic's configuration, as the broker describes it, and ``expected``:
    one sentence per config that differs or that the broker does not report. Raises when the
    broker cannot describe configs at all.

    Tansu 0.6 describes only the configs a topic was created with (none for a topic created
    without), and does not support AlterConfigs; Apache Kafka describes every config, defaults
    included (https://kafka.apache.org/protocol#The_Messages_DescribeConfigs).
    """
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="herald-admin")
    try:
        responses = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name) for name in expected])
    finally:
        admin.close()
    described: dict[str, dict[str, str]] = {}
    for response in responses:
        for resource in response.resources:
            error_code, _, _, name, entries = resource[:5]
            if error_code == 0:
                described[name] = {entry[0]: entry[1] for entry in entries}
    found = []
    for topic, wanted in expected.items():
        actual = described.get(topic)
        for config, value in wanted.items():
            if actual is None or config not in actual:
                found.append(f"{topic}: the broker does not report {config} (expected {value})")
            elif actual[config] != value:
                found.append(f"{topic}: {config}={actual[config]} (expected {value})")
    return found


def _metadata_client(bootstrap: str) -> KafkaConsumer:
    # KafkaAdminClient.list_topics()/describe_topics() choke on Tansu's authorized-operations
    # field ("14 is not a valid ACLOperation"); a group-less consumer's metadata works.
    return KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, **NO_AUTO_CREATE)


def _wait_for_leaders(metadata: KafkaConsumer, topics: dict[str, int], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while topics:
        metadata.topics()  # refreshes the cluster metadata
        cluster = metadata._client.cluster
        if all(len(cluster.available_partitions_for_topic(name) or ()) == n for name, n in topics.items()):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics {sorted(topics)} have partitions without leaders after {timeout_s}s")
        time.sleep(0.1)


def make_producer(bootstrap: str, *, idempotent: bool = False, **overrides: object) -> KafkaProducer:
    """acks=all and one request in flight, so retries cannot reorder a partition.

    Idempotence is opt-in: Tansu 0.6's memory engine answers kafka-python's InitProducerId
    with UnknownError, failing every send (measured); Apache Kafka supports it. One request
    in flight costs nothing measurable here (~17k msgs/s either way).
    """
    config = {
        "bootstrap_servers": bootstrap,
        "acks": "all",
        "enable_idempotence": idempotent,
        "linger_ms": 5,
        "batch_size": 256 * 1024,
        "retries": 2**31 - 1,
        "max_in_flight_requests_per_connection": 1,
        "request_timeout_ms": 30_000,
        "max_block_ms": 10_000,  # a send into an unreachable broker fails in 10 s, so loops can react
        **NO_AUTO_CREATE,
        **overrides,
    }
    return KafkaProducer(**config)


def make_consumer(bootstrap: str, group_id: str | None, topics: list[str], **overrides: object) -> KafkaConsumer:
    """A manually committing consumer (``topics`` may be empty: subscribe later).

    Tansu holds a JoinGroup for about half the session timeout before answering, so every
    (re)balance costs that long; 6 s is the lowest Apache Kafka accepts by default
    (group.min.session.timeout.ms), giving ~3 s joins. Heartbeats run on kafka-python's
    background thread, so slow batches do not miss them; max_poll_interval bounds a batch.
    """
    config = {
        "bootstrap_servers": bootstrap,
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": 6_000,
        "heartbeat_interval_ms": 500,
        "max_poll_interval_ms": 300_000,
        "metadata_max_age_ms": 5_000,
        # kafka-python's default receive limit (1 MiB) is below its default fetch size (50 MiB):
        # a large fetch would drop the connection. Keep the fetch under the receive limit.
        "fetch_max_bytes": 16 * 1024 * 1024,
        "receive_message_max_bytes": 32 * 1024 * 1024,
        **NO_AUTO_CREATE,
        **overrides,
    }
    return KafkaConsumer(*topics, **config)


@contextlib.contextmanager
def _from_the_start(bootstrap: str, topic: str) -> Iterator[tuple[KafkaConsumer, list[TopicPartition]]]:
    """A group-less consumer at the start of every partition (no partitions: topic missing).
    Reading from the start, rather than asking for end offsets, which Tansu under-reports."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, **NO_AUTO_CREATE)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if partitions:
            consumer.assign(partitions)
            consumer.seek_to_beginning(*partitions)
        yield consumer, partitions
    finally:
        consumer.close()


def topic_has_messages(bootstrap: str, topic: str, timeout_ms: int = 1500) -> bool:
    """Whether any partition of ``topic`` holds a message."""
    with _from_the_start(bootstrap, topic) as (consumer, partitions):
        return bool(partitions) and bool(consumer.poll(timeout_ms=timeout_ms, max_records=1))


def earliest_event_position(bootstrap: str, topic: str, timeout_ms: int = 1500) -> int | None:
    """The smallest global position among the first events of the topic's partitions, read from
    the structured CloudEvent values (None when the topic is empty or missing)."""
    with _from_the_start(bootstrap, topic) as (consumer, partitions):
        firsts: dict[int, int] = {}
        deadline = time.monotonic() + timeout_ms / 1000
        while partitions and len(firsts) < len(partitions) and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=200).items():
                position = position_of(records[0].value)
                if tp.partition not in firsts and position is not None:
                    firsts[tp.partition] = position
                consumer.pause(tp)
        return min(firsts.values()) if firsts else None


def records_at(bootstrap: str, offsets: dict[TopicPartition, int], timeout_ms: int = 2000) -> dict[TopicPartition, ConsumerRecord]:
    """The record at each given offset, for those that exist. A stored offset past the end of
    a rebuilt topic has none: a consumer seeking there would wait for records that never
    come (not every broker answers such a fetch with OffsetOutOfRange; Tansu does not)."""
    if not offsets:
        return {}
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, **NO_AUTO_CREATE)
    try:
        consumer.assign(list(offsets))
        for tp, offset in offsets.items():
            consumer.seek(tp, offset)
        found: dict[TopicPartition, ConsumerRecord] = {}
        deadline = time.monotonic() + timeout_ms / 1000
        while len(found) < len(offsets) and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=200).items():
                if records[0].offset == offsets[tp]:
                    found[tp] = records[0]
                consumer.pause(tp)
        return found
    finally:
        consumer.close()


def grants_producer_ids(bootstrap: str, timeout_s: float = 5.0) -> bool:
    """Whether the broker answers InitProducerId with a producer id, which the idempotent
    producer needs. Apache Kafka does; Tansu 0.6's memory engine answers error -1."""
    client = KafkaClient(bootstrap_servers=bootstrap, client_id="herald-idempotence-probe", **NO_AUTO_CREATE)
    try:
        node = client.least_loaded_node()
        if node is None or not client.await_ready(node, timeout_ms=int(timeout_s * 1000)):
            raise KafkaTimeoutError(f"no broker of {bootstrap} answered within {timeout_s}s")
        request = InitProducerIdRequest[client.api_version(InitProducerIdRequest, max_version=1)](
            transactional_id=None, transaction_timeout_ms=60_000)
        future = client.send(node, request)
        client.poll(future=future, timeout_ms=int(timeout_s * 1000))
        if not future.is_done:
            raise KafkaTimeoutError(f"no InitProducerId answer from {bootstrap} within {timeout_s}s")
        if future.failed():
            raise future.exception
        return future.value.error_code == 0 and future.value.producer_id >= 0
    finally:
        client.close()


def use_idempotence(setting: bool | None, bootstrap: str) -> bool:
    """The setting, or when unset whether the broker grants producer ids (asked once here)."""
    if setting is not None:
        return setting
    granted = grants_producer_ids(bootstrap)
    log.log(logging.INFO if granted else logging.WARNING, "idempotent producer %s: the broker %s producer ids",
            "on" if granted else "off", "grants" if granted else "does not grant")
    return granted


def check_broker(bootstrap: str) -> None:
    """Raises unless the broker answers a metadata request."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, request_timeout_ms=3000,
                             api_version_auto_timeout_ms=3000, **NO_AUTO_CREATE)
    try:
        consumer.topics()
    finally:
        consumer.close()


class ClusterWatch:
    """The cluster id from fresh metadata, on one kept connection. A broker that came back empty
    is a new cluster (the embedded broker gets a new id at every start; a re-formatted Apache
    Kafka cluster too, unless it was given the old id)."""

    def __init__(self, bootstrap: str, timeout_s: float = 5.0) -> None:
        self.bootstrap, self.timeout_s = bootstrap, timeout_s
        self._client: KafkaClient | None = None

    def cluster_id(self) -> str | None:
        if self._client is None:  # connects here, not at construction: the broker may be away
            self._client = KafkaClient(bootstrap_servers=self.bootstrap, client_id="herald-cluster-watch",
                                       request_timeout_ms=int(self.timeout_s * 1000), retry_backoff_ms=0,
                                       **NO_AUTO_CREATE)
        future = self._client.cluster.request_update()  # asks for no topics: cheap
        self._client.poll(timeout_ms=self.timeout_s * 1000, future=future)
        if not future.is_done:
            raise KafkaTimeoutError(f"no metadata from {self.bootstrap} within {self.timeout_s}s")
        if future.failed():
            raise future.exception
        return self._client.cluster.cluster_id

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()


def wait_for_assignment(consumer: KafkaConsumer, timeout_s: float = 20.0) -> set[TopicPartition]:
    """Poll until the group gives ``consumer`` partitions. Records fetched meanwhile are not lost:
    with update_offsets=False the position stays put and they are fetched again."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        consumer.poll(timeout_ms=100, max_records=1, update_offsets=False)
        if consumer.assignment():
            return consumer.assignment()
        time.sleep(0.02)  # poll returns at once while the coordinator is being looked up
    raise TimeoutError(f"no partitions assigned within {timeout_s}s")
