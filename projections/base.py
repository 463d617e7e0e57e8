"""What every read model module exposes: one ``Projection`` describing its tables, the DDL
that makes them, the event types it applies, and the function that applies one event.

``apply(conn, event, data=None)`` applies one CloudEvent inside the caller's transaction.
It skips (without parsing) an event whose type it does not handle; a caller that already
parsed the event (``catalogue.apply_all`` parses once for every projection) passes ``data``.
Applying the same event twice leaves the same rows as applying it once.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from psycopg import Connection

from schemas import events as ev
from schemas.events import CloudEvent, EventData


class Apply(Protocol):
    def __call__(self, conn: Connection, event: CloudEvent, data: EventData | None = None, /) -> None: ...


@dataclass(frozen=True)
class Projection:
    name: str
    ddl: str
    tables: tuple[str, ...]
    handles: frozenset[str]
    apply: Apply
    # Read models whose tables this one's apply reads or writes: a rebuild of it rebuilds them too.
    needs: tuple[str, ...] = ()

    def wants(self, event_type: str) -> bool:
        """Does this projection apply events of this type (an older version counts as its current one)?"""
        return event_type in self.handles or current_type(event_type) in self.handles


@functools.lru_cache(maxsize=256)
def current_type(event_type: str) -> str:
    """The type an event is read as after upcasting (itself when there is no upcaster)."""
    seen = set()
    while event_type in ev.UPCASTERS and event_type not in seen:
        seen.add(event_type)
        event_type = ev.UPCASTERS[event_type][0]
    return event_type


def handled(models: tuple[type[EventData], ...]) -> frozenset[str]:
    return frozenset(model.type for model in models)


def applies(*models: type[EventData]) -> Callable[[Callable[[Connection, CloudEvent, Any], None]], Apply]:
    """Makes ``fn(conn, event, data)`` an ``Apply`` of these event models: an event of another type
    is skipped before it is parsed; without ``data`` the event is parsed here. The result's
    ``handles`` is the set of types, for the module's ``Projection``."""
    types = handled(models)

    def wrap(fn: Callable[[Connection, CloudEvent, Any], None]) -> Apply:
        @functools.wraps(fn)
        def apply(conn: Connection, event: CloudEvent, data: EventData | None = None) -> None:
            if data is None:
                if current_type(event.type) not in types:
                    return
                data = event.parsed_data()
            fn(conn, event, data)

        apply.handles = types  # type: ignore[attr-defined]
        return apply

    return wrap
