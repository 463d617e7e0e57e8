"""Reading the event store's notification log in large pages, as CloudEvents, cheaply.

The rebuild and the replay read history in bulk: one query per page straight from the events
table (no per-event round trip), and events made without re-validating the envelope
(``model_construct``): they come from the store, which only holds what the domain validated.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from eventsourcing.persistence import Notification
from psycopg import Connection

from domain.application import HeraldApplication
from herald.messaging.relay import cloud_event_attributes
from projections import bulk
from schemas.events import CloudEvent


def head(conn: Connection, app: HeraldApplication) -> int:
    """The highest notification id in the store (0 when empty)."""
    row = conn.execute(f"SELECT max(notification_id) FROM {app.recorder.events_table_name}").fetchone()  # noqa: S608
    return row[0] or 0


def notifications(conn: Connection, app: HeraldApplication, after: int, upto: int,
                  page: int = 10_000) -> Iterator[list[Notification]]:
    """Pages of notifications with ``after < id <= upto``, in order (ids may have gaps)."""
    query = (f"SELECT notification_id, originator_id, originator_version, topic, state FROM "  # noqa: S608
             f"{app.recorder.events_table_name} WHERE notification_id > %s AND notification_id <= %s"
             " ORDER BY notification_id LIMIT %s")
    while after < upto:
        with conn.cursor(binary=True) as cur:
            rows = cur.execute(query, (after, upto, page)).fetchall()
        if not rows:
            return
        yield [Notification(id=r[0], originator_id=r[1], originator_version=r[2], topic=r[3], state=bytes(r[4]))
               for r in rows]
        after = rows[-1][0]


def as_event(app: HeraldApplication, notification: Notification) -> CloudEvent:
    """The CloudEvent the relay publishes for this notification, without re-validation."""
    attributes = cloud_event_attributes(app, notification)
    attributes["time"] = datetime.fromisoformat(attributes["time"])  # as a validated event has it
    return CloudEvent.model_construct(**attributes)


def as_raw(app: HeraldApplication, notification: Notification) -> bulk.Raw:
    """The stored event as the bulk rebuild reads it: no envelope, no validation, upcast data."""
    stored = app.mapper.transcoder.decode(notification.state)
    return bulk.raw(notification.id, stored["type"], stored["data"], stored["workspace_id"], stored["timestamp"],
                    stored["causation_id"], stored["correlation_id"], notification.originator_version)
