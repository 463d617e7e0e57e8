"""The admin reports as queries: credits and publishing per day, top workspaces, tier usage, the
publishing work by state, unknown outcomes, failed destinations, the error log, generations per
day; and the workspace search.

Each reads an ``analytics.v1_*`` view (projections/analytics.py; generations read
``generation_log``), so the admin sees what an analyst querying the views sees. The admin API
(gateway/routes/reports.py) and the console (gateway/console) both call these functions: what
the console shows and exports is what the API answers. Dates are UTC days; ``since`` is
inclusive, ``until`` exclusive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

from psycopg import Connection
from psycopg.rows import dict_row


@dataclass(frozen=True)
class Report:
    name: str
    columns: list[str]
    rows: list[dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)  # since/until of a dated report


def _rows(conn: Connection, query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchall()


def _midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), timezone.utc)


def credits_daily(conn: Connection, since: date, until: date, tier: str | None = None,
                  platform: str | None = None) -> Report:
    found = _rows(conn, "SELECT * FROM analytics.v1_credits_daily WHERE day >= %(since)s AND day < %(until)s"
                  " AND (%(tier)s::text IS NULL OR tier = %(tier)s)"
                  " AND (%(platform)s::text IS NULL OR platform = %(platform)s)"
                  " ORDER BY day, tier, platform NULLS FIRST",
                  {"since": since, "until": until, "tier": tier, "platform": platform})
    return Report("credits-daily", ["day", "tier", "platform", "granted", "consumed", "released", "expired"], found,
                  {"since": since, "until": until})


def credits_top(conn: Connection, since: date, until: date, limit: int = 20) -> Report:
    found = _rows(conn, "SELECT workspace_id, sum(consumed)::bigint AS consumed, sum(released)::bigint AS released"
                  " FROM analytics.v1_credits_by_workspace_daily WHERE day >= %(since)s AND day < %(until)s"
                  " GROUP BY workspace_id ORDER BY consumed DESC NULLS LAST, workspace_id LIMIT %(limit)s",
                  {"since": since, "until": until, "limit": limit})
    return Report("credits-top", ["workspace_id", "consumed", "released"], found, {"since": since, "until": until})


PUBLISHING_COLUMNS = ["day", "platform", "tier", "published", "failed", "skipped", "cancelled",
                      "published_after_retry", "retried", "success_rate", "retry_rate", "lateness_p50_s",
                      "lateness_p95_s", "lateness_p99_s"]


def publishing_daily(conn: Connection, since: date, until: date, platform: str | None = None,
                     tier: str | None = None) -> Report:
    found = _rows(conn, "SELECT *, round(published::numeric / NULLIF(published + failed + skipped, 0), 4)"
                  " AS success_rate,"
                  " round(retried::numeric / NULLIF(published + failed + skipped + cancelled, 0), 4) AS retry_rate"
                  " FROM analytics.v1_publishing_daily WHERE day >= %(since)s AND day < %(until)s"
                  " AND (%(tier)s::text IS NULL OR tier = %(tier)s)"
                  " AND (%(platform)s::text IS NULL OR platform = %(platform)s) ORDER BY day, platform, tier",
                  {"since": since, "until": until, "tier": tier, "platform": platform})
    return Report("publishing-daily", PUBLISHING_COLUMNS, found, {"since": since, "until": until})


def generation_daily(conn: Connection, since: date, until: date) -> Report:
    found = _rows(conn, "SELECT (requested_at AT TIME ZONE 'UTC')::date AS day, COALESCE(provider, '') AS provider,"
                  " count(*) AS requested, count(*) FILTER (WHERE status = 'succeeded') AS succeeded,"
                  " count(*) FILTER (WHERE status = 'failed') AS failed,"
                  " count(*) FILTER (WHERE status = 'requested') AS pending,"
                  " round(count(*) FILTER (WHERE status = 'succeeded')::numeric"
                  "       / NULLIF(count(*) FILTER (WHERE status IN ('succeeded', 'failed')), 0), 4) AS success_rate,"
                  " COALESCE(sum(tokens_in), 0) AS tokens_in, COALESCE(sum(tokens_out), 0) AS tokens_out,"
                  " round(avg(latency_ms)) AS mean_latency_ms"
                  " FROM generation_log WHERE requested_at >= %(since)s AND requested_at < %(until)s"
                  " GROUP BY 1, 2 ORDER BY 1, 2", {"since": since, "until": until})
    columns = ["day", "provider", "requested", "succeeded", "failed", "pending", "success_rate", "tokens_in",
               "tokens_out", "mean_latency_ms"]
    return Report("generation-daily", columns, found, {"since": since, "until": until})


def tiers(conn: Connection) -> Report:
    found = _rows(conn, "SELECT * FROM analytics.v1_tier_usage ORDER BY tier", {})
    columns = ["tier", "workspaces", "posts_waiting", "avg_queue_use", "at_queue_limit", "avg_account_use",
               "at_account_limit", "credits_available"]
    return Report("tiers", columns, found)


def jobs(conn: Connection) -> Report:
    found = _rows(conn, "SELECT * FROM analytics.v1_jobs ORDER BY status", {})
    return Report("jobs", ["status", "destinations", "oldest_due_at", "last_change_at"], found)


DESTINATION_COLUMNS = ["post_id", "destination_id", "workspace_id", "social_account_id", "platform", "attempt",
                       "due_at", "updated_at", "reason"]


def unknown_outcomes(conn: Connection, limit: int = 100) -> Report:
    found = _rows(conn, "SELECT * FROM analytics.v1_destinations WHERE status = 'outcome_unknown'"
                  " ORDER BY updated_at LIMIT %(limit)s", {"limit": limit})
    return Report("unknown-outcomes", DESTINATION_COLUMNS, found)


def failed_destinations(conn: Connection, limit: int = 100) -> Report:
    """Destinations that ended failed or skipped, the last changed first: what a manual retry can publish again."""
    found = _rows(conn, "SELECT * FROM analytics.v1_destinations WHERE status IN ('failed', 'skipped')"
                  " ORDER BY updated_at DESC, post_id, destination_id LIMIT %(limit)s", {"limit": limit})
    return Report("failed-destinations", [*DESTINATION_COLUMNS[:5], "status", *DESTINATION_COLUMNS[5:]], found)


def errors(conn: Connection, since: date, until: date, limit: int = 100) -> Report:
    found = _rows(conn, "SELECT * FROM analytics.v1_publishing_errors WHERE at >= %(since)s AND at < %(until)s"
                  " ORDER BY at DESC, position DESC LIMIT %(limit)s",
                  {"since": _midnight(since), "until": _midnight(until), "limit": limit})
    columns = ["at", "workspace_id", "post_id", "social_account_id", "platform", "outcome", "attempt",
               "error_kind", "detail"]
    return Report("errors", columns, found, {"since": since, "until": until})


WORKSPACE_COLUMNS = ["workspace_id", "name", "tier", "timezone", "opened_at", "available", "posts_waiting"]


def search_workspaces(conn: Connection, text: str = "", limit: int = 50) -> Report:
    """Workspaces whose id or name contains ``text`` (any case; all when empty), exact id first, then
    by name; with their available credits and waiting posts."""
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    found = _rows(conn, "SELECT w.workspace_id, w.name, w.tier, w.timezone, w.opened_at,"
                  " COALESCE(b.available, 0) AS available, COALESCE(q.waiting, 0) AS posts_waiting"
                  " FROM analytics.v1_workspaces w"
                  " LEFT JOIN analytics.v1_wallet_balances b USING (workspace_id)"
                  " LEFT JOIN queue_workspace_summary q USING (workspace_id)"
                  " WHERE w.workspace_id ILIKE %(pattern)s OR w.name ILIKE %(pattern)s"
                  " ORDER BY w.workspace_id = %(text)s DESC, lower(w.name), w.workspace_id LIMIT %(limit)s",
                  {"pattern": pattern, "text": text, "limit": limit})
    return Report("workspaces", WORKSPACE_COLUMNS, found)
