"""The workspace's notifications inbox: list, unread count, mark read."""

# No `from __future__ import annotations`: FastAPI must see the endpoint-local Annotated aliases.
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from gateway import auth
from gateway.deps import IdempotencyKey, MinPosition, ResourceId, Shared, WorkspaceId
from gateway.problems import openapi_responses
from projections import notifications
from schemas import commands as cmd


def router(shared: Shared) -> APIRouter:
    r = APIRouter(tags=["notifications"])
    Caller = Annotated[auth.Principal, Depends(shared.principal)]

    @r.get(
        "/v1/workspaces/{workspace_id}/notifications", summary="Notices, latest first, and the unread count",
        responses=openapi_responses(401, 404, 503),
        description="One notice per cause per period (low_credits: per credit period; credits_expiring: per "
        "grant; post_skipped, post_failed, tier_limit_reached: per local day); a repeat raises its `count`.",
    )
    def list_notifications(workspace_id: WorkspaceId, caller: Caller, response: Response,
                           unread_only: bool = False, limit: Annotated[int, Query(ge=1, le=500)] = 50,
                           min_position: MinPosition = None):
        with shared.read(shared.within(caller, workspace_id), min_position, response) as conn:
            return notifications.read_notifications(conn, workspace_id, unread_only=unread_only, limit=limit)

    @r.post(
        "/v1/workspaces/{workspace_id}/notifications/read", summary="Mark notices read",
        responses=openapi_responses(401, 404, 422, 503),
    )
    def mark_read(workspace_id: WorkspaceId, body: cmd.MarkNoticesRead, caller: Caller, response: Response,
                  idempotency_key: IdempotencyKey = None):
        decision = shared.decide(caller, shared.within(caller, workspace_id), body, idempotency_key, response)
        return {**decision.result, "command_id": decision.command_id, "position": decision.position}

    return r
