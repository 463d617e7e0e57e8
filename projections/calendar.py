"""Planning read models and the calendar (docs/calendar.md): each account's posting schedule
(``posting_schedules``), the planned slots (``planned_slots``: one row per slot, its post once it
has content), the series (``planning_series``); and the calendar query, which lays the slots and
the posts' destinations (``queue_destinations``, the queue read model's) out by local day."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from psycopg import Connection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from projections.base import Projection, applies
from schemas import events as ev
from schemas.events import CloudEvent, EventData

DDL = """
CREATE TABLE IF NOT EXISTS posting_schedules (
    social_account_id text        PRIMARY KEY,
    workspace_id      text        NOT NULL,
    timezone          text        NOT NULL,
    posts_per_week    integer     NOT NULL,
    slots             jsonb       NOT NULL,
    active            boolean     NOT NULL,
    updated_at        timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS posting_schedules_workspace ON posting_schedules (workspace_id);
CREATE TABLE IF NOT EXISTS planned_slots (
    slot_id           text        PRIMARY KEY,
    workspace_id      text        NOT NULL,
    social_account_id text        NOT NULL,
    at                timestamptz NOT NULL,
    local_at          text        NOT NULL,
    wanted            text        NOT NULL,
    adjusted          text,
    post_id           text,
    planned_at        timestamptz NOT NULL,
    filled_at         timestamptz
);
CREATE INDEX IF NOT EXISTS planned_slots_workspace ON planned_slots (workspace_id, at);
CREATE TABLE IF NOT EXISTS planning_series (
    series_id     text        PRIMARY KEY,
    workspace_id  text        NOT NULL,
    kind          text        NOT NULL,
    rrule         text        NOT NULL,
    starts_at     text        NOT NULL,
    timezone      text        NOT NULL,
    destinations  jsonb       NOT NULL,
    items         jsonb       NOT NULL,
    skip_days     integer     NOT NULL,
    active        boolean     NOT NULL,
    planned_until timestamptz,
    scheduled     integer     NOT NULL,
    skipped       integer     NOT NULL,
    last_skip     text,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS planning_series_workspace ON planning_series (workspace_id);
"""
TABLES = ("posting_schedules", "planned_slots", "planning_series")
SCHEDULE_COLUMNS = ("social_account_id", "workspace_id", "timezone", "posts_per_week", "slots", "active",
                    "updated_at")
SLOT_COLUMNS = ("slot_id", "workspace_id", "social_account_id", "at", "local_at", "wanted", "adjusted", "post_id",
                "planned_at", "filled_at")
SERIES_COLUMNS = ("series_id", "workspace_id", "kind", "rrule", "starts_at", "timezone", "destinations", "items",
                  "skip_days", "active", "planned_until", "scheduled", "skipped", "last_skip", "updated_at")
SCHEDULE_JSONB, SERIES_JSONB = ("slots",), ("destinations", "items")

APPLIED = (ev.PostingScheduleSet, ev.SlotsPlanned, ev.SlotsRemoved, ev.SlotFilled, ev.SeriesDefined,
           ev.SeriesOccurrenceScheduled, ev.SeriesOccurrenceSkipped)


# Rows, shared with the bulk path (projections/bulk/calendar.py) ---------------------------------


def schedule_row(workspace_id: str, at: datetime, d: dict[str, Any]) -> dict[str, Any]:
    return {"social_account_id": d["social_account_id"], "workspace_id": workspace_id, "timezone": d["timezone"],
            "posts_per_week": d["posts_per_week"], "slots": [dict(s) for s in d["slots"]], "active": d["active"],
            "updated_at": at}


def slot_rows(workspace_id: str, at: datetime, d: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"slot_id": s["slot_id"], "workspace_id": workspace_id, "social_account_id": d["social_account_id"],
             "at": _instant(s["at"]), "local_at": s["local"], "wanted": s["wanted"], "adjusted": s["adjusted"],
             "post_id": None, "planned_at": at, "filled_at": None} for s in d["slots"]]


def series_row(workspace_id: str, at: datetime, d: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    kept = before or {"planned_until": None, "scheduled": 0, "skipped": 0, "last_skip": None}
    return {"series_id": d["series_id"], "workspace_id": workspace_id, "kind": d["kind"], "rrule": d["rrule"],
            "starts_at": d["starts_at"], "timezone": d["timezone"], "destinations": list(d["destinations"]),
            "items": [dict(i) for i in d["items"]], "skip_days": d["skip_days"], "active": d["active"],
            "planned_until": kept["planned_until"], "scheduled": kept["scheduled"], "skipped": kept["skipped"],
            "last_skip": kept["last_skip"], "updated_at": at}


def occurrence_values(event_type: str, at: datetime, d: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    skipped = event_type == ev.SeriesOccurrenceSkipped.type
    return {"planned_until": _instant(d["occurrence_at"]),
            "scheduled": row["scheduled"] + (0 if skipped else 1), "skipped": row["skipped"] + (1 if skipped else 0),
            "last_skip": f"{d['reason_code']}: {d['detail']}"[:500] if skipped else row["last_skip"],
            "updated_at": at}


def _instant(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _insert(conn: Connection, table: str, columns: tuple[str, ...], jsonb: tuple[str, ...], row: dict[str, Any],
            key: str) -> None:
    conn.execute(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})"
        f" ON CONFLICT ({key}) DO UPDATE SET {', '.join(f'{c} = EXCLUDED.{c}' for c in columns if c != key)}",
        [Jsonb(row[c]) if c in jsonb else row[c] for c in columns])


@applies(*APPLIED)
def apply(conn: Connection, event: CloudEvent, data: EventData) -> None:
    d = data.model_dump(mode="json")
    ws, at = event.workspaceid, event.time
    match data:
        case ev.PostingScheduleSet():
            _insert(conn, "posting_schedules", SCHEDULE_COLUMNS, SCHEDULE_JSONB, schedule_row(ws, at, d),
                    "social_account_id")
        case ev.SlotsPlanned():
            for row in slot_rows(ws, at, d):
                conn.execute(f"INSERT INTO planned_slots ({', '.join(SLOT_COLUMNS)})"
                             f" VALUES ({', '.join(['%s'] * len(SLOT_COLUMNS))}) ON CONFLICT DO NOTHING",
                             [row[c] for c in SLOT_COLUMNS])
        case ev.SlotsRemoved():
            conn.execute("DELETE FROM planned_slots WHERE slot_id = ANY(%s) AND post_id IS NULL", (list(data.slot_ids),))
        case ev.SlotFilled():
            conn.execute("UPDATE planned_slots SET post_id = %s, filled_at = %s WHERE slot_id = %s",
                         (data.post_id, at, data.slot_id))
        case ev.SeriesDefined():
            with conn.cursor(row_factory=dict_row) as cur:
                before = cur.execute("SELECT planned_until, scheduled, skipped, last_skip FROM planning_series"
                                     " WHERE series_id = %s", (data.series_id,)).fetchone()
            _insert(conn, "planning_series", SERIES_COLUMNS, SERIES_JSONB, series_row(ws, at, d, before), "series_id")
        case ev.SeriesOccurrenceScheduled() | ev.SeriesOccurrenceSkipped():
            with conn.cursor(row_factory=dict_row) as cur:
                row = cur.execute("SELECT scheduled, skipped, last_skip FROM planning_series WHERE series_id = %s",
                                  (data.series_id,)).fetchone()
            if row is not None:
                values = occurrence_values(event.type, at, d, row)
                conn.execute(f"UPDATE planning_series SET {', '.join(f'{c} = %s' for c in values)}"
                             " WHERE series_id = %s", [*values.values(), data.series_id])


PROJECTION = Projection(name="calendar", ddl=DDL, tables=TABLES, handles=apply.handles, apply=apply)


# Queries ---------------------------------------------------------------------------------------


def read_schedule(conn: Connection, workspace_id: str, account_id: str) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("SELECT social_account_id, timezone, posts_per_week, slots, active, updated_at"
                           " FROM posting_schedules WHERE workspace_id = %s AND social_account_id = %s",
                           (workspace_id, account_id)).fetchone()


def read_series(conn: Connection, workspace_id: str, series_id: str) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(f"SELECT {', '.join(c for c in SERIES_COLUMNS if c != 'workspace_id')}"
                           " FROM planning_series WHERE workspace_id = %s AND series_id = %s",
                           (workspace_id, series_id)).fetchone()


def active_series_ids(conn: Connection, workspace_id: str) -> list[str]:
    return [r[0] for r in conn.execute("SELECT series_id FROM planning_series WHERE workspace_id = %s AND active"
                                       " ORDER BY series_id", (workspace_id,))]


def workspaces_to_top_off(conn: Connection, after: str, limit: int) -> list[tuple[str, list[str]]]:
    """Workspaces with an active schedule or series (keyset by id), each with its active series."""
    rows = conn.execute(
        "SELECT w.workspace_id, COALESCE((SELECT array_agg(s.series_id ORDER BY s.series_id) FROM planning_series s"
        "  WHERE s.workspace_id = w.workspace_id AND s.active), '{}')"
        " FROM (SELECT workspace_id FROM posting_schedules WHERE active"
        "       UNION SELECT workspace_id FROM planning_series WHERE active) w"
        " WHERE w.workspace_id > %s ORDER BY w.workspace_id LIMIT %s", (after, limit)).fetchall()
    return [(ws, list(series)) for ws, series in rows]


VIEWS = ("week", "month")
# Destination statuses of the queue read model, and the two a slot without content has.
SLOT_STATUSES = ("needs_content", "missed")


def calendar_range(view: str, day: date, zone: ZoneInfo) -> tuple[date, date]:
    """The local dates (first, last) of the week (Monday to Sunday) or month that ``day`` is in."""
    if view == "week":
        first = day - timedelta(days=day.weekday())
        return first, first + timedelta(days=6)
    first = day.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return first, following - timedelta(days=1)


def read_calendar(conn: Connection, workspace_id: str, zone: ZoneInfo, first: date, last: date, now: datetime,
                  account_id: str | None = None, statuses: list[str] | None = None) -> list[dict[str, Any]]:
    """The slots and post destinations from local ``first`` to ``last`` (inclusive), soonest first.
    A slot without content is ``needs_content`` (``missed`` once its time has passed); a slot with
    content is shown as its post (carrying the slot id). Posts on the schedule show each destination
    with its status; ideas, drafts and posts awaiting approval that have a time show each of their
    destinations with the stage (``idea``, ``draft``, ``needs_approval``)."""
    start = datetime.combine(first, datetime.min.time(), zone)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), zone)
    with conn.cursor(row_factory=dict_row) as cur:
        slots = cur.execute(
            "SELECT s.slot_id, s.social_account_id, s.at, s.local_at, s.adjusted, s.post_id, a.platform, a.handle"
            "  FROM planned_slots s LEFT JOIN social_accounts a ON a.social_account_id = s.social_account_id"
            " WHERE s.workspace_id = %s AND s.at >= %s AND s.at < %s AND (%s::text IS NULL OR s.social_account_id = %s)",
            (workspace_id, start, end, account_id, account_id)).fetchall()
        posts = cur.execute(
            "SELECT d.post_id, d.destination_id, d.social_account_id, d.platform, d.handle, d.due_at AS at, d.status,"
            "       COALESCE(d.text, p.text) AS text"
            "  FROM queue_destinations d LEFT JOIN posts p ON p.post_id = d.post_id"
            " WHERE d.workspace_id = %s AND d.due_at >= %s AND d.due_at < %s"
            "   AND (%s::text IS NULL OR d.social_account_id = %s)",
            (workspace_id, start, end, account_id, account_id)).fetchall()
        # Ideas, drafts and posts awaiting approval that have a time (the content workflow's posts read model).
        unscheduled = cur.execute(
            "SELECT p.post_id, p.stage, p.publish_at AS at, p.text, p.draft_destinations FROM posts p"
            " WHERE p.workspace_id = %s AND p.stage IS NOT NULL AND p.stage <> 'cancelled'"
            "   AND p.publish_at >= %s AND p.publish_at < %s", (workspace_id, start, end)).fetchall()
        handles = {r["social_account_id"]: (r["platform"], r["handle"]) for r in cur.execute(
            "SELECT social_account_id, platform, handle FROM social_accounts WHERE workspace_id = %s",
            (workspace_id,)).fetchall()} if unscheduled else {}
    for draft in unscheduled:
        for dest in draft["draft_destinations"] or []:
            account = dest.get("social_account_id") or dest.get("destination_id")
            if account_id is not None and account != account_id:
                continue
            platform, handle = handles.get(account, (dest.get("platform"), dest.get("handle")))
            posts.append({"post_id": draft["post_id"], "destination_id": dest.get("destination_id", account),
                          "social_account_id": account, "platform": platform, "handle": handle, "at": draft["at"],
                          "status": draft["stage"], "text": dest.get("text") or draft["text"]})
    slot_of_post = {s["post_id"]: s["slot_id"] for s in slots if s["post_id"]}
    on_schedule = {p["post_id"] for p in posts}
    items = []
    for s in slots:
        if s["post_id"] in on_schedule:
            continue
        # content whose post the read models do not show yet (or no longer: cancelled) keeps the slot
        status = "filled" if s["post_id"] else ("needs_content" if s["at"] > now else "missed")
        items.append({"kind": "slot", "slot_id": s["slot_id"], "post_id": s["post_id"],
                      "social_account_id": s["social_account_id"], "platform": s["platform"], "handle": s["handle"],
                      "at": s["at"], "status": status, "needs_content": s["post_id"] is None,
                      "adjusted": s["adjusted"], "text": None})
    for p in posts:
        items.append({"kind": "post", "slot_id": slot_of_post.get(p["post_id"]), "post_id": p["post_id"],
                      "destination_id": p["destination_id"], "social_account_id": p["social_account_id"],
                      "platform": p["platform"], "handle": p["handle"], "at": p["at"], "status": p["status"],
                      "needs_content": False, "adjusted": None, "text": p["text"]})
    if statuses:
        items = [i for i in items if i["status"] in statuses]
    items.sort(key=lambda i: (i["at"], i["social_account_id"], i["kind"], i["post_id"] or "", i["slot_id"] or ""))
    for item in items:
        local = item["at"].astimezone(zone)
        item["local_date"], item["local_time"] = local.date().isoformat(), local.strftime("%H:%M")
    return items
