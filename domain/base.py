"""The aggregate base every Herald aggregate shares.

Each aggregate records events whose data is a ``schemas.events`` model: the stored state
is exactly the wire data, so the relay publishes what the domain decided, unchanged.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from schemas.events import EventData, parse_event

HERALD_NAMESPACE = uuid5(NAMESPACE_URL, "https://herald.invalid/ids")


def derived_id(*parts: object) -> str:
    """A stable id derived from its parts: the same inputs always give the same id."""
    return str(uuid5(HERALD_NAMESPACE, "/".join(str(p) for p in parts)))


@functools.lru_cache(maxsize=65_536)
def _aggregate_id(kind: str, herald_id: str) -> UUID:
    return uuid5(HERALD_NAMESPACE, f"{kind}:{herald_id}")


@dataclass(frozen=True)
class Context:
    """Who asked for a decision, when, and on behalf of which command."""

    command_id: str
    correlation_id: str
    workspace_id: str
    issued_by: str
    now: datetime


class HeraldAggregate(Aggregate):
    KIND: str = ""

    @classmethod
    def aggregate_id(cls, herald_id: str) -> UUID:
        """The event-store id of the aggregate a Herald id names."""
        return _aggregate_id(cls.KIND, herald_id)

    class Recorded(Aggregate.Event):
        type: str
        data: dict[str, Any]
        workspace_id: str
        causation_id: str
        correlation_id: str

        def apply(self, aggregate: Any) -> None:
            aggregate.workspace_id = self.workspace_id
            aggregate.evolve(parse_event(self.type, self.data))

    class Started(Recorded, Aggregate.Created):
        pass

    def __init__(self) -> None:
        self.workspace_id = ""

    @classmethod
    def start(cls, ctx: Context, herald_id: str, first: EventData) -> Any:
        return cls._create(cls.Started, id=cls.aggregate_id(herald_id), **_fields(ctx, first))

    def record(self, ctx: Context, event: EventData) -> None:
        self.trigger_event(self.Recorded, **_fields(ctx, event))

    def evolve(self, event: EventData) -> None:
        raise NotImplementedError


def _fields(ctx: Context, event: EventData) -> dict[str, Any]:
    return {
        "type": event.type,
        "data": event.model_dump(mode="json"),
        "workspace_id": ctx.workspace_id,
        "causation_id": ctx.command_id,
        "correlation_id": ctx.correlation_id,
        "timestamp": ctx.now,
    }
