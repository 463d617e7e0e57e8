"""The bulk path of the tiers read model (``projections/tiers.py``): the tiers an admin defined,
scheduled tier changes, and a workspace's tier and limits carried into ``workspaces`` and
``queue_workspaces``. It runs after the workspaces and queue bulk paths (``catalogue`` order), so
a workspace opened earlier in the same page is there to change."""

from __future__ import annotations

from psycopg import Connection

from projections.bulk.rows import Raw, Rows, only
from schemas import events as ev

_TIER_EVENTS = (ev.TierDefined, ev.TierChanged, ev.TierChangeScheduled, ev.LimitsOverridden)


def tiers(conn: Connection, events: list[Raw]) -> None:
    events = only(events, *_TIER_EVENTS)
    defined = Rows("tiers", ["tier"], ["tier", "version", "limits", "defined_at"], jsonb=["limits"])
    scheduled = Rows("tier_changes_scheduled", ["workspace_id"], ["workspace_id", "to_tier", "effective_at"])
    # Every column: a changed row is written back whole.
    workspaces = Rows("workspaces", ["workspace_id"], ["workspace_id", "name", "tier", "timezone", "limit_overrides",
                                                       "limits", "opened_at", "missed_window_s"],
                      jsonb=["limit_overrides", "limits"])
    queue = Rows("queue_workspaces", ["workspace_id"], ["workspace_id", "tier", "queue_size"])
    defined.load(conn, [(e.data["tier"],) for e in events if e.type == ev.TierDefined.type])
    changes = [(e.workspace_id,) for e in events if e.type != ev.TierDefined.type]
    for rows in (scheduled, workspaces, queue):
        rows.load(conn, changes)

    def update(rows: Rows, ws: str, **values: object) -> None:
        row = rows.get((ws,))
        if row is not None:
            row.update(values)
            rows.changed((ws,))

    for e in events:
        d, ws = e.data, e.workspace_id
        if e.type == ev.TierDefined.type:
            row = defined.get((d["tier"],))
            values = {"tier": d["tier"], "version": d["version"], "limits": dict(d["limits"]), "defined_at": e.time}
            if row is None:
                defined.insert(values)
            elif row["version"] < d["version"]:
                row.update(values)
                defined.changed((d["tier"],))
        elif e.type == ev.TierChanged.type:
            update(workspaces, ws, tier=d["to_tier"], limits=dict(d["limits"]))
            update(queue, ws, tier=d["to_tier"], queue_size=d["limits"]["queue_size"])
            scheduled.delete((ws,))
        elif e.type == ev.TierChangeScheduled.type:
            values = {"workspace_id": ws, "to_tier": d["to_tier"], "effective_at": d["effective_at"]}
            if not scheduled.insert(values):
                update(scheduled, ws, **values)
        else:  # LimitsOverridden
            update(workspaces, ws, limit_overrides=dict(d["limit_overrides"]), limits=dict(d["limits"]))
            update(queue, ws, queue_size=d["limits"]["queue_size"])
    for rows in (defined, scheduled, workspaces, queue):
        rows.store(conn)


FOLDS = {"tiers": (tiers, _TIER_EVENTS)}
