"""The admin console: server-rendered pages under ``/console`` over the same read-model queries the
admin API answers from, and forms that send the same commands the admin API sends.

Every page needs a session logged in with a key holding the ``admin`` scope (session.py); a page
asked for without one redirects to the login form. Every POST carries the session's CSRF token
(403 without it) and answers with a redirect (303) to a page, which shows what happened.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any, Callable
from zoneinfo import ZoneInfo
from urllib.parse import parse_qs, urlencode

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway import auth
from gateway.console import charts
from gateway.console.session import CSRF_FIELD, PATH, Sealer, Session
from gateway.deps import Shared
from gateway.problems import ProblemError
from gateway.rate_limits import client_bucket
from gateway.routes import calendar as calendar_api
from gateway.routes import reports
from herald.audit.history import History, NotFound, Subject
from herald.storage.tolerant_time import tolerate_out_of_range
from projections import accounts, admin_reports, generations, limit_check, posts, queue, usage, wallet, workspaces
from projections import calendar as planning
from schemas import api
from schemas import commands as cmd
from schemas.statuses import ACTIVE, DESTINATION_STATUSES

HERE = Path(__file__).parent
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
FILL_GAPS_UP_TO_DAYS = 120  # a longer range is charted by the days that have data only


class LoginRequired(Exception):
    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class Refused(Exception):
    """Answered with the error page."""

    def __init__(self, status: int, message: str) -> None:
        self.status, self.message = status, message


@dataclass(frozen=True)
class Admin:
    session: Session
    principal: auth.Principal


@dataclass(frozen=True)
class Posted:
    admin: Admin
    form: dict[str, str]


def safe_back(path: str | None, default: str = PATH + "/") -> str:
    """A redirect target inside the console only (no open redirect)."""
    if path and path.startswith(PATH + "/") and not path.startswith("//") and "\\" not in path and "\n" not in path:
        return path
    return default


def day_param(value: str | None, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise Refused(422, f"{name} must be a day such as 2026-12-01, not {value[:40]!r}") from None


def dated(request: Request) -> tuple[date, date]:
    """The page's since/until (UTC days), by the reports' own rule (default: the last 30 days)."""
    q = request.query_params
    try:
        return reports.days(day_param(q.get("since"), "since"), day_param(q.get("until"), "until"))
    except ProblemError as problem:
        raise Refused(problem.status, problem.detail) from None


def create(shared: Shared) -> FastAPI:
    deps = shared.deps
    console = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    console.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.globals.update(prefix=PATH, csrf_field=CSRF_FIELD, statuses=sorted(DESTINATION_STATUSES))
    templates.env.filters["when"] = when
    sealer = Sealer(deps.admin_api_key)

    @console.middleware("http")
    async def hardened(request: Request, call_next):  # noqa: ANN001, ANN202 - Starlette's middleware signature
        response = await call_next(request)
        # Scripts and styles from the console only (htmx is served from static/), no framing, pages not cached.
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if not request.url.path.startswith(f"{PATH}/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @cache
    def history() -> History:
        return History(deps.app)

    # Sessions ------------------------------------------------------------------------------

    def authenticated(session: Session | None) -> auth.Principal | None:
        if session is None or session.key is None:
            return None
        found = auth.authenticate(deps.pool, deps.admin_api_key, session.key)
        return found if found is not None and found.is_admin else None

    def admin(request: Request) -> Admin:
        session = sealer.read(request)
        principal = authenticated(session)
        if principal is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise LoginRequired(target)
        request.state.api_key_id = principal.key_id  # the gateway's access log attributes the request
        return Admin(session, principal)

    async def posted(request: Request) -> Posted:
        """The form of a POST from a logged-in admin, its CSRF token checked (403 without it)."""
        form = await form_of(request)
        session = sealer.read(request)
        if session is None or not session.csrf_matches(form.get(CSRF_FIELD)):
            raise Refused(403, "This form's CSRF token is missing or does not match your session: reload the page "
                               "and send the form again.")
        principal = await run(authenticated, session)
        if principal is None:
            raise LoginRequired(PATH + "/")
        request.state.api_key_id = principal.key_id
        return Posted(Admin(session, principal), form)

    async def form_of(request: Request) -> dict[str, str]:
        if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return {}
        fields = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
        return {name: values[-1] for name, values in fields.items()}

    def page(request: Request, session: Session, template: str, status: int = 200, **context: Any) -> Response:
        response = templates.TemplateResponse(request, template, {"session": session, **context}, status_code=status)
        if session.notice is not None:  # shown once
            sealer.write(response, session.with_notice(None), request)
        return response

    def redirect(request: Request, session: Session, to: str, notice: str | None = None) -> Response:
        response = RedirectResponse(to, status_code=303)
        if notice is not None:
            sealer.write(response, session.with_notice(notice), request)
        return response

    @console.exception_handler(LoginRequired)
    def to_login(request: Request, error: LoginRequired) -> Response:
        return RedirectResponse(f"{PATH}/login?{urlencode({'next': error.next_path})}", status_code=303)

    @console.exception_handler(Refused)
    def refused(request: Request, error: Refused) -> Response:
        return templates.TemplateResponse(request, "error.html", {"status": error.status, "message": error.message,
                                                                  "session": None}, status_code=error.status)

    @console.exception_handler(StarletteHTTPException)
    def http_error(request: Request, error: StarletteHTTPException) -> Response:
        return refused(request, Refused(error.status_code, str(error.detail)))

    @console.exception_handler(RequestValidationError)
    def invalid(request: Request, error: RequestValidationError) -> Response:
        where = "; ".join(f"{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}" for e in error.errors())
        return refused(request, Refused(422, f"This address has a bad parameter ({where})."))

    @console.exception_handler(ProblemError)
    def problem(request: Request, error: ProblemError) -> Response:
        return refused(request, Refused(error.status, f"{error.reason_code}: {error.detail}"))

    @contextlib.contextmanager
    def read():  # noqa: ANN202 - a pooled connection, as the API's reads take one
        with deps.pool.connection() as conn:
            tolerate_out_of_range(conn.adapters)  # one stored row out of Python's range must not fail the page
            yield conn

    # Login and logout ----------------------------------------------------------------------

    @console.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = PATH + "/"):
        session = sealer.read(request)
        if authenticated(session) is not None:
            return RedirectResponse(safe_back(next), status_code=303)
        fresh = session if session is not None and session.key is None else Session.anonymous()
        response = page(request, fresh, "login.html", next=safe_back(next), error=None)
        sealer.write(response, fresh, request)
        return response

    @console.post("/login", response_class=HTMLResponse)
    async def login(request: Request):
        form = await form_of(request)
        session = sealer.read(request)
        if session is None or not session.csrf_matches(form.get(CSRF_FIELD)):
            raise Refused(403, "This form's CSRF token is missing or does not match your session: reload the login "
                               "page and log in again.")
        client = client_bucket(request.client.host if request.client else None)
        if deps.failed_auth is not None and not deps.failed_auth.peek(client).allowed:
            return page(request, session, "login.html", status=429, next=safe_back(form.get("next")),
                        error="Too many failed logins from this address; wait a minute and try again.")
        key = form.get("api_key", "").strip()
        principal = await run(auth.authenticate, deps.pool, deps.admin_api_key, key) if key else None
        if principal is None or not principal.is_admin:
            if deps.failed_auth is not None:
                deps.failed_auth.take(client)
            return page(request, session, "login.html", status=401, next=safe_back(form.get("next")),
                        error="That is not a valid key with the admin scope.")
        response = RedirectResponse(safe_back(form.get("next")), status_code=303)
        sealer.write(response, session.logged_in(key), request)
        return response

    @console.post("/logout")
    async def logout(request: Request):
        await posted(request)
        response = RedirectResponse(f"{PATH}/login", status_code=303)
        sealer.clear(response, request)
        return response

    # Overview ------------------------------------------------------------------------------

    @console.get("/", response_class=HTMLResponse)
    def overview(request: Request):
        who = admin(request)
        since, until = dated(request)
        with read() as conn:
            credits = admin_reports.credits_daily(conn, since, until)
            publishing = admin_reports.publishing_daily(conn, since, until)
            generated = admin_reports.generation_daily(conn, since, until)
            gen_stats = generations.read_stats(conn, datetime.combine(since, datetime.min.time(), timezone.utc))
            tiers = admin_reports.tiers(conn)
            top = admin_reports.credits_top(conn, since, until, 10)
        day_list = calendar_days(since, until, [r["day"] for r in (*credits.rows, *publishing.rows, *generated.rows)])
        credit_days = per_day(credits.rows, day_list, ("granted", "consumed", "released", "expired"))
        publish_days = per_day(publishing.rows, day_list, ("published", "failed", "skipped", "cancelled"))
        generation_days = per_day(generated.rows, day_list, ("succeeded", "failed"))
        platforms = per_key(publishing.rows, "platform", ("published", "failed", "skipped", "cancelled", "retried"))
        for row in platforms:
            ended = row["published"] + row["failed"] + row["skipped"]
            row["success_rate"] = round(row["published"] / ended, 4) if ended else None
        credit_platforms = per_key([r for r in credits.rows if r["platform"]], "platform", ("consumed", "released"))
        totals = {k: sum(d[k] for d in credit_days.values()) for k in ("granted", "consumed", "released", "expired")}
        totals.update({k: sum(d[k] for d in publish_days.values()) for k in ("published", "failed", "skipped")})
        totals["generations"] = sum(int(r["requested"]) for r in generated.rows)
        ended = totals["published"] + totals["failed"] + totals["skipped"]
        totals["success_rate"] = round(totals["published"] / ended, 4) if ended else None
        return page(
            request, who.session, "overview.html", active="overview", since=since, until=until,
            query=urlencode({"since": since.isoformat(), "until": until.isoformat()}), totals=totals,
            credit_chart=charts.bars("Credits per day", ["consumed", "granted"],
                                     [(d, [v["consumed"], v["granted"]]) for d, v in credit_days.items()]),
            publish_chart=charts.bars("Destinations per day", ["published", "failed"],
                                      [(d, [v["published"], v["failed"]]) for d, v in publish_days.items()]),
            generation_chart=charts.bars("Generations per day", ["succeeded", "failed"],
                                         [(d, [v["succeeded"], v["failed"]]) for d, v in generation_days.items()]),
            tier_chart=charts.bars("Workspaces per tier", ["workspaces"],
                                   [(r["tier"], [r["workspaces"]]) for r in tiers.rows]),
            credit_days=credit_days, publish_days=publish_days, platforms=platforms, credit_platforms=credit_platforms,
            gen_stats=gen_stats, tiers=tiers.rows, top=top.rows,
        )

    # Workspaces ----------------------------------------------------------------------------

    @console.get("/workspaces", response_class=HTMLResponse)
    def workspace_search(request: Request, q: str = ""):
        who = admin(request)
        with read() as conn:
            found = admin_reports.search_workspaces(conn, q.strip()[:200], 50)
        return page(request, who.session, "workspaces.html", active="workspaces", q=q, found=found.rows)

    @console.get("/workspaces/{workspace_id}", response_class=HTMLResponse)
    def workspace_page(request: Request, workspace_id: str, cursor: str | None = None,
                       view: str = "week"):
        who = admin(request)
        wanted = request.query_params.getlist("status") or None
        if view not in planning.VIEWS:
            raise Refused(422, f"view is week or month, not {view[:20]!r}")
        anchor = day_param(request.query_params.get("date"), "date")
        if anchor is not None and not calendar_api.EARLIEST <= anchor <= calendar_api.LATEST:
            raise Refused(422, f"date must be between {calendar_api.EARLIEST} and {calendar_api.LATEST}")
        with read() as conn:
            found = workspaces.read_workspace(conn, workspace_id)
            if found is None:
                raise Refused(404, f"There is no workspace {workspace_id}.")
            held = wallet.read_wallet(conn, workspace_id)
            expiries = wallet.read_expiries(conn, workspace_id)
            used = usage.read_usage(conn, workspace_id)
            linked = accounts.list_accounts(conn, workspace_id)
            limits = limit_rows(conn, workspace_id, linked)
            try:
                waiting = queue.read_queue(conn, workspace_id, statuses=wanted, cursor=cursor, limit=50)
            except ValueError as error:
                raise Refused(422, str(error)) from None
            shown = calendar_of(conn, found, view, anchor)
        return page(request, who.session, "workspace.html", active="workspaces", ws=found, wallet=held,
                    expiries=expiries, usage=used, accounts=linked, limits=limits, queue=waiting,
                    wanted=wanted or list(ACTIVE), calendar=shown)

    def calendar_of(conn, ws: dict[str, Any], view: str, anchor: date | None) -> dict[str, Any]:  # noqa: ANN001
        """The week or month around ``anchor`` (default today, local), by the calendar API's own query:
        planned slots without content ("needs content"), drafts and post destinations, by local day."""
        zone = ZoneInfo(ws["timezone"])
        now = datetime.now(timezone.utc)
        today = now.astimezone(zone).date()
        first, last = planning.calendar_range(view, anchor or today, zone)
        items = planning.read_calendar(conn, ws["workspace_id"], zone, first, last, now)
        by_day: dict[str, list[dict[str, Any]]] = {}
        for item in items:
            by_day.setdefault(item["local_date"], []).append(item)
        grid_start = first - timedelta(days=first.weekday())
        grid_end = last + timedelta(days=6 - last.weekday())
        weeks = [[grid_start + timedelta(days=w * 7 + d) for d in range(7)]
                 for w in range(((grid_end - grid_start).days + 1) // 7)]
        step = timedelta(days=7) if view == "week" else None
        previous = first - step if step else (first - timedelta(days=1)).replace(day=1)
        following = first + step if step else last + timedelta(days=1)
        return {"view": view, "first": first, "last": last, "today": today, "weeks": weeks, "by_day": by_day,
                "timezone": zone.key, "previous": previous, "next": following,
                "needs_content": sum(1 for i in items if i["status"] == "needs_content")}

    def limit_rows(conn, workspace_id: str, linked: list[dict[str, Any]]) -> list[dict[str, Any]]:  # noqa: ANN001
        """Usage against the tier's limits, by the limit check the API answers (limits/check)."""
        rows = [c for c in limit_check.check(conn, workspace_id, "schedule")["checks"] if c["limit"] == "queue_size"]
        for platform in sorted({a["platform"] for a in linked}):
            for action in ("schedule", "connect"):
                for c in limit_check.check(conn, workspace_id, action, platform=platform)["checks"]:
                    if c["limit"] in ("daily_posts_per_platform", "accounts_per_platform"):
                        rows.append({**c, "platform": platform})
        rows += limit_check.check(conn, workspace_id, "generate")["checks"]
        for row in rows:
            row["use"] = min(1.0, row["current"] / row["allowed"]) if row["allowed"] else 1.0
        return rows

    # Posts ---------------------------------------------------------------------------------

    @console.get("/workspaces/{workspace_id}/posts/{post_id}", response_class=HTMLResponse)
    def post_page(request: Request, workspace_id: str, post_id: str, cursor: str | None = None,
                  version: int | None = None):
        who = admin(request)
        subject = Subject("post", post_id, workspace_id)
        with read() as conn:
            found = posts.read_post(conn, workspace_id, post_id)
            if found is None:
                raise Refused(404, f"Workspace {workspace_id} has no post {post_id}.")
            try:
                timeline = history().page(conn, subject, cursor=cursor, limit=100)
                past = history().state_at(conn, subject, version) if version is not None else None
            except NotFound as error:
                raise Refused(404, str(error)) from None
            except ValueError as error:
                raise Refused(422, str(error)) from None
        attempts: dict[str, list[dict[str, Any]]] = {}
        for entry in timeline["entries"]:
            destination = entry["data"].get("destination_id") if isinstance(entry["data"], dict) else None
            if destination is not None and entry["kind"] == "event":
                attempts.setdefault(destination, []).append(entry)
        latest = max((e["version"] for e in timeline["entries"] if e["version"] is not None), default=0)
        return page(request, who.session, "post.html", active="workspaces", post=found, timeline=timeline,
                    attempts=attempts, past=past, version=version, latest=latest,
                    back=request.url.path + (f"?{request.url.query}" if request.url.query else ""))

    # Job monitor ---------------------------------------------------------------------------

    @console.get("/jobs", response_class=HTMLResponse)
    def jobs(request: Request):
        who = admin(request)
        since, until = dated(request)
        with read() as conn:
            states = admin_reports.jobs(conn)
            unknown = admin_reports.unknown_outcomes(conn, 100)
            failed = admin_reports.failed_destinations(conn, 50)
            errors = admin_reports.errors(conn, since, until, 50)
        return page(request, who.session, "jobs.html", active="jobs", states=states.rows, unknown=unknown.rows,
                    failed=failed.rows, errors=errors.rows, since=since, until=until,
                    query=urlencode({"since": since.isoformat(), "until": until.isoformat()}))

    @console.get("/dead-letters", response_class=HTMLResponse)
    def dead_letters(request: Request):
        who = admin(request)
        letters, trouble = [], None
        if deps.dead_letters is None:
            trouble = "Dead letters are not wired into this gateway."
        else:
            try:
                letters = [d.to_dict() for d in deps.dead_letters.list(100)]
            except Exception:  # the broker is down or slow: say so, the rest of the console works
                trouble = "The dead-letter topic could not be read just now; reload in a moment."
        return page(request, who.session, "dead_letters.html", active="dead-letters", letters=letters,
                    trouble=trouble)

    # Commands: the admin API's own ---------------------------------------------------------

    def decided(who: Admin, workspace_id: str, payload: cmd.Payload) -> str:
        """Decide as the admin API does; wait (bounded) until the read models show it; a sentence."""
        try:
            decision = shared.decide(who.principal, shared.within(who.principal, workspace_id), payload, None)
        except ProblemError as problem:
            return f"Refused ({problem.status} {problem.reason_code}): {problem.detail}"
        if decision.position is not None:
            try:
                with shared.read(workspace_id, decision.position, Response()):
                    pass
            except ProblemError:
                pass  # the page may show the old state for a moment; the decision stands
        return ""

    @console.post("/workspaces/{workspace_id}/posts/{post_id}/destinations/{destination_id}/retry")
    async def retry(request: Request, workspace_id: str, post_id: str, destination_id: str):
        sent = await posted(request)
        payload = cmd.RetryDestination(post_id=post_id, destination_id=destination_id)
        refusal = await run(decided, sent.admin, workspace_id, payload)
        notice = refusal or f"Retry accepted: {destination_id} of post {post_id} waits again, due now."
        return redirect(request, sent.admin.session, safe_back(sent.form.get("back")), notice)

    @console.post("/workspaces/{workspace_id}/posts/{post_id}/destinations/{destination_id}/resolution")
    async def resolve(request: Request, workspace_id: str, post_id: str, destination_id: str):
        sent = await posted(request)
        form = sent.form
        back = safe_back(form.get("back"))
        try:
            body = api.ResolveOutcomeRequest(
                attempt=int(form.get("attempt", "0") or 0), resolution=form.get("resolution", ""),
                platform_post_id=form.get("platform_post_id") or None, url=form.get("url") or None,
                note=form.get("note", ""))
        except (ValidationError, ValueError) as error:
            reasons = "; ".join(e["msg"] for e in error.errors()) if isinstance(error, ValidationError) else str(error)
            return redirect(request, sent.admin.session, back, f"Not sent: {reasons}")
        payload = cmd.ResolvePublishOutcome(post_id=post_id, destination_id=destination_id, **body.model_dump())
        refusal = await run(decided, sent.admin, workspace_id, payload)
        notice = refusal or f"Resolved: {destination_id} of post {post_id} recorded as {body.resolution.value}."
        return redirect(request, sent.admin.session, back, notice)

    @console.post("/dead-letters/{dead_letter_id}/replay")
    async def redrive(request: Request, dead_letter_id: str):
        sent = await posted(request)

        def replay() -> str:
            if deps.dead_letters is None:
                return "Dead letters are not wired into this gateway."
            try:
                replayed = deps.dead_letters.replay(dead_letter_id)
            except KeyError:
                return f"There is no dead letter {dead_letter_id}."
            except Exception:
                return "The dead letter could not be re-driven just now; try again in a moment."
            return f"Re-driven: dead letter {dead_letter_id} was sent again to {replayed.source_topic}."
        return redirect(request, sent.admin.session, f"{PATH}/dead-letters", await run(replay))

    # CSV: the admin API's reports, as its `format=csv` answers them --------------------------

    exports: dict[str, Callable[..., admin_reports.Report]] = {
        "credits-daily": lambda conn, since, until: admin_reports.credits_daily(conn, since, until),
        "credits-top": lambda conn, since, until: admin_reports.credits_top(conn, since, until),
        "publishing-daily": lambda conn, since, until: admin_reports.publishing_daily(conn, since, until),
        "generation-daily": lambda conn, since, until: admin_reports.generation_daily(conn, since, until),
        "errors": lambda conn, since, until: admin_reports.errors(conn, since, until),
        "tiers": lambda conn, since, until: admin_reports.tiers(conn),
        "jobs": lambda conn, since, until: admin_reports.jobs(conn),
        "unknown-outcomes": lambda conn, since, until: admin_reports.unknown_outcomes(conn),
        "failed-destinations": lambda conn, since, until: admin_reports.failed_destinations(conn),
    }

    @console.get("/export/{name}.csv")
    def export(request: Request, name: str):
        admin(request)
        if name not in exports:
            raise Refused(404, f"There is no report {name}.")
        since, until = dated(request)
        with read() as conn:
            report = exports[name](conn, since, until)
        return reports.answer(report.name, report.rows, report.columns, "csv", **report.meta)

    return console


