"""Connecting a social account through the platform's OAuth authorization page.

    POST …/social-accounts/oauth/start     → authorization_url: send the user there
    (the user approves; the platform redirects to redirect_uri?code=…&state=…)
    POST …/social-accounts/oauth/callback  {state, code} → the account, connected

``start`` remembers the request (processors/accounts/authorizations.py: the state's digest, the
PKCE verifier sealed, ~10 minutes, one use); ``callback`` takes it, exchanges the code at the
platform's token endpoint (RFC 6749 §4.1.3, processors/platforms/oauth.py) and connects the
account exactly as POST …/social-accounts does with tokens (workspaces.connect): sealed into the
credentials store, never returned, logged or published. The platform's OAuth description (endpoints,
scopes, PKCE, client authentication) is its adapter's ``token_refresh`` (processors/platforms/base.py);
Herald's client id and secret come from ``HERALD_OAUTH_CLIENTS``.
"""

# No `from __future__ import annotations`: FastAPI must see the endpoint-local Annotated aliases.
import logging
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, HttpUrl, ValidationError, field_validator

from gateway import auth
from gateway.deps import Shared, WorkspaceId
from gateway.problems import MEDIA_TYPE, ProblemError, openapi_responses
from gateway.routes.workspaces import check_settings, connect
from processors.accounts import authorizations
from processors.accounts.authorizations import Refusal
from processors.accounts.credentials import Credentials
from processors.platforms import oauth
from processors.platforms.base import ErrorKind, Pkce, PublishError, TokenRefresh
from processors.platforms.oauth import CodeRefused, CodeUnavailable, OAuthClient
from schemas import api
from schemas import commands as cmd

log = logging.getLogger(__name__)


class OAuthStartRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    platform: cmd.Platform
    instance_url: HttpUrl | None = Field(None, description="the account's server, for platforms with instances "
                                         "(Mastodon); defaults to the configured one")
    redirect_uri: str = Field(min_length=1, max_length=2000, description="where the platform sends the user back "
                              "with `code` and `state`; must be registered with Herald's client at the platform")
    social_account_id: str | None = Field(None, min_length=1, max_length=200, pattern=cmd.ID_PATTERN,
                                          description="an account of this workspace to reconnect, or the id of the "
                                          "new one (defaults to one derived from the connect command)")
    handle: str | None = Field(None, min_length=1, max_length=200, description="defaults to the handle the "
                               "platform tells for the new token, where it can")

    @field_validator("redirect_uri")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not urlsplit(value).scheme or any(c.isspace() for c in value):
            raise ValueError("an absolute URI is required")
        return value


class OAuthStarted(BaseModel):
    authorization_url: str = Field(description="send the user here to approve Herald")
    state: str = Field(description="comes back with the code; pass both to …/oauth/callback (used once)")
    expires_at: AwareDatetime = Field(description="the callback must come before this")


class OAuthCallbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    state: str = Field(min_length=1, max_length=200)
    code: str = Field(min_length=1, max_length=4000)
    settings: cmd.AccountSettings = Field(
        default_factory=dict, description="the account's non-secret settings, as for POST …/social-accounts (often "
        "known only once the user approved, e.g. which Facebook page)")


_STATE_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": api.Problem, "description": text,
             "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    for status, text in ((400, "`oauth_state_unknown`: no authorization of this workspace has this state"),
                         (410, "`oauth_state_expired` / `oauth_state_used`: start again"))
}


