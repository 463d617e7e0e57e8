"""Reading the event store's notification log in large pages, cheaply.

The rebuild and the replay read history in bulk: one query per page straight from the events
table (no per-event round trip). For the rebuild, events are ``projections.bulk.Raw``: decoded
with the C JSON parser and not validated again (the store holds only what the domain
validated), filtered in the database to the types some read model applies, and read one page
ahead on a thread of their own while the previous page is applied.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Collection, Iterator
from datetime import datetime
from typing import Any, TypeVar

import psycopg
from eventsourcing.persistence import Notification
from psycopg import Connection

from domain.application import HeraldApplication
from domain.base import derived_id
from projections import bulk
from schemas.events import CloudEvent

T = TypeVar("T")


def head(conn: Connection, app: HeraldApplication) -> int:
    """The highest notification id in the store (0 when empty)."""
    row = conn.execute(f"SELECT max(notification_id) FROM {app.recorder.events_table_name}").fetchone()  # noqa: S608
    return row[0] or 0


def _query(app: HeraldApplication, types: Collection[str] | None) -> str:
    return (f"SELECT notification_id, originator_id, originator_version, topic, state FROM "  # noqa: S608
            f"{app.recorder.events_table_name} WHERE notification_id > %s AND notification_id <= %s"
            # Matching the bytes of the stored JSON's type spares parsing it.
            + (" AND state LIKE ANY(%s::bytea[])" if types is not None else "")
            + " ORDER BY notification_id LIMIT %s")


def _rows(conn: Connection, app: HeraldApplication, after: int, upto: int, page: int,
          types: Collection[str] | None) -> Iterator[list[tuple]]:
    query = _query(app, types)
    patterns = [f'%"type":"{t}"%'.encode() for t in types] if types is not None else None
    while after < upto:
        params = (after, upto, patterns, page) if patterns is not None else (after, upto, page)
        with conn.cursor(binary=True) as cur:
            rows = cur.execute(query, params).fetchall()
        if not rows:
            return
        yield rows
        after = rows[-1][0]


def notifications(conn: Connection, app: HeraldApplication, after: int, upto: int, page: int = 10_000,
                  types: Collection[str] | None = None) -> Iterator[list[Notification]]:
    """Pages of notifications with ``after < id <= upto``, in order (ids may have gaps); given
    ``types``, only events of those types."""
    for rows in _rows(conn, app, after, upto, page, types):
        yield [Notification(id=r[0], originator_id=r[1], originator_version=r[2], topic=r[3], state=bytes(r[4]))
               for r in rows]


def raw_pages(database_url: str, app: HeraldApplication, after: int, upto: int, page: int = 10_000,
              types: Collection[str] | None = None) -> Iterator[tuple[int, list[bulk.Raw]]]:
    """(last position read, its events) per page, on a connection of its own, a page ahead."""
    def pages() -> Iterator[tuple[int, list[bulk.Raw]]]:
        with psycopg.connect(database_url, autocommit=True) as conn:
            for rows in _rows(conn, app, after, upto, page, types):
                yield rows[-1][0], [_raw(app, r) for r in rows]
    return prefetched(pages())


def _raw(app: HeraldApplication, row: tuple) -> bulk.Raw:
    stored: dict[str, Any] = json.loads(bytes(row[4]))
    stamp = stored["timestamp"]
    if isinstance(stamp, dict) and stamp.get("_type_") == "datetime_iso":
        time = datetime.fromisoformat(stamp["_data_"])
    else:  # not the layout the transcoder writes today: let it decode the whole state
        stored = app.mapper.transcoder.decode(bytes(row[4]))
        time = stored["timestamp"]
    return bulk.raw(row[0], stored["type"], stored["data"], stored["workspace_id"], time, stored["causation_id"],
                    stored["correlation_id"], row[2], str(row[1]))


def event_of(raw: bulk.Raw) -> CloudEvent:
    """The CloudEvent the relay publishes for this event (data upcast), without re-validation."""
    aggregate_type = raw.type.split(".")[1]
    return CloudEvent.model_construct(
        specversion="1.0", id=derived_id("event", raw.aggregate_id, raw.aggregate_version),
        source=f"/herald/{aggregate_type}", type=raw.type, subject=raw.aggregate_id, time=raw.time,
        datacontenttype="application/json", data=raw.data, workspaceid=raw.workspace_id,
        aggregateid=raw.aggregate_id, aggregatetype=aggregate_type, aggregateversion=raw.aggregate_version,
        position=raw.position, causationid=raw.causation_id, correlationid=raw.correlation_id)


_DONE = object()


def prefetched(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """``items``, produced on a thread of their own up to ``depth`` ahead (an error is raised
    here, in order). Stopping early leaves the producer blocked on a full queue; it is a daemon."""
    ahead: queue.Queue = queue.Queue(maxsize=depth)

    def produce() -> None:
        try:
            for item in items:
                ahead.put(item)
            ahead.put(_DONE)
        except BaseException as error:  # noqa: BLE001 - handed to the consumer
            ahead.put(error)

    threading.Thread(target=produce, daemon=True, name="store-prefetch").start()
    while True:
        item = ahead.get()
        if item is _DONE:
            return
        if isinstance(item, BaseException):
            raise item
        yield item
