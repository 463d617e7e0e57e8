"""Admin reports (admin key only): credits and publishing per day, top workspaces, tier usage,
the publishing work by state, unknown outcomes and the error log; JSON or CSV (``format=csv``).

Each reads an ``analytics.v1_*`` view (projections/analytics.py), so the admin sees what an
analyst querying the views sees. Dates are UTC days; ``since`` is inclusive, ``until`` exclusive.
"""

# No `from __future__ import annotations`: FastAPI must see the endpoint-local Annotated aliases.
import csv
import io
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from psycopg import sql
from psycopg.rows import dict_row

from gateway import auth
from gateway.deps import Shared
from gateway.problems import ProblemError, openapi_responses
from schemas import commands as cmd

Format = Annotated[Literal["json", "csv"], Query(description="`csv` answers text/csv with a header row")]
Since = Annotated[cmd.Day | None, Query(description="first UTC day (inclusive); default 30 days ago")]
Until = Annotated[cmd.Day | None, Query(description="UTC day after the last (exclusive); default tomorrow")]
Limit = Annotated[int, Query(ge=1, le=1000)]


def plain(value: Any) -> Any:
    """A JSON value the CSV cell is the text of."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def answer(name: str, rows: list[dict[str, Any]], columns: list[str], fmt: str, **meta: Any):
    rows = [{c: plain(r[c]) for c in columns} for r in rows]
    if fmt == "json":
        return {"report": name, **{k: plain(v) for k, v in meta.items()}, "columns": columns, "rows": rows}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    writer.writerows([["" if r[c] is None else r[c] for c in columns] for r in rows])
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})


def days(since: date | None, until: date | None) -> tuple[date, date]:
    today = datetime.now(timezone.utc).date()
    since, until = since or today - timedelta(days=30), until or today + timedelta(days=1)
    if since >= until:
        raise ProblemError(422, "invalid_query", f"since ({since}) must be before until ({until})")
    return since, until


def router(shared: Shared) -> APIRouter:
    r = APIRouter(tags=["admin"])

    def admin(caller: Annotated[auth.Principal, Depends(shared.principal)]) -> auth.Principal:
        if not caller.is_admin:
            raise ProblemError(403, "forbidden", "reports are for the admin key only")
        return caller

    Admin = Annotated[auth.Principal, Depends(admin)]
    # JSON by default; with format=csv the same rows as text/csv.
    responses = {**openapi_responses(401, 403, 422),
                 200: {"description": "the report: JSON, or with `format=csv` a CSV table with a header row",
                       "content": {"text/csv": {"schema": {"type": "string"}}}}}

    def rows(query: sql.Composable | str, params: dict[str, Any]) -> list[dict[str, Any]]:
        with shared.deps.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(query, params).fetchall()

    @r.get("/v1/admin/reports/credits-daily", summary="Credits granted, consumed, released and expired per day (admin)",
           responses=responses, description="Per UTC day, workspace tier and platform (grants and expiries have none).")
    def credits_daily(_: Admin, since: Since = None, until: Until = None, tier: str | None = None,
                      platform: str | None = None, format: Format = "json"):
        since, until = days(since, until)
        found = rows("SELECT * FROM analytics.v1_credits_daily WHERE day >= %(since)s AND day < %(until)s"
                     " AND (%(tier)s::text IS NULL OR tier = %(tier)s)"
                     " AND (%(platform)s::text IS NULL OR platform = %(platform)s)"
                     " ORDER BY day, tier, platform NULLS FIRST",
                     {"since": since, "until": until, "tier": tier, "platform": platform})
        return answer("credits-daily", found, ["day", "tier", "platform", "granted", "consumed", "released", "expired"],
                      format,
                      since=since, until=until)

    @r.get("/v1/admin/reports/credits-top", summary="Workspaces that consumed the most credits (admin)",
           responses=responses)
    def credits_top(_: Admin, since: Since = None, until: Until = None, limit: Limit = 20, format: Format = "json"):
        since, until = days(since, until)
        found = rows("SELECT workspace_id, sum(consumed)::bigint AS consumed, sum(released)::bigint AS released"
                     " FROM analytics.v1_credits_by_workspace_daily WHERE day >= %(since)s AND day < %(until)s"
                     " GROUP BY workspace_id ORDER BY consumed DESC NULLS LAST, workspace_id LIMIT %(limit)s",
                     {"since": since, "until": until, "limit": limit})
        return answer("credits-top", found, ["workspace_id", "consumed", "released"], format, since=since, until=until)

    @r.get("/v1/admin/reports/publishing-daily", summary="Publishing outcomes per day (admin)", responses=responses,
           description="Per UTC day, platform and tier: destinations published, failed, skipped, cancelled; "
           "`success_rate` = published / (published + failed + skipped); `retry_rate` = retried / ended; "
           "lateness percentiles (seconds from the due time to the recorded outcome) of the published ones.")
    def publishing_daily(_: Admin, since: Since = None, until: Until = None, platform: str | None = None,
                         tier: str | None = None, format: Format = "json"):
        since, until = days(since, until)
        found = rows("SELECT *, round(published::numeric / NULLIF(published + failed + skipped, 0), 4) AS success_rate,"
                     " round(retried::numeric / NULLIF(published + failed + skipped + cancelled, 0), 4) AS retry_rate"
                     " FROM analytics.v1_publishing_daily WHERE day >= %(since)s AND day < %(until)s"
                     " AND (%(tier)s::text IS NULL OR tier = %(tier)s)"
                     " AND (%(platform)s::text IS NULL OR platform = %(platform)s) ORDER BY day, platform, tier",
                     {"since": since, "until": until, "tier": tier, "platform": platform})
        columns = ["day", "platform", "tier", "published", "failed", "skipped", "cancelled", "published_after_retry",
                   "retried", "success_rate", "retry_rate", "lateness_p50_s", "lateness_p95_s", "lateness_p99_s"]
        return answer("publishing-daily", found, columns, format, since=since, until=until)

    @r.get("/v1/admin/reports/generation-daily", summary="AI generations per day (admin)", responses=responses,
           description="Per UTC day (of the request) and provider: generations requested, succeeded, failed, still "
           "pending; `success_rate` = succeeded / (succeeded + failed); tokens in and out; mean latency. "
           "`GET /v1/admin/generation-stats` has failures by reason and the top topics.")
    def generation_daily(_: Admin, since: Since = None, until: Until = None, format: Format = "json"):
        since, until = days(since, until)
        found = rows("SELECT (requested_at AT TIME ZONE 'UTC')::date AS day, COALESCE(provider, '') AS provider,"
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
        return answer("generation-daily", found, columns, format, since=since, until=until)

    @r.get("/v1/admin/reports/tiers", summary="Workspaces per tier and their use of the limits (admin)",
           responses=responses)
    def tiers(_: Admin, format: Format = "json"):
        found = rows("SELECT * FROM analytics.v1_tier_usage ORDER BY tier", {})
        columns = ["tier", "workspaces", "posts_waiting", "avg_queue_use", "at_queue_limit", "avg_account_use",
                   "at_account_limit", "credits_available"]
        return answer("tiers", found, columns, format)

    @r.get("/v1/admin/reports/jobs", summary="Publishing work by state (admin)", responses=responses,
           description="Destinations per state now (pending, retry_scheduled, attempting, outcome_unknown, and the "
           "ended ones), with the oldest due time. Dead letters: `GET /v1/admin/dead-letters`.")
    def jobs(_: Admin, format: Format = "json"):
        found = rows("SELECT * FROM analytics.v1_jobs ORDER BY status", {})
        return answer("jobs", found, ["status", "destinations", "oldest_due_at", "last_change_at"], format)

    @r.get("/v1/admin/reports/unknown-outcomes", summary="Destinations whose outcome is unknown (admin)",
           responses=responses, description="Waiting for review: the platform may or may not have the post.")
    def unknown_outcomes(_: Admin, limit: Limit = 100, format: Format = "json"):
        found = rows("SELECT * FROM analytics.v1_destinations WHERE status = 'outcome_unknown'"
                     " ORDER BY updated_at LIMIT %(limit)s", {"limit": limit})
        columns = ["post_id", "destination_id", "workspace_id", "social_account_id", "platform", "attempt",
                   "due_at", "updated_at", "reason"]
        return answer("unknown-outcomes", found, columns, format)

    @r.get("/v1/admin/reports/errors", summary="The last publishing failures (admin)", responses=responses,
           description="Failed, retried, skipped and unknown outcomes, newest first, with the platform's response "
           "snippet (`detail`) and error kind.")
    def errors(_: Admin, since: Since = None, until: Until = None, limit: Limit = 100, format: Format = "json"):
        since, until = days(since, until)
        found = rows("SELECT * FROM analytics.v1_publishing_errors WHERE at >= %(since)s AND at < %(until)s"
                     " ORDER BY at DESC, position DESC LIMIT %(limit)s",
                     {"since": datetime.combine(since, datetime.min.time(), timezone.utc),
                      "until": datetime.combine(until, datetime.min.time(), timezone.utc), "limit": limit})
        columns = ["at", "workspace_id", "post_id", "social_account_id", "platform", "outcome", "attempt",
                   "error_kind", "detail"]
        return answer("errors", found, columns, format, since=since, until=until)

    return r
