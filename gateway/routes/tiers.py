"""Tiers as data (admin): define a tier's version, list the tiers, change a workspace's tier,
set its limit overrides."""

# No `from __future__ import annotations`: FastAPI must see the endpoint-local Annotated aliases.
from typing import Annotated

from fastapi import APIRouter, Depends, Response

from domain import tiers as shipped
from domain.workspace.tier_catalogue import ADMIN_WORKSPACE
from gateway import auth
from gateway.deps import IdempotencyKey, MinPosition, ResourceId, Shared, WorkspaceId
from gateway.problems import ProblemError, openapi_responses
from projections import tiers
from schemas import commands as cmd


def router(shared: Shared) -> APIRouter:
    r = APIRouter(tags=["tiers"])
    Caller = Annotated[auth.Principal, Depends(shared.principal)]

    def admin_only(caller: auth.Principal) -> None:
        if not caller.is_admin:
            raise ProblemError(403, "forbidden", "only the admin key manages tiers")

    @r.post(
        "/v1/admin/tiers", status_code=201, summary="Define a tier, or its next version (admin)",
        responses=openapi_responses(401, 403, 422, 503),
        description="Every limit must be given. Workspaces on the tier move to the new version at their next "
        "renewal; new workspaces open on it at once.",
    )
    def define_tier(body: cmd.DefineTier, caller: Caller, response: Response, idempotency_key: IdempotencyKey = None):
        admin_only(caller)
        decision = shared.decide(caller, ADMIN_WORKSPACE, body, idempotency_key, response)
        return {**decision.result, "command_id": decision.command_id, "position": decision.position}

    @r.get("/v1/tiers", summary="The tiers: as shipped, and as an admin defined them",
           responses=openapi_responses(401, 503))
    def list_tiers(caller: Caller):
        with shared.deps.pool.connection() as conn:
            defined = {t["tier"]: t for t in tiers.read_tiers(conn)}
        listed = [{"tier": name, "version": 0, "limits": limits} for name, limits in shipped.LIMITS.items()
                  if name not in defined]
        return {"tiers": sorted(listed + list(defined.values()), key=lambda t: t["tier"])}

    @r.post(
        "/v1/workspaces/{workspace_id}/tier", summary="Change the workspace's tier (admin)",
        responses=openapi_responses(401, 403, 404, 422, 503),
        description="To a higher tier (more monthly credits): at once, and the current period is topped up with "
        "the difference in monthly credits. To a lower one: at the next renewal (`effective_at`). Queued posts "
        "stay queued over the new limits; new ones are refused until the workspace is back under them.",
    )
    def change_tier(workspace_id: WorkspaceId, body: cmd.ChangeTier, caller: Caller, response: Response,
                    idempotency_key: IdempotencyKey = None):
        workspace_id = shared.within(caller, workspace_id)  # another workspace's key: 404, as if it did not exist
        admin_only(caller)
        decision = shared.decide(caller, workspace_id, body, idempotency_key, response)
        return {**decision.result, "command_id": decision.command_id, "position": decision.position}

    @r.put(
        "/v1/workspaces/{workspace_id}/limit-overrides", summary="Set the workspace's own limits (admin)",
        responses=openapi_responses(401, 403, 404, 422, 503),
    )
    def set_limit_overrides(workspace_id: WorkspaceId, body: cmd.SetLimitOverrides, caller: Caller,
                            response: Response, idempotency_key: IdempotencyKey = None):
        workspace_id = shared.within(caller, workspace_id)
        admin_only(caller)
        decision = shared.decide(caller, workspace_id, body, idempotency_key, response)
        return {**decision.result, "command_id": decision.command_id, "position": decision.position}

    @r.get("/v1/workspaces/{workspace_id}/tier-change", summary="A downgrade waiting for the renewal, if any",
           responses=openapi_responses(401, 404, 503))
    def scheduled_change(workspace_id: WorkspaceId, caller: Caller, response: Response, min_position: MinPosition = None):
        with shared.read(shared.within(caller, workspace_id), min_position, response) as conn:
            return {"workspace_id": workspace_id, "scheduled": tiers.read_scheduled_change(conn, workspace_id)}

    return r
