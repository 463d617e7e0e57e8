"""The bulk path of the generation log (``projections/generations.py``): rows loaded once per page,
the page's requests inserted and outcomes folded in, written back once."""

from __future__ import annotations

from psycopg import Connection

from projections import generations as live
from projections.bulk.rows import Raw, Rows, only
from schemas import events as ev

_EVENTS = (ev.GenerationRequested, ev.GenerationSucceeded, ev.GenerationFailed)


def generation_log(conn: Connection, events: list[Raw]) -> None:
    events = only(events, *_EVENTS)
    rows = Rows("generation_log", ["workspace_id", "generation_id"], live.COLUMNS, jsonb=live.JSONB)
    rows.load(conn, [(e.workspace_id, e.data["generation_id"]) for e in events])
    for e in events:
        key = (e.workspace_id, e.data["generation_id"])
        if e.type == ev.GenerationRequested.type:
            rows.insert(live.requested_row(e.workspace_id, e.time, e.data))  # kept when it exists, as ON CONFLICT
            continue
        row = rows.get(key)
        if row is not None:
            row.update(live.outcome_values(e.type, e.time, e.data))
            rows.changed(key)
    rows.store(conn)


FOLDS = {"generations": (generation_log, _EVENTS)}
