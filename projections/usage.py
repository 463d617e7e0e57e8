"""Usage read model: per workspace and local day (the workspace's time zone) how much of what
happened, and the workspace's current credit period for period totals.

Metrics (``key`` is the platform where there is one, else ''):
- ``posts_scheduled`` (by the day the post is due), ``posts_published``, ``posts_skipped``,
  ``posts_failed`` (by the day it happened), per platform;
- ``generations``;
- ``credits_granted``, ``credits_consumed``, ``credits_released``, ``credits_expired``.

A counter row remembers the last event position it counted, so a redelivered event counts once.
Rows are per day and metric: the table grows by days, not by events.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from psycopg import Connection
from psycopg.rows import dict_row

from projections.base import Projection, applies
from schemas import events as ev
from schemas.events import CloudEvent, EventData

DDL = """
CREATE TABLE IF NOT EXISTS usage_daily (
    workspace_id  text    NOT NULL,
    day           date    NOT NULL,
    metric        text    NOT NULL,
    key           text    NOT NULL,
    amount        bigint  NOT NULL,
    last_position bigint  NOT NULL,
    PRIMARY KEY (workspace_id, day, metric, key)
);
CREATE TABLE IF NOT EXISTS usage_periods (
    workspace_id    text        PRIMARY KEY,
    period_start    timestamptz NOT NULL,
    renews_at       timestamptz NOT NULL,
    tier            text        NOT NULL,
    monthly_credits integer     NOT NULL,
    last_position   bigint      NOT NULL
);
"""
TABLES = ("usage_daily", "usage_periods")

_APPLIED = (ev.PostQueued, ev.DestinationPublished, ev.DestinationSkipped, ev.DestinationFailed,
            ev.GenerationCounted, ev.CreditsGranted, ev.HoldConsumed, ev.HoldReleased, ev.GrantExpired,
            ev.CreditPeriodStarted, ev.AllowanceChanged)

_COUNT = """
INSERT INTO usage_daily AS u (workspace_id, day, metric, key, amount, last_position)
SELECT %(ws)s, COALESCE(%(day)s::date, (%(at)s::timestamptz AT TIME ZONE COALESCE(w.timezone, 'UTC'))::date),
       %(metric)s, %(key)s, %(amount)s, %(pos)s
  FROM (SELECT 1) AS one LEFT JOIN workspaces w ON w.workspace_id = %(ws)s
    ON CONFLICT (workspace_id, day, metric, key) DO UPDATE
   SET amount = u.amount + EXCLUDED.amount, last_position = EXCLUDED.last_position
 WHERE u.last_position < EXCLUDED.last_position
"""
# A destination's outcome, counted under its platform from the queue read model (applied before
# this one), in the same statement.
_COUNT_DESTINATION = """
INSERT INTO usage_daily AS u (workspace_id, day, metric, key, amount, last_position)
SELECT %(ws)s, (%(at)s::timestamptz AT TIME ZONE COALESCE(w.timezone, 'UTC'))::date, %(metric)s,
       COALESCE((SELECT platform FROM queue_destinations
                  WHERE post_id = %(post_id)s AND destination_id = %(destination_id)s), ''),
       1, %(pos)s
  FROM (SELECT 1) AS one LEFT JOIN workspaces w ON w.workspace_id = %(ws)s
    ON CONFLICT (workspace_id, day, metric, key) DO UPDATE
   SET amount = u.amount + EXCLUDED.amount, last_position = EXCLUDED.last_position
 WHERE u.last_position < EXCLUDED.last_position
