"""Admin reports (admin key only): credits and publishing per day, top workspaces, tier usage,
the publishing work by state, unknown outcomes, failed destinations, the error log, the workspace
search; JSON or CSV (``format=csv``).

The queries are projections/admin_reports.py (the console calls them too). Dates are UTC days;
``since`` is inclusive, ``until`` exclusive.
"""

# No `from __future__ import annotations`: FastAPI must see the endpoint-local Annotated aliases.
import csv
import io
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response

from gateway import auth
from gateway.deps import Shared
from gateway.problems import ProblemError, openapi_responses
from projections import admin_reports
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

    def run(query, *args: Any, **kwargs: Any) -> admin_reports.Report:
        with shared.deps.pool.connection() as conn:
            return query(conn, *args, **kwargs)

    def send(report: admin_reports.Report, fmt: str):
        return answer(report.name, report.rows, report.columns, fmt, **report.meta)

    @r.get("/v1/admin/reports/credits-daily", summary="Credits granted, consumed, released and expired per day (admin)",
           responses=responses, description="Per UTC day, workspace tier and platform (grants and expiries have none).")
    def credits_daily(_: Admin, since: Since = None, until: Until = None, tier: str | None = None,
                      platform: str | None = None, format: Format = "json"):
        return send(run(admin_reports.credits_daily, *days(since, until), tier, platform), format)

    @r.get("/v1/admin/reports/credits-top", summary="Workspaces that consumed the most credits (admin)",
           responses=responses)
    def credits_top(_: Admin, since: Since = None, until: Until = None, limit: Limit = 20, format: Format = "json"):
        return send(run(admin_reports.credits_top, *days(since, until), limit), format)

    @r.get("/v1/admin/reports/publishing-daily", summary="Publishing outcomes per day (admin)", responses=responses,
           description="Per UTC day, platform and tier: destinations published, failed, skipped, cancelled; "
           "`success_rate` = published / (published + failed + skipped); `retry_rate` = retried / ended; "
           "lateness percentiles (seconds from the due time to the recorded outcome) of the published ones.")
    def publishing_daily(_: Admin, since: Since = None, until: Until = None, platform: str | None = None,
                         tier: str | None = None, format: Format = "json"):
        return send(run(admin_reports.publishing_daily, *days(since, until), platform, tier), format)

    @r.get("/v1/admin/reports/generation-daily", summary="AI generations per day (admin)", responses=responses,
           description="Per UTC day (of the request) and provider: generations requested, succeeded, failed, still "
           "pending; `success_rate` = succeeded / (succeeded + failed); tokens in and out; mean latency. "
           "`GET /v1/admin/generation-stats` has failures by reason and the top topics.")
    def generation_daily(_: Admin, since: Since = None, until: Until = None, format: Format = "json"):
        return send(run(admin_reports.generation_daily, *days(since, until)), format)

    @r.get("/v1/admin/reports/tiers", summary="Workspaces per tier and their use of the limits (admin)",
           responses=responses)
    def tiers(_: Admin, format: Format = "json"):
        return send(run(admin_reports.tiers), format)

    @r.get("/v1/admin/reports/jobs", summary="Publishing work by state (admin)", responses=responses,
           description="Destinations per state now (pending, retry_scheduled, attempting, outcome_unknown, and the "
           "ended ones), with the oldest due time. Dead letters: `GET /v1/admin/dead-letters`.")
    def jobs(_: Admin, format: Format = "json"):
        return send(run(admin_reports.jobs), format)

    @r.get("/v1/admin/reports/unknown-outcomes", summary="Destinations whose outcome is unknown (admin)",
           responses=responses, description="Waiting for review: the platform may or may not have the post.")
    def unknown_outcomes(_: Admin, limit: Limit = 100, format: Format = "json"):
        return send(run(admin_reports.unknown_outcomes, limit), format)

    @r.get("/v1/admin/reports/failed-destinations", summary="Destinations that ended failed or skipped (admin)",
           responses=responses, description="The last changed first: what the manual retry "
           "(`POST /v1/admin/workspaces/{ws}/posts/{post}/destinations/{dest}/retry`) can publish again.")
    def failed_destinations(_: Admin, limit: Limit = 100, format: Format = "json"):
        return send(run(admin_reports.failed_destinations, limit), format)

    @r.get("/v1/admin/reports/errors", summary="The last publishing failures (admin)", responses=responses,
           description="Failed, retried, skipped and unknown outcomes, newest first, with the platform's response "
           "snippet (`detail`) and error kind.")
    def errors(_: Admin, since: Since = None, until: Until = None, limit: Limit = 100, format: Format = "json"):
        return send(run(admin_reports.errors, *days(since, until), limit), format)

    @r.get("/v1/admin/workspaces", summary="Find workspaces by id or name (admin)", responses=responses,
           description="Workspaces whose id or name contains `q` (any case; every workspace when empty), the exact "
           "id first, then by name, with their available credits and waiting posts.")
    def search_workspaces(_: Admin, q: Annotated[str, Query(max_length=200)] = "", limit: Limit = 50,
                          format: Format = "json"):
        return send(run(admin_reports.search_workspaces, q, limit), format)

    return r
