"""API keys: create, list, revoke and rotate.

The admin may manage every key. A key bound to a workspace and holding ``workspace:write`` may
manage that workspace's keys, and give a new key no scope it lacks itself; another workspace's
key answers 404 like a key that does not exist.
"""

# No `from __future__ import annotations`: FastAPI must see the endpoint-local Annotated aliases.
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from domain.base import derived_id
from gateway import auth
from gateway.deps import IdempotencyKey, Shared
from gateway.problems import ProblemError, openapi_responses
from schemas import api
from schemas import commands as cmd

KeyId = Annotated[str, Path(min_length=1, max_length=200, pattern=cmd.ID_PATTERN)]


def _view(row: dict[str, Any], api_key: str | None = None, issued: bool = False) -> dict[str, Any]:
    now = datetime.now(UTC)
    active = row["revoked_at"] is None and (row["expires_at"] is None or row["expires_at"] > now)
    view = {**row, "scopes": sorted(row["scopes"]), "active": active}
    return {**view, "api_key": api_key} if issued else view


def router(shared: Shared) -> APIRouter:
    r = APIRouter(tags=["api-keys"])
    Caller = Annotated[auth.Principal, Depends(shared.principal)]
    pool = shared.deps.pool

    def manager(caller: auth.Principal) -> None:
        if caller.is_admin:
            return
        if caller.workspace_id is None:
            raise ProblemError(403, "forbidden", "only the admin or a workspace's own key manages keys")
        shared.require(caller, auth.WORKSPACE_WRITE)

    def managed(caller: auth.Principal, key_id: str) -> dict[str, Any]:
        manager(caller)
        found = auth.find(pool, key_id)
        if found is None or not caller.is_admin and found["workspace_id"] != caller.workspace_id:
            raise ProblemError(404, "unknown_api_key", f"no API key {key_id}")
        return found

    def new_key_id(caller: auth.Principal, purpose: str, idempotency_key: str | None) -> str:
        if idempotency_key is None:
            return f"key_{uuid.uuid4()}"
        return f"key_{derived_id('api-key', purpose, caller.key_id, idempotency_key)}"

    @r.post(
        "/v1/api-keys", status_code=201, response_model=api.ApiKeyIssued, summary="Create an API key",
        responses=openapi_responses(401, 403, 404, 422, 503),
        description="The key is returned once. A workspace's key may create keys for its own workspace with at most "
        "its own scopes; only the admin creates keys bound to no workspace or holding `admin`.",
    )
    def create_key(body: api.CreateApiKeyRequest, caller: Caller, idempotency_key: IdempotencyKey = None):
        manager(caller)
        workspace_id = body.workspace_id
        if not caller.is_admin:
            workspace_id = shared.within(caller, body.workspace_id or caller.workspace_id, auth.WORKSPACE_WRITE)
        beyond = sorted(set(body.scopes) - caller.scopes) if not caller.is_admin else []
        if beyond:
            raise ProblemError(403, "forbidden", f"a key cannot give scopes it lacks: {', '.join(beyond)}")
        key_id = new_key_id(caller, "create", idempotency_key)
        issued = auth.issue(pool, key_id=key_id, scopes=body.scopes, workspace_id=workspace_id, name=body.name,
                            created_by=caller.issued_by)
        if issued is not None:
            return _view(*issued, issued=True)
        earlier = auth.find(pool, key_id)
        if earlier is None or earlier["workspace_id"] != workspace_id or set(earlier["scopes"]) != set(body.scopes):
            raise ProblemError(422, "idempotency_key_reused", "this Idempotency-Key created another key")
        return _view(earlier, None, issued=True)

    @r.get(
        "/v1/api-keys", response_model=api.ApiKeyList, summary="List API keys (never the keys themselves)",
        responses=openapi_responses(401, 403, 404, 422, 503),
        description="Newest first. The admin sees every key (or one workspace's with `workspace_id`); a workspace's "
        "key sees its workspace's keys.",
    )
    def list_keys(caller: Caller,
                  workspace_id: Annotated[str | None, Query(min_length=1, max_length=200,
                                                            pattern=cmd.ID_PATTERN)] = None,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 100):
        if not caller.is_admin:
            if caller.workspace_id is None:
                raise ProblemError(403, "forbidden", "only the admin or a workspace's own key lists keys")
            workspace_id = shared.within(caller, workspace_id or caller.workspace_id)
        return {"api_keys": [_view(row) for row in auth.listed(pool, workspace_id, limit)]}

    @r.post(
        "/v1/api-keys/{key_id}/revoke", response_model=api.ApiKeyView, summary="Revoke an API key",
        responses=openapi_responses(401, 403, 404, 503),
        description="From now on the key answers 401. Revoking a revoked key changes nothing.",
    )
    def revoke_key(key_id: KeyId, caller: Caller):
        managed(caller, key_id)
        auth.revoke(pool, key_id)
        return _view(auth.find(pool, key_id))

    @r.post(
        "/v1/api-keys/{key_id}/rotate", status_code=201, response_model=api.ApiKeyIssued,
        summary="Rotate an API key", responses=openapi_responses(401, 403, 404, 409, 422, 503),
        description="Issues a successor with the same scopes and workspace (returned once) and lets the old key work "
        "for `overlap_s` more seconds. 409 `api_key_inactive` for a revoked or expired key.",
    )
    def rotate_key(key_id: KeyId, caller: Caller, body: api.RotateApiKeyRequest | None = None,
                   idempotency_key: IdempotencyKey = None):
        managed(caller, key_id)
        overlap = timedelta(seconds=(body or api.RotateApiKeyRequest()).overlap_s)
        rotated = auth.rotate(pool, key_id, new_key_id(caller, f"rotate:{key_id}", idempotency_key), overlap,
                              caller.issued_by)
        if rotated is None:
            raise ProblemError(409, "api_key_inactive", f"API key {key_id} is revoked or expired")
        return _view(rotated[0], rotated[1], issued=True)

    return r
