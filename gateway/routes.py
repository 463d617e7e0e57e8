"""The gateway's endpoints: synchronous commands, queries, the asynchronous command inlet, health."""

# No `from __future__ import annotations`: FastAPI must see the endpoint-local Annotated aliases.
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import prometheus_client
from fastapi import APIRouter, Depends, Header, Query, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError

from domain import tiers
from domain.application import Decision
from domain.base import derived_id
from domain.post import Post
from domain.account import SocialAccount
from domain.wallet import Wallet
from domain.workspace import Workspace
from gateway import auth
from gateway.problems import ProblemError, field_errors, openapi_responses, rejection
from projections.queue import read_queue
from schemas import api
from schemas import commands as cmd

if TYPE_CHECKING:
    from gateway.app import GatewayDeps

# Service keys may send what a client of one workspace asks for. The rest (opening
# workspaces, and the processors' attempt/outcome/hold commands, which move money and fence
# publishing) need the admin key.
SERVICE_COMMAND_TYPES = frozenset(
    {"connect_social_account.v1", "grant_credits.v1", "schedule_post.v1", "cancel_post.v1"}
)

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <key>`: the admin key or a service key")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="the same key, in `X-API-Key`")

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=api.IDEMPOTENCY_KEY_PATTERN,
        description="Makes the request safe to retry: a repeat returns the first outcome (accepted or rejected) "
        "and changes nothing. Scoped to the workspace and the kind of command. After a rejection, send a new "
        "key to try again. Omitted → every request is a new command.",
    ),
]


def build(deps: "GatewayDeps") -> APIRouter:
    router = APIRouter()

    def principal(
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        api_key: Annotated[str | None, Depends(_api_key)],
    ) -> auth.Principal:
        presented = bearer.credentials if bearer else api_key
        found = auth.authenticate(deps.pool, deps.admin_api_key, presented) if presented else None
        if found is None:
            raise ProblemError(401, "unauthenticated", "a valid API key is required: Authorization: Bearer <key>",
                               {"WWW-Authenticate": "Bearer"})
        return found

    Caller = Annotated[auth.Principal, Depends(principal)]

    def within(caller: auth.Principal, workspace_id: str) -> str:
        # Another workspace answers exactly like a workspace that does not exist.
        if not caller.may_access(workspace_id):
            raise ProblemError(404, "unknown_workspace", f"no workspace {workspace_id}")
        return workspace_id

    def decide(caller: auth.Principal, workspace_id: str, payload: cmd.Payload, idempotency_key: str | None,
               command_id: str | None = None) -> Decision:
        command_type = cmd.COMMAND_TYPE_OF[type(payload)]
        command_id = command_id or command_id_for(workspace_id, command_type, idempotency_key)
        envelope = cmd.CommandEnvelope.wrap(
            payload, command_id=command_id, workspace_id=workspace_id,
            issued_by=caller.issued_by, issued_at=datetime.now(UTC),
        )
        decision = deps.app.handle(envelope)
        if decision.command_type != command_type:
            raise ProblemError(422, "idempotency_key_reused", f"command {command_id} was a {decision.command_type}")
        if not decision.accepted:
            raise rejection(decision.reason_code or "rejected", decision.detail, command_id)
        return decision

    # Workspaces ------------------------------------------------------------------------

    @router.post(
        "/v1/workspaces", status_code=201, response_model=api.WorkspaceCreated, tags=["workspaces"],
        summary="Open a workspace (admin)", responses=openapi_responses(401, 403, 409, 422, 503),
        description="Opens the workspace and its wallet, and issues a service API key bound to it. The key is "
        "returned once: a repeat with the same Idempotency-Key answers with the workspace and `api_key: null`.",
    )
    def open_workspace(body: api.OpenWorkspaceRequest, caller: Caller, idempotency_key: IdempotencyKey = None):
        if not caller.is_admin:
            raise ProblemError(403, "forbidden", "only the admin key can open workspaces")
        workspace_id = body.workspace_id or (
            derived_id("workspace", idempotency_key) if idempotency_key else str(uuid.uuid4())
        )
        command_id = command_id_for(workspace_id, "open_workspace.v1", idempotency_key)
        decide(caller, workspace_id, body.payload(), idempotency_key, command_id)
        key_id = auth.service_key_id(command_id)
        api_key = auth.issue_service_key(deps.pool, workspace_id, key_id)
        workspace = deps.app.find(Workspace, workspace_id)
        assert workspace is not None, "an accepted open_workspace leaves a workspace"
        return api.WorkspaceCreated(
            workspace_id=workspace_id, name=workspace.name, tier=workspace.tier, timezone=workspace.timezone,
            limit_overrides=workspace.limit_overrides, limits={n: workspace.limit(n) for n in tiers.LIMIT_NAMES},
            command_id=command_id, api_key_id=key_id, api_key=api_key,
        )

    @router.post(
        "/v1/workspaces/{workspace_id}/social-accounts", status_code=201, response_model=api.SocialAccountConnected,
        tags=["workspaces"], summary="Connect a social account", responses=openapi_responses(401, 404, 409, 422, 503),
        description="409 `account_limit_reached` when the tier's accounts-per-platform limit is reached. "
        "The access token is sealed at rest and never returned.",
    )
    def connect_social_account(workspace_id: str, body: api.ConnectSocialAccountRequest, caller: Caller,
                               idempotency_key: IdempotencyKey = None):
        decision = decide(caller, within(caller, workspace_id), body, idempotency_key)
        account = deps.app.find(SocialAccount, decision.result["social_account_id"])
        assert account is not None
        return api.SocialAccountConnected(
            social_account_id=account.social_account_id, platform=account.platform, handle=account.handle,
            instance_url=account.instance_url, command_id=decision.command_id,
        )

    # Credits ---------------------------------------------------------------------------

    @router.post(
        "/v1/workspaces/{workspace_id}/credits/grants", status_code=201, response_model=api.CreditsGranted,
        tags=["credits"], summary="Grant credits", responses=openapi_responses(401, 404, 409, 422, 503),
    )
    def grant_credits(workspace_id: str, body: api.GrantCreditsRequest, caller: Caller,
                      idempotency_key: IdempotencyKey = None):
        decision = decide(caller, within(caller, workspace_id), body, idempotency_key)
        return api.CreditsGranted(**decision.result, command_id=decision.command_id)

    @router.get(
        "/v1/workspaces/{workspace_id}/wallet", response_model=api.WalletView, tags=["credits"],
        summary="The workspace's credit wallet", responses=openapi_responses(401, 404),
        description="Read from the event store, so it reflects every accepted command immediately. A cancelled "
        "post's holds stay pending until the settler releases them.",
    )
    def wallet(workspace_id: str, caller: Caller):
        found = deps.app.find(Wallet, within(caller, workspace_id))
        if found is None:
            raise ProblemError(404, "unknown_workspace", f"no workspace {workspace_id}")
        return api.WalletView(
            workspace_id=workspace_id, available=found.available, granted=found.granted, held=found.held,
            grants=[
                api.GrantView(grant_id=gid, amount=g.amount, remaining=g.remaining, source=g.source,
                              expires_at=g.expires_at)
                for gid, g in found.grants.items()
            ],
            holds=[
                api.HoldView(hold_id=hid, post_id=h.post_id, destination_id=h.destination_id, amount=h.amount,
                             status=h.status)
                for hid, h in found.holds.items()
            ],
        )

    # Posts -----------------------------------------------------------------------------

    @router.post(
        "/v1/workspaces/{workspace_id}/posts", status_code=201, response_model=api.PostScheduled, tags=["posts"],
        summary="Schedule a post", responses=openapi_responses(401, 402, 404, 409, 422, 503),
        description="Holds one credit per destination. 402 `insufficient_credits`; 409 `queue_full` at the "
        "tier's queue size; 422 `unknown_social_account` when a destination is not one of the workspace's "
        "accounts, `publish_at_in_past` when publish_at has passed.",
    )
    def schedule_post(workspace_id: str, body: api.SchedulePostRequest, caller: Caller, response: Response,
                      idempotency_key: IdempotencyKey = None):
        decision = decide(caller, within(caller, workspace_id), body, idempotency_key)
        post_id = decision.result["post_id"]
        response.headers["Location"] = f"/v1/workspaces/{workspace_id}/posts/{post_id}"
        return api.PostScheduled(post_id=post_id, publish_at=decision.result["publish_at"], status="scheduled",
                                 command_id=decision.command_id)

    @router.post(
        "/v1/workspaces/{workspace_id}/posts/{post_id}/cancel", response_model=api.PostCancelled, tags=["posts"],
        summary="Cancel a post", responses=openapi_responses(401, 404, 409, 422, 503),
        description="Cancels every destination still waiting. 409 `post_not_cancellable` when none is.",
    )
    def cancel_post(workspace_id: str, post_id: str, caller: Caller, body: api.CancelPostRequest | None = None,
                    idempotency_key: IdempotencyKey = None):
        payload = cmd.CancelPost(post_id=post_id, reason=(body or api.CancelPostRequest()).reason)
        decision = decide(caller, within(caller, workspace_id), payload, idempotency_key)
        return api.PostCancelled(**decision.result, command_id=decision.command_id)

    @router.get(
        "/v1/workspaces/{workspace_id}/posts/{post_id}", response_model=api.PostView, tags=["posts"],
        summary="A post and each destination's state", responses=openapi_responses(401, 404),
    )
    def get_post(workspace_id: str, post_id: str, caller: Caller):
        post = deps.app.find_in_workspace(Post, post_id, within(caller, workspace_id))
        if post is None:
            raise ProblemError(404, "unknown_post", f"no post {post_id} in this workspace")
        return api.PostView(
            post_id=post.post_id, workspace_id=workspace_id, status=post.status, text=post.text,
            media_urls=post.media_urls, publish_at=post.publish_at,
            destinations=[
                api.DestinationView(
                    destination_id=d_id, social_account_id=d.social_account_id, platform=d.platform,
                    handle=d.handle, text=d.text, status=d.status, attempt=d.attempt, due_at=d.due_at,
                    platform_post_id=d.platform_post_id, url=d.url, reason=d.reason,
                )
                for d_id, d in post.destinations.items()
            ],
        )

    @router.get(
        "/v1/workspaces/{workspace_id}/queue", response_model=api.QueueView, tags=["posts"],
        summary="The workspace's publishing queue", responses=openapi_responses(401, 404),
        description="From the queue read model, which follows the events topic and may lag a write slightly.",
    )
    def queue(workspace_id: str, caller: Caller):
        with deps.pool.connection() as conn:
            view = read_queue(conn, within(caller, workspace_id))
        if view["tier"] is None and deps.app.find(Workspace, workspace_id) is None:
            raise ProblemError(404, "unknown_workspace", f"no workspace {workspace_id}")
        return view

    # Asynchronous commands -------------------------------------------------------------

    @router.post(
        "/v1/commands", status_code=202, response_model=api.CommandQueued, tags=["commands"],
        summary="Submit any command to the commands topic",
        responses=openapi_responses(401, 403, 404, 422, 503),
        description="Validates the envelope and payload, then produces it to the commands topic; the outcome "
        "arrives as events correlated by `command_id` (the idempotency key). Service keys may only address their "
        f"own workspace (else 404) and only these types (else 403): {', '.join(sorted(SERVICE_COMMAND_TYPES))}; "
        "their `issued_by` is replaced with `api-key:<key id>`. The admin key may send any type and keeps "
        "`issued_by` as sent (e.g. to replay a dead letter unchanged).",
    )
    def submit_command(envelope: cmd.CommandEnvelope, caller: Caller):
        within(caller, envelope.workspace_id)
        if envelope.type not in cmd.COMMAND_TYPES:
            raise ProblemError(422, "unknown_command_type", f"unknown command type {envelope.type!r}",
                               known_types=sorted(cmd.COMMAND_TYPES))
        if not caller.is_admin and envelope.type not in SERVICE_COMMAND_TYPES:
            raise ProblemError(403, "forbidden", f"a service key cannot send {envelope.type}")
        try:
            envelope.parsed_payload()
        except ValidationError as error:
            raise ProblemError(422, "invalid_payload", f"the payload is not a valid {envelope.type}",
                               errors=field_errors(list(error.errors()), ("body", "payload"))) from None
        if not caller.is_admin:
            envelope = envelope.model_copy(update={"issued_by": caller.issued_by})
        try:
            deps.submit_command(envelope)
        except Exception:
            # Not produced, so nothing happened: the client may retry with the same command_id.
            raise ProblemError(503, "submit_failed", "the command could not be queued; retry with the same "
                               "command_id", {"Retry-After": "1"}) from None
        return api.CommandQueued(command_id=envelope.command_id)

    # Admin: dead letters ---------------------------------------------------------------

    def dead_letter_store(caller: auth.Principal):
        if not caller.is_admin:
            raise ProblemError(403, "forbidden", "only the admin key can see or replay dead letters")
        if deps.dead_letters is None:
            raise ProblemError(503, "dead_letters_unavailable", "dead letters are not wired into this gateway")
        return deps.dead_letters

    @router.get(
        "/v1/admin/dead-letters", tags=["admin"], summary="Dead letters in the DLQ topic (admin)",
        responses=openapi_responses(401, 403, 422, 503),
        description="Messages a consumer could not parse or apply, oldest first: id (`<partition>:<offset>` in "
        "the DLQ), cause, consumer, source topic/partition/offset, key, value (utf-8, best effort), timestamp.",
    )
    def list_dead_letters(caller: Caller, limit: Annotated[int, Query(ge=1, le=1000)] = 100):
        store = dead_letter_store(caller)
        try:
            found = store.list(limit)
        except Exception:
            raise ProblemError(503, "broker_unavailable", "the DLQ topic could not be read; retry later",
                               {"Retry-After": "5"}) from None
        return {"dead_letters": [d.to_dict() for d in found]}

    @router.post(
        "/v1/admin/dead-letters/{dead_letter_id}/replay", tags=["admin"],
        summary="Replay a dead letter to its source topic (admin)", responses=openapi_responses(401, 403, 404, 503),
        description="Produces the original key and value to the topic it came from, with header "
        "`herald_replayed_from=<id>`. Safe to repeat: commands are deduplicated by command id, events by global "
        "position. 404 `unknown_dead_letter` for an id not in the DLQ.",
    )
    def replay_dead_letter(dead_letter_id: str, caller: Caller):
        store = dead_letter_store(caller)
        try:
            replayed = store.replay(dead_letter_id)
        except KeyError:
            raise ProblemError(404, "unknown_dead_letter", f"no dead letter {dead_letter_id}") from None
        except Exception:
            raise ProblemError(503, "replay_failed", "the dead letter could not be replayed; retry later",
                               {"Retry-After": "1"}) from None
        return {"replayed": replayed.to_dict()}

    # Health ----------------------------------------------------------------------------

    @router.get("/metrics", tags=["health"], summary="Prometheus metrics of this process",
                response_class=Response)
    def metrics() -> Response:
        return Response(prometheus_client.generate_latest(), media_type=prometheus_client.CONTENT_TYPE_LATEST)

    @router.get("/healthz", response_model=api.Health, tags=["health"], summary="The process is running")
    def healthz():
        return api.Health()

    @router.get(
        "/readyz", response_model=api.Readiness, tags=["health"], summary="Dependencies answer",
        responses={503: {**openapi_responses(503)[503], "description": "a check failed; `checks` names it"}},
    )
    def readyz():
        checks, failing = {}, False
        for name, check in deps.ready_checks.items():
            try:
                check()
                checks[name] = "ok"
            except Exception as error:  # any failure means not ready
                checks[name] = f"{type(error).__name__}: {error}"[:300]
                failing = True
        if failing:
            raise ProblemError(503, "not_ready", "a dependency is not ready: "
                               + ", ".join(n for n, s in checks.items() if s != "ok"), checks=checks)
        return api.Readiness(checks=checks)

    return router


def command_id_for(workspace_id: str, command_type: str, idempotency_key: str | None) -> str:
    """The command id of a synchronous request.

    A client's Idempotency-Key is scoped to its workspace and the command type, so two
    workspaces (or two endpoints) using the same key never share an outcome.
    """
    if idempotency_key is None:
        return str(uuid.uuid4())
    return derived_id("http", workspace_id, command_type, idempotency_key)