def router(shared: Shared) -> APIRouter:
    r = APIRouter(tags=["workspaces"])
    Caller = Annotated[auth.Principal, Depends(shared.principal)]

    @r.post(
        "/v1/workspaces/{workspace_id}/social-accounts/oauth/start", status_code=201, response_model=OAuthStarted,
        summary="Start connecting a social account through the platform's OAuth page",
        responses=openapi_responses(401, 404, 422, 503),
        description="Answers the platform's authorization URL (with `state` and, where the platform takes it, a "
        "PKCE S256 challenge). 422 `oauth_not_supported`: the platform has no OAuth flow (the sandbox). 503 "
        "`oauth_not_configured`: Herald has no client for the platform (HERALD_OAUTH_CLIENTS).",
    )
    def start(workspace_id: WorkspaceId, body: OAuthStartRequest, caller: Caller):
        workspace_id = shared.within(caller, workspace_id, auth.WORKSPACE_WRITE)
        shared.outbound_url(str(body.instance_url) if body.instance_url else None, "instance_url")  # Herald calls it
        store = _store(shared)
        platform = str(body.platform)
        adapter, described, base = _described(store, platform, str(body.instance_url) if body.instance_url else None)
        client = _client(store, described, platform, base)  # refused now rather than after the user approved
        if body.handle is None and not hasattr(adapter, "account_handle"):
            raise ProblemError(422, "handle_required", f"{platform} cannot tell Herald the account's handle: give one")
        state, pkce = oauth.new_state(), oauth.new_pkce() if described.pkce != Pkce.none else None
        with shared.deps.pool.connection() as conn:
            expires_at = authorizations.create(
                conn, state=state, workspace_id=workspace_id, platform=platform, instance_url=base,
                redirect_uri=body.redirect_uri, social_account_id=body.social_account_id, handle=body.handle,
                sealed_code_verifier=store.cipher.seal(pkce.verifier) if pkce else None)
        url = oauth.authorization_url(described.authorization_endpoint(base), client_id=client.client_id,
                                      redirect_uri=body.redirect_uri, state=state, scopes=described.scopes,
                                      code_challenge=pkce.challenge if pkce else None)
        log.info("oauth: workspace %s started connecting a %s account", workspace_id, platform)
        return OAuthStarted(authorization_url=url, state=state, expires_at=expires_at)

    @r.post(
        "/v1/workspaces/{workspace_id}/social-accounts/oauth/callback", status_code=201,
        response_model=api.SocialAccountConnected, summary="Finish connecting: exchange the platform's code",
        responses={**openapi_responses(401, 404, 409, 422, 503), **_STATE_ERRORS},
        description="Takes the `state` and `code` the platform redirected the user back with, exchanges the code "
        "for tokens (sealed into Herald's credentials store, never returned) and connects the account, answering "
        "as POST …/social-accounts does. A state works once, for ~10 minutes, in the workspace that started it. "
        "422 `oauth_code_refused`: the platform refused the code (`platform_error` says why: e.g. `invalid_grant` "
        "for a used, expired or mismatched code); 503 `platform_unavailable`: start again later.",
    )
    def callback(workspace_id: WorkspaceId, body: OAuthCallbackRequest, caller: Caller, response: Response):
        workspace_id = shared.within(caller, workspace_id, auth.WORKSPACE_WRITE)
        store = _store(shared)
        with shared.deps.pool.connection() as conn:
            pending = authorizations.take(conn, body.state, workspace_id)
        if pending is Refusal.unknown:
            raise ProblemError(400, "oauth_state_unknown", "no authorization of this workspace has this state")
        if isinstance(pending, Refusal):
            raise ProblemError(410, f"oauth_state_{pending}", f"this authorization was {pending}; start again")
        adapter, described, base = _described(store, pending.platform, pending.instance_url)
        check_settings(shared, pending.platform, body.settings)  # before the code is spent
        client = _client(store, described, pending.platform, base)
        verifier = store.cipher.unseal(pending.sealed_code_verifier) if pending.sealed_code_verifier else None
        assert store.http is not None
        try:
            tokens = oauth.exchange_code(store.http, described.token_endpoint(base), client, body.code,
                                         pending.redirect_uri, code_verifier=verifier, timeout_s=store.s.timeout_s)
        except CodeRefused as refused:
            if refused.error == oauth.DESTINATION_REFUSED:
                raise ProblemError(422, "instance_url_not_allowed", f"instance_url: {refused.description}") from None
            log.warning("oauth: %s refused a code for workspace %s (%s)", pending.platform, workspace_id,
                        refused.error)
            raise ProblemError(422, "oauth_code_refused", f"{pending.platform} refused the authorization code: "
                               f"{refused.error}", platform_error=refused.error,
                               platform_error_description=refused.description[:500]) from None
        except CodeUnavailable as error:
            raise ProblemError(503, "platform_unavailable", f"{pending.platform}'s token endpoint did not answer "
                               f"({error}); start again", {"Retry-After": "5"}) from None
        handle = pending.handle or _handle(adapter, pending.platform, base, tokens.access_token)
        try:
            request = api.ConnectSocialAccountRequest(
                social_account_id=pending.social_account_id, platform=pending.platform, handle=handle,
                instance_url=base, access_token=tokens.access_token, refresh_token=tokens.refresh_token,
                expires_at=tokens.expires_at, settings=body.settings)
        except ValidationError:
            raise ProblemError(502, "platform_answer_invalid", f"{pending.platform} answered tokens or a handle "
                               "Herald cannot store") from None
        connected = connect(shared, caller, workspace_id, request, None, response)
        log.info("oauth: workspace %s connected %s account %s", workspace_id, pending.platform,
                 connected.social_account_id)
        return connected

    return r


def _store(shared: Shared) -> Credentials:
    store = shared.deps.credentials
    if store is None:
        raise ProblemError(503, "credentials_unavailable", "this gateway has no credentials store")
    return store


def _described(store: Credentials, platform: str, instance_url: str | None) -> tuple[Any, TokenRefresh, str | None]:
    """The platform's adapter, its OAuth description and the instance base URL (or None)."""
    adapter = store.adapter(platform)
    described = getattr(adapter, "token_refresh", None)
    if adapter is None or described is None or not described.connectable:
        raise ProblemError(422, "oauth_not_supported", f"{platform} accounts are not connected through OAuth")
    base = (instance_url or getattr(adapter, "default_base_url", "") or "").rstrip("/") or None
    if described.per_instance and base is None:
        raise ProblemError(422, "instance_url_required", f"a {platform} account needs its instance_url")
    return adapter, described, base


def _client(store: Credentials, described: TokenRefresh, platform: str, base: str | None) -> OAuthClient:
    client = store.client_for(platform, base)
    if client is None:
        raise ProblemError(503, "oauth_not_configured", f"Herald has no OAuth client for {platform}"
                           + (f" at {base}" if base else ""))
    if client.auth_method not in described.client_auth:
        raise ProblemError(503, "oauth_not_configured", f"{platform}'s token endpoint does not take "
                           f"{client.auth_method}; it takes {', '.join(described.client_auth)}")
    return client


def _handle(adapter: Any, platform: str, base: str | None, access_token: str) -> str:
    try:
        return adapter.account_handle(base, access_token)
    except PublishError as error:
        if error.kind in (ErrorKind.transient, ErrorKind.unknown, ErrorKind.rate_limited):
            raise ProblemError(503, "platform_unavailable", f"{platform} did not tell the account's handle "
                               f"({error.kind}); start again") from None
        raise ProblemError(422, "handle_unavailable", f"{platform} would not tell the account's handle "
                           f"({error.kind}); start again with a handle") from None

