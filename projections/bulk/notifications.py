"""The bulk path of the notification delivery log (``projections/notification_deliveries.py``):
rows loaded once per page, the page's events folded in with the live path's own ``fold``, written
back once."""

from __future__ import annotations

from psycopg import Connection

from projections import notification_deliveries as live
from projections.bulk.rows import Raw, Rows, only


def delivery_log(conn: Connection, events: list[Raw]) -> None:
    events = only(events, *live.EVENTS)
    rows = Rows("notification_delivery_log", ["workspace_id", "delivery_id"], live.COLUMNS, jsonb=live.JSONB)
    rows.load(conn, [(e.workspace_id, e.data["delivery_id"]) for e in events])
    for e in events:
        key = (e.workspace_id, e.data["delivery_id"])
        row = rows.get(key)
        new = live.fold(row, e.workspace_id, e.type, e.time, e.data, e.position)
        if new is None:
            continue
        if row is None:
            rows.insert(new)
        else:
            row.update(new)
            rows.changed(key)
    rows.store(conn)


FOLDS = {"notification_deliveries": (delivery_log, live.EVENTS)}
