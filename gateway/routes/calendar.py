"""Planning and the calendar (docs/calendar.md): posting schedules per account, top-offs of the
planned slots, filling a slot with content (a draft), recurring and evergreen series, and the
calendar by week or month."""

# No `from __future__ import annotations`: FastAPI must see the endpoint-local Annotated aliases.
from datetime import UTC, date, datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Response

from domain.base import derived_id
from gateway import auth
from gateway.deps import IdempotencyKey, MinPosition, ResourceId, Shared, WorkspaceId, command_id_for
from gateway.problems import ProblemError, openapi_responses
from projections import calendar as planning
from projections import workspaces
from schemas import api
from schemas import commands as cmd


EARLIEST, LATEST = date(1971, 1, 1), date(8999, 12, 31)  # far from date.min/max: a week or month around fits


def router(shared: Shared) -> APIRouter:
    r = APIRouter(tags=["calendar"])
    Caller = Annotated[auth.Principal, Depends(shared.principal)]

    def top_off(caller, ws: str, after_command: str, response: Response, **payload) -> dict:
        """The top-off that follows a schedule or series change, its id derived from that command's
        (a retried request repeats it too, changing nothing)."""
        if "series_ids" not in payload:
            with shared.deps.pool.connection() as conn:
                payload["series_ids"] = planning.active_series_ids(conn, ws)
        decision = shared.decide(caller, ws, cmd.TopOffSlots(**payload), None, response,
                                 command_id=derived_id("top_off_after", after_command))
        return decision.result

    @r.put(
        "/v1/workspaces/{workspace_id}/social-accounts/{social_account_id}/posting-schedule",
        summary="Set an account's weekly posting schedule", responses=openapi_responses(401, 404, 409, 422, 503),
        description="Explicit `slots` (weekday `mon`…`sun` + local `HH:MM`), or `posts_per_week` spread over the week "
        "at `times` in rotation; in `timezone` (IANA, default the workspace's). `active: false` pauses it: its empty "
        "future slots are removed, slots with content stay, no new ones are planned. A changed schedule removes the "
        "empty future slots it no longer makes. The slots of the next 28 days are planned at once (`slots_created`).",
    )
    def set_schedule(workspace_id: WorkspaceId, social_account_id: ResourceId, body: api.PostingScheduleRequest,
                     caller: Caller, response: Response, idempotency_key: IdempotencyKey = None):
        ws = shared.within(caller, workspace_id, auth.WORKSPACE_WRITE)
        payload = cmd.SetPostingSchedule(**body.model_dump(exclude={"social_account_id"}),
                                         social_account_id=social_account_id)
        command_id = command_id_for(ws, "set_posting_schedule.v1", idempotency_key)
        decision = shared.decide(caller, ws, payload, idempotency_key, response, command_id=command_id)
        planned = top_off(caller, ws, command_id, response, social_account_ids=[social_account_id], series_ids=[])
        return {**decision.result, "slots_created": planned["slots_created"], "command_id": decision.command_id,
                "position": decision.position}

    @r.get(
        "/v1/workspaces/{workspace_id}/social-accounts/{social_account_id}/posting-schedule",
        summary="An account's posting schedule", responses=openapi_responses(401, 404, 422, 503),
    )
    def get_schedule(workspace_id: WorkspaceId, social_account_id: ResourceId, caller: Caller, response: Response,
                     min_position: MinPosition = None):
        with shared.read(shared.within(caller, workspace_id), min_position, response) as conn:
            found = planning.read_schedule(conn, workspace_id, social_account_id)
        if found is None:
            raise ProblemError(404, "no_posting_schedule", f"account {social_account_id} has no posting schedule")
        return found

    @r.post(
        "/v1/workspaces/{workspace_id}/slots/top-off", summary="Plan the missing slots and series occurrences",
        responses=openapi_responses(401, 404, 422, 503),
        description="Creates the slots of the next `days` (at most 28) that the active schedules make and that do "
        "not exist yet (unique per account and instant; re-running creates none), and schedules the due "
        "occurrences of the workspace's active series. The processors' `slot-top-off` loop does the same daily.",
    )
    def top_off_now(workspace_id: WorkspaceId, body: cmd.TopOffSlots, caller: Caller, response: Response,
                    idempotency_key: IdempotencyKey = None):
        ws = shared.within(caller, workspace_id, auth.WORKSPACE_WRITE)
        payload = body
        if not body.series_ids:
            with shared.deps.pool.connection() as conn:
                payload = body.model_copy(update={"series_ids": planning.active_series_ids(conn, ws)})
        decision = shared.decide(caller, ws, payload, idempotency_key, response)
        return {**decision.result, "command_id": decision.command_id, "position": decision.position}

    @r.post(
        "/v1/workspaces/{workspace_id}/slots/{slot_id}/content", status_code=201,
        summary="Fill a planned slot with content", responses=openapi_responses(401, 404, 409, 422, 503),
        description="The slot becomes a draft post at the slot's time on the slot's account (no credits held until "
        "it is submitted). 404 `unknown_slot`; 409 `slot_filled` when it has content already, `slot_in_past`. "
        "`min_position`: wait for the read models to know a slot just planned.",
    )
    def fill(workspace_id: WorkspaceId, slot_id: ResourceId, body: api.FillSlotRequest, caller: Caller,
             response: Response, idempotency_key: IdempotencyKey = None, min_position: MinPosition = None):
        ws = shared.within(caller, workspace_id, auth.WORKSPACE_WRITE)
        with shared.read(ws, min_position, response) as conn:  # the slot is looked up in the read model
            row = conn.execute("SELECT social_account_id FROM planned_slots WHERE workspace_id = %s AND slot_id = %s",
                               (ws, slot_id)).fetchone()
        if row is None:
            raise ProblemError(404, "unknown_slot", f"no planned slot {slot_id} in this workspace")
        payload = cmd.FillSlot(social_account_id=row[0], slot_id=slot_id, **body.model_dump())
        decision = shared.decide(caller, ws, payload, idempotency_key, response)
        return {**decision.result, "command_id": decision.command_id, "position": decision.position}

    @r.put(
        "/v1/workspaces/{workspace_id}/series/{series_id}", summary="Define a recurring post or an evergreen queue",
        responses=openapi_responses(401, 404, 409, 422, 503),
        description="`rrule`: an RFC 5545 RRULE (e.g. `FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0`) from `starts_at` "
        "(a local wall time, no offset), evaluated in the workspace's zone. `kind: recurring` posts its one item at "
        "each occurrence; `evergreen` picks from `items` the one posted longest ago, skipping those posted within "
        "`skip_days`. Occurrences in the next 28 days are scheduled at once as ordinary posts (credits held, tier "
        "limits applied); one refused is recorded skipped with its reason. `active: false` stops it.",
    )
    def define_series(workspace_id: WorkspaceId, series_id: ResourceId, body: api.SeriesRequest, caller: Caller,
                      response: Response, idempotency_key: IdempotencyKey = None):
        ws = shared.within(caller, workspace_id, auth.WORKSPACE_WRITE)
        payload = cmd.DefineSeries(**body.model_dump(exclude={"series_id"}), series_id=series_id)
        command_id = command_id_for(ws, "define_series.v1", idempotency_key)
        decision = shared.decide(caller, ws, payload, idempotency_key, response, command_id=command_id)
        planned = top_off(caller, ws, command_id, response, series_ids=[series_id] if body.active else [])
        return {**decision.result, "occurrences_scheduled": planned["occurrences_scheduled"],
                "occurrences_skipped": planned["occurrences_skipped"], "command_id": decision.command_id,
                "position": decision.position}

    @r.get(
        "/v1/workspaces/{workspace_id}/series/{series_id}", summary="A series and its progress",
        responses=openapi_responses(401, 404, 422, 503),
    )
    def get_series(workspace_id: WorkspaceId, series_id: ResourceId, caller: Caller, response: Response,
                   min_position: MinPosition = None):
        with shared.read(shared.within(caller, workspace_id), min_position, response) as conn:
            found = planning.read_series(conn, workspace_id, series_id)
        if found is None:
            raise ProblemError(404, "unknown_series", f"no series {series_id} in this workspace")
        return found

    @r.get(
        "/v1/workspaces/{workspace_id}/calendar", summary="The calendar: slots and posts by local day",
        responses=openapi_responses(401, 404, 422, 503),
        description="`view=week` (Monday to Sunday) or `month` around `date` (default today), in the workspace's "
        "time zone; or any `from`…`to` (local dates, at most 62 days). Items: planned slots without content "
        "(`kind: slot`, `status: needs_content`, or `missed` once past; `draft` once filled and not yet "
        "scheduled) and the destinations of posts (`kind: post`, the destination's status). Filters: "
        "`social_account_id`, `status` (repeatable).",
    )
    def calendar(workspace_id: WorkspaceId, caller: Caller, response: Response,
                 view: Literal["week", "month"] = "week", day: Annotated[date | None, Query(alias="date")] = None,
                 start: Annotated[date | None, Query(alias="from")] = None,
                 end: Annotated[date | None, Query(alias="to")] = None,
                 social_account_id: Annotated[str | None, Query(max_length=200, pattern=cmd.ID_PATTERN)] = None,
                 status: Annotated[list[str] | None, Query(max_length=20)] = None,
                 min_position: MinPosition = None):
        ws = shared.within(caller, workspace_id)
        with shared.read(ws, min_position, response) as conn:
            found = workspaces.read_workspace(conn, ws)
            if found is None:
                raise ProblemError(404, "unknown_workspace", f"no workspace {ws}")
            zone = ZoneInfo(found["timezone"])
            now = datetime.now(UTC)
            if any(d is not None and not EARLIEST <= d <= LATEST for d in (day, start, end)):
                raise ProblemError(422, "invalid_query", f"dates must be between {EARLIEST} and {LATEST}")
            if (start is None) != (end is None):
                raise ProblemError(422, "invalid_query", "give both `from` and `to`, or neither")
            if start is not None and end is not None:
                if end < start or (end - start).days > 62:
                    raise ProblemError(422, "invalid_query", "`to` must be on or after `from`, at most 62 days later")
                first, last, shape = start, end, "range"
            else:
                first, last = planning.calendar_range(view, day or now.astimezone(zone).date(), zone)
                shape = view
            items = planning.read_calendar(conn, ws, zone, first, last, now, social_account_id, status)
        days = {}
        d = first
        while d <= last:
            days[d.isoformat()] = []
            d = date.fromordinal(d.toordinal() + 1)
        for item in items:
            days[item["local_date"]].append(item)
        return {"workspace_id": ws, "view": shape, "timezone": zone.key, "from": first.isoformat(),
                "to": last.isoformat(), "needs_content": sum(1 for i in items if i["status"] == "needs_content"),
                "days": [{"date": k, "items": v} for k, v in days.items()]}

    return r
