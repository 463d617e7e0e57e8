"""The bulk path of the planning read models (``projections/calendar.py``): schedules, slots and
series rows loaded once per page, the page's events folded in, written back once."""

from __future__ import annotations

from psycopg import Connection

from projections import calendar as live
from projections.bulk.rows import Raw, Rows
from schemas import events as ev


def planning(conn: Connection, events: list[Raw]) -> None:
    events = [e for e in events if e.type in _TYPES]
    if not events:
        return
    schedules = Rows("posting_schedules", ["social_account_id"], live.SCHEDULE_COLUMNS, jsonb=live.SCHEDULE_JSONB)
    slots = Rows("planned_slots", ["slot_id"], live.SLOT_COLUMNS)
    series = Rows("planning_series", ["series_id"], live.SERIES_COLUMNS, jsonb=live.SERIES_JSONB)
    schedules.load(conn, [(e.data["social_account_id"],) for e in events if e.type == ev.PostingScheduleSet.type])
    slots.load(conn, [(sid,) for e in events for sid in _slot_ids(e)])
    series.load(conn, [(e.data["series_id"],) for e in events if "series_id" in e.data])
    for e in events:
        d = e.data
        if e.type == ev.PostingScheduleSet.type:
            schedules.delete((d["social_account_id"],))
            schedules.insert(live.schedule_row(e.workspace_id, e.time, d))
        elif e.type == ev.SlotsPlanned.type:
            for row in live.slot_rows(e.workspace_id, e.time, d):
                slots.insert(row)
        elif e.type == ev.SlotsRemoved.type:
            for slot_id in d["slot_ids"]:
                row = slots.get((slot_id,))
                if row is not None and row["post_id"] is None:
                    slots.delete((slot_id,))
        elif e.type == ev.SlotFilled.type:
            row = slots.get((d["slot_id"],))
            if row is not None:
                row.update(post_id=d["post_id"], filled_at=e.time)
                slots.changed((d["slot_id"],))
        elif e.type == ev.SeriesDefined.type:
            before = series.get((d["series_id"],))
            series.delete((d["series_id"],))
            series.insert(live.series_row(e.workspace_id, e.time, d, before))
        else:
            row = series.get((d["series_id"],))
            if row is not None:
                row.update(live.occurrence_values(e.type, e.time, d, row))
                series.changed((d["series_id"],))
    for rows in (schedules, slots, series):
        rows.store(conn)


def _slot_ids(e: Raw) -> list[str]:
    if e.type == ev.SlotsPlanned.type:
        return [s["slot_id"] for s in e.data["slots"]]
    if e.type == ev.SlotsRemoved.type:
        return list(e.data["slot_ids"])
    if e.type == ev.SlotFilled.type:
        return [e.data["slot_id"]]
    return []


_TYPES = {m.type for m in live.APPLIED}
FOLDS = {"calendar": (planning, live.APPLIED)}
