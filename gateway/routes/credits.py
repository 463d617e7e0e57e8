"""The prepaid credit wallet."""

# No `from __future__ import annotations`: FastAPI must see the endpoint-local Annotated aliases.
from typing import Annotated

from fastapi import APIRouter, Depends, Response

from gateway import auth
from gateway.credit_permissions import may_grant
from gateway.deps import IdempotencyKey, MinPosition, Shared
from gateway.problems import ProblemError, openapi_responses
from projections import wallet
from schemas import api


def router(shared: Shared) -> APIRouter:
    r = APIRouter(tags=["credits"])
    Caller = Annotated[auth.Principal, Depends(shared.principal)]

    @r.post(
        "/v1/workspaces/{workspace_id}/credits/grants", status_code=201, response_model=api.CreditsGranted,
        summary="Grant credits", responses=openapi_responses(401, 403, 404, 409, 422, 503),
        description="Admin key (or a key with the `credits:grant` scope) only: a workspace's own key gets 403. "
        "409 `grant_exists` when the grant id was used before in this workspace, even long ago.",
    )
    def grant_credits(workspace_id: str, body: api.GrantCreditsRequest, caller: Caller, response: Response,
                      idempotency_key: IdempotencyKey = None):
        shared.within(caller, workspace_id)
        if not may_grant(caller):
            raise ProblemError(403, "forbidden", "only the admin (or a key with the credits:grant scope) grants credits")
        decision = shared.decide(caller, shared.within(caller, workspace_id), body, idempotency_key, response)
        return api.CreditsGranted(**decision.result, command_id=decision.command_id, position=decision.position)

    @r.get(
        "/v1/workspaces/{workspace_id}/wallet", response_model=api.WalletView,
        summary="The workspace's credit wallet", responses=openapi_responses(401, 404, 503),
        description="From the wallet read model: balances, the grants with credits left and the pending holds. "
        "It follows the events; pass `min_position` (from a command's answer) to read your own write.",
    )
    def get_wallet(workspace_id: str, caller: Caller, response: Response, min_position: MinPosition = None):
        with shared.read(shared.within(caller, workspace_id), min_position, response) as conn:
            found = wallet.read_wallet(conn, workspace_id)
            if found is None:
                raise ProblemError(404, "unknown_workspace", f"no workspace {workspace_id}")
            return found

    return r
