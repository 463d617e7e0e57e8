"""The bulk path of the brand voice read model (``projections/brand_voices.py``): each workspace's
row loaded once per page, the newest version of the page kept, written back once."""

from __future__ import annotations

from psycopg import Connection

from projections import brand_voices as live
from projections.bulk.rows import Raw, Rows, only


def brand_voices(conn: Connection, events: list[Raw]) -> None:
    events = only(events, *live.APPLIED)
    rows = Rows("brand_voices", ["workspace_id"], live.COLUMNS, jsonb=live.JSONB)
    rows.load(conn, [(e.workspace_id,) for e in events])
    for e in events:
        key = (e.workspace_id,)
        found = rows.get(key)
        if found is None:
            rows.insert(live.row_of(e.workspace_id, e.time, e.data))
        elif found["version"] < e.data["version"]:
            rows.rows[key] = live.row_of(e.workspace_id, e.time, e.data)
            rows.changed(key)
    rows.store(conn)


FOLDS = {"brand_voices": (brand_voices, live.APPLIED)}
