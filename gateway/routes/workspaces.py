"""Workspaces and their social accounts."""

# No `from __future__ import annotations`: FastAPI must see the endpoint-local Annotated aliases.
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Mapping

from fastapi import APIRouter, Depends, Response

from domain.base import derived_id
from gateway import auth
from gateway.deps import IdempotencyKey, MinPosition, ResourceId, Shared, WorkspaceId, command_id_for
from gateway.problems import ProblemError, openapi_responses
from processors.accounts.credentials import credential_version_for
from processors.platforms.base import UnknownPlatform, missing_settings
from projections import accounts, posts, workspaces
from schemas import api
from schemas import commands as cmd


def router(shared: Shared) -> APIRouter:
    r = APIRouter(tags=["workspaces"])
    Caller = Annotated[auth.Principal, Depends(shared.principal)]
    pool = shared.deps.pool

    @r.post(
        "/v1/workspaces", status_code=201, response_model=api.WorkspaceCreated,
        summary="Open a workspace (admin)", responses=openapi_responses(401, 403, 409, 422, 503),
        description="Opens the workspace and its wallet, and issues a service API key bound to it. The key is "
        "returned once: a repeat with the same Idempotency-Key answers with the workspace and `api_key: null`.",
    )
    def open_workspace(body: api.OpenWorkspaceRequest, caller: Caller, response: Response,
                       idempotency_key: IdempotencyKey = None):
        if not caller.is_admin:
            raise ProblemError(403, "forbidden", "only the admin key can open workspaces")
        workspace_id = body.workspace_id or (
            derived_id("workspace", idempotency_key) if idempotency_key else str(uuid.uuid4())
        )
        command_id = command_id_for(workspace_id, "open_workspace.v1", idempotency_key)
        decision = shared.decide(caller, workspace_id, body.payload(), idempotency_key, response, command_id)
        key_id = auth.service_key_id(command_id)
        api_key = auth.issue_service_key(pool, workspace_id, key_id)
        return api.WorkspaceCreated(**decision.result, command_id=command_id, api_key_id=key_id, api_key=api_key,
                                    position=decision.position)

    @r.get(
        "/v1/workspaces/{workspace_id}", response_model=api.WorkspaceView, summary="A workspace: tier and limits",
        responses=openapi_responses(401, 404, 503),
    )
    def get_workspace(workspace_id: WorkspaceId, caller: Caller, response: Response, min_position: MinPosition = None):
        with shared.read(shared.within(caller, workspace_id), min_position, response) as conn:
            found = workspaces.read_workspace(conn, workspace_id)
            if found is None:
                raise ProblemError(404, "unknown_workspace", f"no workspace {workspace_id}")
            return {**found, "requires_approval": posts.read_content_policy(conn, workspace_id)}

    @r.put(
        "/v1/workspaces/{workspace_id}/publishing-policy", response_model=api.PublishingPolicySet,
        summary="Set the workspace's publishing policy", responses=openapi_responses(401, 403, 404, 422, 503),
        description="`missed_window_minutes`: a destination that cannot start within this many minutes of its due "
        "time (Herald was down, the account was throttled that long) is skipped with reason `missed` and its "
        "credit released, instead of being published late. Null returns to Herald's default "
        "(`HERALD_MISSED_WINDOW_S`).",
    )
    def set_publishing_policy(workspace_id: WorkspaceId, body: cmd.SetPublishingPolicy, caller: Caller,
                              response: Response, idempotency_key: IdempotencyKey = None):
        workspace_id = shared.within(caller, workspace_id, auth.WORKSPACE_WRITE)
        decision = shared.decide(caller, workspace_id, body, idempotency_key, response)
        return {**decision.result, "command_id": decision.command_id, "position": decision.position}

    @r.post(
        "/v1/workspaces/{workspace_id}/social-accounts", status_code=201, response_model=api.SocialAccountConnected,
        summary="Connect a social account", responses=openapi_responses(401, 404, 409, 422, 503),
        description="409 `account_limit_reached` when the tier's accounts-per-platform limit is reached. "
        "The tokens are sealed into Herald's private credentials store before the account is connected, and "
        "never returned or published. Connecting an account of this workspace again (same `social_account_id`, "
        "new tokens) reconnects it and clears `needs_reconnect`. 422 `missing_settings` when the platform needs "
        "settings the body lacks (GET /v1/platforms: `required_settings`; `missing_settings` lists them), 422 "
        "`platform_unavailable` when this Herald runs no adapter for the platform.",
    )
    def connect_social_account(workspace_id: WorkspaceId, body: api.ConnectSocialAccountRequest, caller: Caller,
                               response: Response, idempotency_key: IdempotencyKey = None):
        ws = shared.within(caller, workspace_id, auth.WORKSPACE_WRITE)
        return connect(shared, caller, ws, body, idempotency_key, response)

    @r.get(
        "/v1/workspaces/{workspace_id}/social-accounts", response_model=api.SocialAccountList,
        summary="The workspace's social accounts", responses=openapi_responses(401, 404, 503),
    )
    def list_social_accounts(workspace_id: WorkspaceId, caller: Caller, response: Response,
                             min_position: MinPosition = None):
        with shared.read(shared.within(caller, workspace_id), min_position, response) as conn:
            return {"social_accounts": accounts.list_accounts(conn, workspace_id)}

    @r.get(
        "/v1/workspaces/{workspace_id}/social-accounts/{social_account_id}", response_model=api.SocialAccountView,
        summary="One social account (never its token)", responses=openapi_responses(401, 404, 503),
    )
    def get_social_account(workspace_id: WorkspaceId, social_account_id: ResourceId, caller: Caller, response: Response,
                           min_position: MinPosition = None):
        with shared.read(shared.within(caller, workspace_id), min_position, response) as conn:
            found = accounts.read_account(conn, workspace_id, social_account_id)
            if found is None:
                raise ProblemError(404, "unknown_social_account", f"no social account {social_account_id} in this "
                                   "workspace")
            return found

    return r


