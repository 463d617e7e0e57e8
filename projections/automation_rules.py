"""Automation rules read model: one row per rule with its definition, status, the runner's cursor
(the last occurrence fired or skipped), the pending run, and its stats: runs, posts, failures (by
reason, the last one's reason and detail), occurrences skipped, last run, next run.

The rule runner reads the due and pending rules here; the API reads rules and stats here. Live and
bulk paths share ``fold`` (one event onto a row); a row remembers the position of the last event it
applied, so an event applied twice changes nothing."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from psycopg import Connection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from projections.base import Projection, applies
from schemas import events as ev
from schemas.events import CloudEvent, EventData

DDL = """
CREATE TABLE IF NOT EXISTS automation_rules (
    workspace_id        text        NOT NULL,
    rule_id             text        NOT NULL,
    name                text        NOT NULL,
    status              text        NOT NULL,
    paused_reason       text,
    paused_detail       text,
    definition          jsonb       NOT NULL,
    cursor_at           timestamptz,
    next_run_at         timestamptz,
    run_occurrence_at   timestamptz,
    runs                integer     NOT NULL,
    posts               integer     NOT NULL,
    failures            integer     NOT NULL,
    skipped             integer     NOT NULL,
    failures_by_reason  jsonb       NOT NULL,
    last_failure_reason text,
    last_failure_detail text,
    last_failure_at     timestamptz,
    last_run_at         timestamptz,
    last_post_id        text,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    position            bigint      NOT NULL,
    PRIMARY KEY (workspace_id, rule_id)
);
CREATE INDEX IF NOT EXISTS automation_rules_due ON automation_rules (next_run_at)
    WHERE status = 'active' AND run_occurrence_at IS NULL;
CREATE INDEX IF NOT EXISTS automation_rules_pending ON automation_rules (run_occurrence_at)
    WHERE run_occurrence_at IS NOT NULL;
"""
TABLES = ("automation_rules",)
COLUMNS = ("workspace_id", "rule_id", "name", "status", "paused_reason", "paused_detail", "definition", "cursor_at",
           "next_run_at", "run_occurrence_at", "runs", "posts", "failures", "skipped", "failures_by_reason",
           "last_failure_reason", "last_failure_detail", "last_failure_at", "last_run_at", "last_post_id",
           "created_at", "updated_at", "position")
JSONB = ("definition", "failures_by_reason")
MAX_LIMIT = 200

APPLIED = (ev.AutomationRuleCreated, ev.AutomationRuleUpdated, ev.AutomationRulePaused, ev.AutomationRuleResumed,
           ev.AutomationRuleDeleted, ev.AutomationRuleFired, ev.AutomationRuleOccurrencesSkipped,
           ev.AutomationRuleRunSucceeded, ev.AutomationRuleRunFailed)


def _at(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


def _armed(next_run_at: datetime | None, cursor: datetime | None) -> datetime | None:
    # As the aggregate: a (re)armed rule's cursor sits just before its next occurrence, never moved back.
    if next_run_at is None:
        return cursor
    armed = next_run_at - timedelta(microseconds=1)
    return armed if cursor is None or armed > cursor else cursor


def fold(row: dict[str, Any] | None, event_type: str, d: dict[str, Any], workspace_id: str, at: datetime,
         position: int) -> dict[str, Any] | None:
    """The row after one event (``d``: the event's data as JSON). None: no row to change."""
    if event_type == ev.AutomationRuleCreated.type:
        if row is not None:
            return None
        nxt = _at(d["next_run_at"])
        return {"workspace_id": workspace_id, "rule_id": d["rule_id"], "name": d["definition"]["name"],
                "status": "active", "paused_reason": None, "paused_detail": None, "definition": d["definition"],
                "cursor_at": _armed(nxt, None), "next_run_at": nxt, "run_occurrence_at": None, "runs": 0,
                "posts": 0, "failures": 0, "skipped": 0, "failures_by_reason": {}, "last_failure_reason": None,
                "last_failure_detail": None, "last_failure_at": None, "last_run_at": None, "last_post_id": None,
                "created_at": at, "updated_at": at, "position": position}
    if row is None or row["position"] >= position:
        return None
    row = dict(row, updated_at=at, position=position)
    match event_type:
        case ev.AutomationRuleUpdated.type:
            nxt = _at(d["next_run_at"])
            row.update(definition=d["definition"], name=d["definition"]["name"],
                       next_run_at=nxt if row["status"] == "active" else None, cursor_at=_armed(nxt, row["cursor_at"]))
        case ev.AutomationRulePaused.type:
            row.update(status="paused", paused_reason=d["reason"], paused_detail=d["detail"], next_run_at=None)
        case ev.AutomationRuleResumed.type:
            nxt = _at(d["next_run_at"])
            row.update(status="active", paused_reason=None, paused_detail=None, next_run_at=nxt,
                       cursor_at=_armed(nxt, row["cursor_at"]))
        case ev.AutomationRuleDeleted.type:
            row.update(status="deleted", next_run_at=None)
        case ev.AutomationRuleFired.type:
            occurrence = _at(d["occurrence_at"])
            row.update(runs=row["runs"] + 1, skipped=row["skipped"] + d["skipped_before"], last_run_at=occurrence,
                       cursor_at=occurrence, run_occurrence_at=occurrence, next_run_at=_at(d["next_run_at"]))
        case ev.AutomationRuleOccurrencesSkipped.type:
            row.update(skipped=row["skipped"] + d["count"], cursor_at=_at(d["last_at"]),
                       next_run_at=_at(d["next_run_at"]))
        case ev.AutomationRuleRunSucceeded.type:
            row.update(posts=row["posts"] + 1, last_post_id=d["post_id"], run_occurrence_at=None)
        case ev.AutomationRuleRunFailed.type:
            reasons = dict(row["failures_by_reason"])
            reasons[d["reason"]] = reasons.get(d["reason"], 0) + 1
            row.update(failures=row["failures"] + 1, failures_by_reason=reasons, last_failure_reason=d["reason"],
                       last_failure_detail=d["detail"], last_failure_at=_at(d["occurrence_at"]),
                       run_occurrence_at=None)
    return row


def _values(row: dict[str, Any]) -> list[Any]:
    return [Jsonb(row[c]) if c in JSONB and row[c] is not None else row[c] for c in COLUMNS]


@applies(*APPLIED)
def apply(conn: Connection, event: CloudEvent, data: EventData) -> None:
    d = data.model_dump(mode="json")
    with conn.cursor(row_factory=dict_row) as cur:
        found = cur.execute(f"SELECT {', '.join(COLUMNS)} FROM automation_rules"
                            " WHERE workspace_id = %s AND rule_id = %s FOR UPDATE",
                            (event.workspaceid, d["rule_id"])).fetchone()
    row = fold(found, event.type, d, event.workspaceid, event.time, event.position)
    if row is None:
        return
    conn.execute(
        f"INSERT INTO automation_rules ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"
        f" ON CONFLICT (workspace_id, rule_id) DO UPDATE SET"
        f" {', '.join(f'{c} = EXCLUDED.{c}' for c in COLUMNS[2:])}",
        _values(row))


PROJECTION = Projection(name="automation_rules", ddl=DDL, tables=TABLES, handles=apply.handles, apply=apply)

_PUBLIC = [c for c in COLUMNS if c not in ("workspace_id", "position", "cursor_at")]


def read_rules(conn: Connection, workspace_id: str, *, include_deleted: bool = False) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"SELECT {', '.join(_PUBLIC)} FROM automation_rules WHERE workspace_id = %s"
            " AND (%s OR status <> 'deleted') ORDER BY created_at, rule_id LIMIT %s",
            (workspace_id, include_deleted, MAX_LIMIT)).fetchall()


