"""Dead letters: list what the consumers parked in the DLQ topic, and replay one to where it came from.

A dead letter is the original key and value, with headers saying why and where it came
from (see :func:`herald.messaging.consumer.dead_letter`). Its id is ``"<dlq partition>:<dlq offset>"``.

Replaying re-produces the original key and value to the source topic, without the
``herald_dlq_*`` headers and with ``herald_replayed_from=<id>``. That is safe to do more
than once:

- a **command**'s ``command_id`` is its idempotency key: the domain records every decision,
  so a repeated command is answered from that record and changes nothing;
- an **event** carries its global position (``position`` in the CloudEvent): every event consumer skips an
  event at or below the position it has applied, so the consumers that applied it ignore the
  copy. The replay also names the consumer that parked it (``herald_replay_for``); that one
  applies the copy once, whatever its position, and records the dead letter's id with the
  effect so a second replay is skipped.

The DLQ is read from the beginning with a group-less consumer until nothing more arrives
for about a second: Tansu under-reports end offsets, so they are not used.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Callable

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from herald.redaction import redact_text

DLQ_HEADER_PREFIX = "herald_dlq_"
REPLAYED_FROM = "herald_replayed_from"
REPLAY_FOR = "herald_replay_for"


class UnknownDeadLetter(KeyError):
    """No dead letter with that id in the DLQ topic."""

    def __init__(self, dead_letter_id: str) -> None:
        super().__init__(dead_letter_id)
        self.dead_letter_id = dead_letter_id

    def __str__(self) -> str:
        return f"no dead letter {self.dead_letter_id!r} (ids are '<partition>:<offset>' of the DLQ topic)"


@dataclass(frozen=True)
class DeadLetter:
    id: str  # "<dlq partition>:<dlq offset>"
    cause: str
    consumer: str
    source_topic: str
    source_partition: int | None
    source_offset: int | None
    key: str | None
    value: str | None  # utf-8, undecodable bytes replaced
    timestamp: datetime | None
    raw_key: bytes | None = None
    raw_value: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def source(self) -> str:
        return f"{self.source_topic}[{self.source_partition}]@{self.source_offset}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: no raw bytes; the timestamp in ISO 8601; secret fields redacted."""
        data = asdict(self)
        for name in ("raw_key", "raw_value", "headers"):
            data.pop(name)
        data["timestamp"] = self.timestamp.isoformat() if self.timestamp else None
        data["value"], data["cause"] = redact_text(self.value), redact_text(self.cause)  # never a secret shown
        return data

    @classmethod
    def from_record(cls, record: ConsumerRecord) -> DeadLetter:
        headers = tuple((name, value or b"") for name, value in record.headers or [])
        found = {name: _text(value) for name, value in headers}
        return cls(
            id=f"{record.partition}:{record.offset}",
            cause=found.get("herald_dlq_cause", ""),
            consumer=found.get("herald_dlq_consumer", ""),
            source_topic=found.get("herald_dlq_topic", ""),
            source_partition=_int(found.get("herald_dlq_partition")),
            source_offset=_int(found.get("herald_dlq_offset")),
            key=_text(record.key),
            value=_text(record.value),
            timestamp=datetime.fromtimestamp(record.timestamp / 1000, UTC) if record.timestamp and record.timestamp > 0
            else None,
            raw_key=record.key,
            raw_value=record.value,
            headers=headers,
        )


def list_dead_letters(bootstrap: str, dlq_topic: str, limit: int = 100, idle_s: float = 1.0) -> list[DeadLetter]:
    """The first ``limit`` dead letters of the DLQ topic, oldest first (per partition)."""
    if limit <= 0:
        return []
    found: list[DeadLetter] = []
    consumer = _reader(bootstrap)
    try:
        partitions = _partitions(consumer, dlq_topic)
        if not partitions:
            return []
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        for record in _drain(consumer, idle_s):
            found.append(DeadLetter.from_record(record))
            if len(found) >= limit:
                break
    finally:
        consumer.close()
    found.sort(key=lambda d: tuple(int(part) for part in d.id.split(":")))
    return found