async def run(function: Callable[..., Any], *args: Any) -> Any:
    """A blocking call (database, broker) off the event loop."""
    from starlette.concurrency import run_in_threadpool
    return await run_in_threadpool(function, *args)


def when(value: Any) -> str:
    if isinstance(value, datetime):
        value = value.astimezone(timezone.utc)
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(value, str):
        try:
            return when(datetime.fromisoformat(value))
        except ValueError:
            return value
    return "" if value is None else str(value)


def calendar_days(since: date, until: date, present: list[date]) -> list[date]:
    if (until - since).days <= FILL_GAPS_UP_TO_DAYS:
        return [since + timedelta(days=i) for i in range((until - since).days)]
    return sorted(set(present))


def per_day(rows: list[dict[str, Any]], days: list[date], fields: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    out = {d.isoformat(): dict.fromkeys(fields, 0) for d in days}
    for row in rows:
        bucket = out.setdefault(row["day"].isoformat(), dict.fromkeys(fields, 0))
        for f in fields:
            bucket[f] += int(row[f] or 0)
    return out


def per_key(rows: list[dict[str, Any]], key: str, fields: tuple[str, ...]) -> list[dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        bucket = out.setdefault(row[key], {key: row[key], **dict.fromkeys(fields, 0)})
        for f in fields:
            bucket[f] += int(row[f] or 0)
    return [out[k] for k in sorted(out)]