"""


@applies(*_APPLIED)
def apply(conn: Connection, event: CloudEvent, data: EventData) -> None:
    ws = event.workspaceid

    def count(metric: str, amount: int, key: str = "", day: str | None = None) -> None:
        if amount:
            conn.execute(_COUNT, {"ws": ws, "day": day, "at": event.time, "metric": metric, "key": key,
                                  "amount": amount, "pos": event.position})

    def count_destination(metric: str, post_id: str, destination_id: str) -> None:
        conn.execute(_COUNT_DESTINATION, {"ws": ws, "at": event.time, "metric": metric, "pos": event.position,
                                          "post_id": post_id, "destination_id": destination_id})

    match data:
        case ev.PostQueued() if data.due_day is not None:
            for platform in sorted(set(data.platforms)):
                count("posts_scheduled", data.platforms.count(platform), platform, data.due_day)
        case ev.DestinationPublished():
            count_destination("posts_published", data.post_id, data.destination_id)
        case ev.DestinationSkipped():
            count_destination("posts_skipped", data.post_id, data.destination_id)
        case ev.DestinationFailed():
            count_destination("posts_failed", data.post_id, data.destination_id)
        case ev.GenerationCounted():
            count("generations", 1, day=data.day)
        case ev.CreditsGranted():
            count("credits_granted", data.amount)
        case ev.HoldConsumed():
            count("credits_consumed", data.amount)
        case ev.HoldReleased():
            count("credits_released", data.amount)
        case ev.GrantExpired():
            count("credits_expired", data.amount)
        case ev.CreditPeriodStarted():
            conn.execute(
                "INSERT INTO usage_periods AS p VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (workspace_id) DO UPDATE"
                " SET period_start = EXCLUDED.period_start, renews_at = EXCLUDED.renews_at, tier = EXCLUDED.tier,"
                " monthly_credits = EXCLUDED.monthly_credits, last_position = EXCLUDED.last_position"
                " WHERE p.last_position < EXCLUDED.last_position",
                (ws, data.period_start, data.renews_at, data.tier, data.monthly_credits, event.position),
            )
        case ev.AllowanceChanged():
            conn.execute("UPDATE usage_periods SET tier = %s, monthly_credits = %s, last_position = %s"
                         " WHERE workspace_id = %s AND last_position < %s",
                         (data.tier, data.monthly_credits, event.position, ws, event.position))


PROJECTION = Projection(name="usage", ddl=DDL, tables=TABLES, handles=apply.handles, apply=apply,
                        needs=("workspaces", "queue"))  # the time zone, a destination's platform


def read_usage(conn: Connection, workspace_id: str, day_from: date | None = None,
               day_to: date | None = None) -> dict[str, Any] | None:
    """Usage per day between the two local days (default: the current credit period), and the totals.
    None when the workspace has no period (unknown, or opened before periods existed and never renewed)."""
    with conn.cursor(row_factory=dict_row) as cur:
        period = cur.execute(
            "SELECT p.period_start, p.renews_at, p.tier, p.monthly_credits,"
            " (p.period_start AT TIME ZONE COALESCE(w.timezone, 'UTC'))::date AS first_day,"
            " (p.renews_at AT TIME ZONE COALESCE(w.timezone, 'UTC'))::date - 1 AS last_day"
            " FROM usage_periods p LEFT JOIN workspaces w USING (workspace_id) WHERE p.workspace_id = %s",
            (workspace_id,),
        ).fetchone()
        if period is None:
            return None
        day_from = day_from or period["first_day"]
        day_to = day_to or period["last_day"]
        rows = cur.execute(
            "SELECT day, metric, key, amount FROM usage_daily WHERE workspace_id = %s AND day BETWEEN %s AND %s"
            " ORDER BY day, metric, key",
            (workspace_id, day_from, day_to),
        ).fetchall()
    days: dict[str, dict[str, Any]] = {}
    totals: dict[str, Any] = {}
    for row in rows:
        day = days.setdefault(row["day"].isoformat(), {})
        for bucket in (day, totals):
            if row["key"]:
                bucket.setdefault(row["metric"], {})
                bucket[row["metric"]][row["key"]] = bucket[row["metric"]].get(row["key"], 0) + row["amount"]
            else:
                bucket[row["metric"]] = bucket.get(row["metric"], 0) + row["amount"]
    return {"workspace_id": workspace_id, "from": day_from.isoformat(), "to": day_to.isoformat(),
            "period": {k: period[k] for k in ("period_start", "renews_at", "tier", "monthly_credits")},
            "days": [{"day": d, **m} for d, m in days.items()], "totals": totals}