def find_dead_letter(bootstrap: str, dlq_topic: str, dead_letter_id: str, idle_s: float = 1.0) -> DeadLetter:
    """The dead letter with that id; raises :class:`UnknownDeadLetter`."""
    try:
        partition, offset = (int(part) for part in dead_letter_id.split(":"))
    except ValueError:
        raise UnknownDeadLetter(dead_letter_id) from None
    if partition < 0 or offset < 0:
        raise UnknownDeadLetter(dead_letter_id)
    consumer = _reader(bootstrap)
    try:
        tp = TopicPartition(dlq_topic, partition)
        if tp not in _partitions(consumer, dlq_topic):
            raise UnknownDeadLetter(dead_letter_id)
        consumer.assign([tp])
        consumer.seek(tp, offset)  # out of range → auto_offset_reset=earliest, then scanned
        for record in _drain(consumer, idle_s):
            if record.offset == offset:
                return DeadLetter.from_record(record)
            if record.offset > offset:
                break
    finally:
        consumer.close()
    raise UnknownDeadLetter(dead_letter_id)


def replay_dead_letter(bootstrap: str, dlq_topic: str, dead_letter_id: str, producer: KafkaProducer,
                       timeout_s: float = 30.0) -> DeadLetter:
    """Produce the dead letter's original key and value to its source topic again; returns it.

    Safe to repeat (see the module docstring): commands are deduplicated by command id,
    events by global position. Raises :class:`UnknownDeadLetter` for an unknown id, and the
    producer's error if the broker did not take the message.
    """
    dead = find_dead_letter(bootstrap, dlq_topic, dead_letter_id)
    if not dead.source_topic:
        raise ValueError(f"dead letter {dead_letter_id} names no source topic (header herald_dlq_topic)")
    headers = [(name, value) for name, value in dead.headers
               if not name.startswith(DLQ_HEADER_PREFIX) and name not in (REPLAYED_FROM, REPLAY_FOR)]
    headers += [(REPLAYED_FROM, dead.id.encode()), (REPLAY_FOR, dead.consumer.encode())]
    future = producer.send(dead.source_topic, key=dead.raw_key, value=dead.raw_value, headers=headers)
    producer.flush(timeout=timeout_s)
    future.get(timeout=timeout_s)  # raises if the broker did not take it
    return dead


class DeadLetterStore:
    """What the gateway's admin endpoints use: ``list(limit)`` and ``replay(id)``.

    ``producer`` is called on each replay, so a lazily built producer stays lazy.
    """

    def __init__(self, bootstrap: str, dlq_topic: str, producer: Callable[[], KafkaProducer]) -> None:
        self.bootstrap, self.dlq_topic, self._producer = bootstrap, dlq_topic, producer

    def list(self, limit: int = 100) -> list[DeadLetter]:
        return list_dead_letters(self.bootstrap, self.dlq_topic, limit)

    def replay(self, dead_letter_id: str) -> DeadLetter:
        return replay_dead_letter(self.bootstrap, self.dlq_topic, dead_letter_id, self._producer())


def _reader(bootstrap: str) -> KafkaConsumer:
    return KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                         auto_offset_reset="earliest")


def _partitions(consumer: KafkaConsumer, topic: str) -> list[TopicPartition]:
    return [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]


def _drain(consumer: KafkaConsumer, idle_s: float):
    """Records as they arrive, until none has come for ``idle_s``."""
    last = time.monotonic()
    while time.monotonic() - last < idle_s:
        batch = consumer.poll(timeout_ms=max(50, int(idle_s * 250)), max_records=500)
        for records in batch.values():
            last = time.monotonic()
            yield from records


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("utf-8", errors="replace")


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None
