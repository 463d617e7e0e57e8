"""The bulk path of the automation rules read model (``projections/automation_rules.py``): the page's
rows loaded once, each event folded in with the live path's own ``fold``, written back once."""

from __future__ import annotations

from psycopg import Connection

from projections import automation_rules as live
from projections.bulk.rows import Raw, Rows, only


def automation_rules(conn: Connection, events: list[Raw]) -> None:
    events = only(events, *live.APPLIED)
    rows = Rows("automation_rules", ["workspace_id", "rule_id"], live.COLUMNS, jsonb=live.JSONB)
    rows.load(conn, [(e.workspace_id, e.data["rule_id"]) for e in events])
    for e in events:
        key = (e.workspace_id, e.data["rule_id"])
        row = live.fold(rows.get(key), e.type, e.data, e.workspace_id, e.time, e.position)
        if row is None:
            continue
        if rows.get(key) is None:
            rows.insert(row)
        else:
            rows.rows[key] = row
            rows.changed(key)
    rows.store(conn)


FOLDS = {"automation_rules": (automation_rules, live.APPLIED)}
