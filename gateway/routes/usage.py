"""Usage per day and per credit period, and the limit check (no side effects)."""

# No `from __future__ import annotations`: FastAPI must see the endpoint-local Annotated aliases.
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response

from gateway import auth
from gateway.deps import MinPosition, ResourceId, Shared, WorkspaceId
from gateway.problems import ProblemError, openapi_responses
from projections import limit_check, usage
from schemas import commands as cmd


def router(shared: Shared) -> APIRouter:
    r = APIRouter(tags=["usage"])
    Caller = Annotated[auth.Principal, Depends(shared.principal)]

    @r.get(
        "/v1/workspaces/{workspace_id}/usage", summary="Usage per local day, and totals",
        responses=openapi_responses(401, 404, 503),
        description="Posts scheduled (by due day), published, skipped, failed per platform; generations; credits "
        "granted, consumed, released, expired. Days are the workspace's local days; without `from`/`to`, the "
        "current credit period.",
    )
    def get_usage(workspace_id: WorkspaceId, caller: Caller, response: Response,
                  day_from: Annotated[cmd.Day | None, Query(alias="from")] = None,
                  day_to: Annotated[cmd.Day | None, Query(alias="to")] = None, min_position: MinPosition = None):
        with shared.read(shared.within(caller, workspace_id), min_position, response) as conn:
            found = usage.read_usage(conn, workspace_id, day_from, day_to)
        if found is None:
            raise ProblemError(404, "unknown_workspace", f"no usage for workspace {workspace_id}")
        return found

    @r.get(
        "/v1/workspaces/{workspace_id}/limits/check", summary="Would this be within the tier's limits?",
        responses=openapi_responses(401, 404, 422, 503),
        description="Changes nothing. `schedule` (N posts to `platform` on local `day`: queue size, scheduling "
        "horizon, daily posts), `connect` (another `platform` account), `generate` (one more today), `automate` (one more "
        "automation rule). Each check names the limit, the tier, the current count and the allowed number.",
    )
    def check_limits(workspace_id: WorkspaceId, caller: Caller, response: Response,
                     action: Literal["schedule", "connect", "generate", "automate"], platform: str | None = None,
                     day: cmd.Day | None = None, count: Annotated[int, Query(ge=1, le=1000)] = 1,
                     min_position: MinPosition = None):
        with shared.read(shared.within(caller, workspace_id), min_position, response) as conn:
            found = limit_check.check(conn, workspace_id, action, platform=platform, day=day, count=count)
        if found is None:
            raise ProblemError(404, "unknown_workspace", f"no workspace {workspace_id}")
        return found

    return r