def read_rule(conn: Connection, workspace_id: str, rule_id: str) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"SELECT {', '.join(_PUBLIC)} FROM automation_rules WHERE workspace_id = %s AND rule_id = %s"
            " AND status <> 'deleted'", (workspace_id, rule_id)).fetchone()


def due_rules(conn: Connection, now: datetime, limit: int) -> list[dict[str, Any]]:
    """For the rule runner: rules with a run to finish, then active rules whose next run is due."""
    with conn.cursor(row_factory=dict_row) as cur:
        pending = cur.execute(
            "SELECT workspace_id, rule_id, definition, cursor_at, next_run_at, run_occurrence_at"
            " FROM automation_rules WHERE run_occurrence_at IS NOT NULL ORDER BY run_occurrence_at LIMIT %s",
            (limit,)).fetchall()
        due = cur.execute(
            "SELECT workspace_id, rule_id, definition, cursor_at, next_run_at, run_occurrence_at"
            " FROM automation_rules WHERE status = 'active' AND run_occurrence_at IS NULL AND next_run_at <= %s"
            " ORDER BY next_run_at LIMIT %s", (now, max(0, limit - len(pending)))).fetchall()
    return pending + due


def read_overview(conn: Connection, status: str | None = None, limit: int = MAX_LIMIT) -> dict[str, Any]:
    """Admin: every workspace's rules (soonest next run first) and totals per status."""
    with conn.cursor(row_factory=dict_row) as cur:
        rules = cur.execute(
            "SELECT workspace_id, rule_id, name, status, paused_reason, next_run_at, last_run_at, runs, posts, failures,"
            " skipped, last_failure_reason FROM automation_rules WHERE status <> 'deleted'"
            " AND (%s::text IS NULL OR status = %s) ORDER BY next_run_at NULLS LAST, workspace_id, rule_id LIMIT %s",
            (status, status, min(limit, MAX_LIMIT))).fetchall()
        totals = cur.execute(
            "SELECT status, count(*) AS rules, count(DISTINCT workspace_id) AS workspaces, sum(runs) AS runs,"
            " sum(posts) AS posts, sum(failures) AS failures FROM automation_rules WHERE status <> 'deleted'"
            " GROUP BY status ORDER BY status").fetchall()
    return {"totals": [{k: int(v) if k != "status" else v for k, v in t.items()} for t in totals], "rules": rules}