def connect(shared: Shared, caller: auth.Principal, workspace_id: str, body: api.ConnectSocialAccountRequest,
            idempotency_key: str | None, response: Response) -> api.SocialAccountConnected:
    """Connect (or reconnect) an account of ``workspace_id`` (the caller may act in it): its tokens
    sealed into the credentials store first, then the connect decided. The OAuth callback
    (routes/oauth.py) connects through here too."""
    shared.outbound_url(str(body.instance_url) if body.instance_url else None, "instance_url")  # Herald calls it
    check_settings(shared, str(body.platform), body.settings)
    command_id = command_id_for(workspace_id, "connect_social_account.v1", idempotency_key)
    account_id = body.social_account_id or derived_id("social_account", command_id)  # as the domain derives it
    version = None
    store = shared.deps.credentials
    if body.access_token:
        if store is None:
            raise ProblemError(503, "credentials_unavailable", "this gateway has no credentials store")
        # Stored first, under a version derived from the command id: a retry stores nothing new.
        version = credential_version_for(command_id)
        expires_at = body.expires_at or (
            datetime.now(UTC) + timedelta(seconds=body.expires_in) if body.expires_in else None)
        instance_url = str(body.instance_url).rstrip("/") if body.instance_url else None
        store.store(social_account_id=account_id, version=version, workspace_id=workspace_id,
                    platform=str(body.platform), instance_url=instance_url, access_token=body.access_token,
                    refresh_token=body.refresh_token, access_expires_at=expires_at)
    try:
        decision = shared.decide(caller, workspace_id, body.payload(version), idempotency_key, response, command_id)
    except ProblemError as problem:
        if version is not None and problem.status != 503:  # refused: its tokens are not kept
            store.discard(account_id, version, workspace_id)
        raise
    if version is not None:
        store.supersede(account_id, version, workspace_id)  # a reconnect: the older tokens go
    return api.SocialAccountConnected(**decision.result, command_id=decision.command_id, position=decision.position)


def check_settings(shared: Shared, platform: str, settings: Mapping[str, str]) -> None:
    """Refuses a connect to a platform Herald cannot publish to, or without the settings its adapter needs."""
    registry = shared.registry()
    if registry is None:
        return
    try:
        adapter = registry.get(platform)
    except UnknownPlatform:
        raise ProblemError(422, "platform_unavailable", f"this Herald has no {platform} adapter "
                           f"(it has: {', '.join(registry.platforms())})") from None
    missing = missing_settings(adapter, settings)
    if missing:
        raise ProblemError(422, "missing_settings", f"a {platform} account needs the settings "
                           f"{', '.join(missing)}", missing_settings=missing)
