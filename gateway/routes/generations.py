"""AI captions: POST a generation (counted against the day's limit, never charged), set the brand voice.

The provider is called here, between two decisions and outside both: `generate_content` checks the
limit and counts the generation before any call; `record_generation_outcome` records the answer or
the failure. A failed call is recorded and charges nothing (docs/generation.md)."""

# No `from __future__ import annotations`: FastAPI must see the endpoint-local Annotated aliases.
import math
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from domain.base import derived_id
from gateway import auth
from gateway.deps import IdempotencyKey, MinPosition, Shared, WorkspaceId, command_id_for
from gateway.problems import ProblemError, openapi_responses
from processors.generation import prompt
from processors.generation.calls import ConfiguredProvider, call, voice_of
from projections import brand_voices as voices
from projections import generations as log
from schemas import api
from schemas import commands as cmd

# A failed generation's problem, by the failure's reason: (status, reason code, Retry-After when the
# provider named none). Worth retrying later: 503 with Retry-After; the provider refusing Herald's
# key, request or output: 502, each with its own code.
FAILURE_PROBLEMS: dict[str, tuple[int, str, float | None]] = {
    "rate_limited": (503, "generation_rate_limited", 30.0),
    "transient": (503, "generation_unavailable", 5.0),
    "not_configured": (503, "generation_not_configured", None),
    "auth": (502, "generation_provider_auth", None),
    "invalid_output": (502, "generation_invalid_output", None),
    "rejected": (502, "generation_rejected", None),
}


def router(shared: Shared) -> APIRouter:
    r = APIRouter(tags=["generation"])
    Caller = Annotated[auth.Principal, Depends(shared.principal)]
    generator = ConfiguredProvider(shared.deps.generator)

    @r.post(
        "/v1/workspaces/{workspace_id}/generations", status_code=201, response_model=api.Generation,
        summary="Generate captions with AI", responses=openapi_responses(401, 404, 409, 422, 502, 503),
        description="One caption per platform, each within the platform's text limit with the hashtags appended, "
        "shaped by the workspace's brand voice. Never charges credits; counts against the tier's daily generations "
        "(the workspace's local day), also when the provider fails. 409 `daily_generation_limit_reached` over the "
        "limit (nothing is called). When the provider failed (the failure recorded, `reason` says why): 503 with "
        "Retry-After `generation_rate_limited` (rate_limited) or `generation_unavailable` (transient: 5xx, "
        "timeout), 503 `generation_not_configured`, 502 `generation_provider_auth` (the provider refused Herald's "
        "key), 502 `generation_invalid_output`, 502 `generation_rejected`. A repeated Idempotency-Key answers the "
        "recorded outcome without calling the provider again.",
    )
    def generate(workspace_id: WorkspaceId, body: api.GenerateRequest, caller: Caller, response: Response,
                 idempotency_key: IdempotencyKey = None):
        ws = shared.within(caller, workspace_id, auth.WORKSPACE_WRITE)
        command_id = command_id_for(ws, "generate_content.v1", idempotency_key)
        generation_id = body.generation_id or derived_id("generation", command_id)
        payload = cmd.GenerateContent(generation_id=generation_id, **body.model_dump(exclude={"generation_id"}))
        requested = shared.decide(caller, ws, payload, idempotency_key, response, command_id=command_id)
        voice = requested.result.get("brand_voice")
        request = prompt.GenerationRequest(
            topic=payload.topic, platforms=[str(p) for p in payload.platforms], tone=payload.tone,
            language=payload.language, context=payload.context, media_description=payload.media_description,
            voice=voice_of(voice))
        record_id = derived_id("record_generation_outcome", ws, generation_id)
        # A repeated request (same Idempotency-Key) whose outcome is on record answers it without a call.
        recorded = shared.deps.app.decided(ws, record_id)
        retry_after_s = None
        if recorded is None:
            called = call(generator, generation_id, request)
            retry_after_s = called.retry_after_s
            recorded = shared.decide(caller, ws, called.command, None, response, command_id=record_id)
        result = recorded.result
        view = api.Generation(
            generation_id=generation_id, status=result["status"], captions=result.get("captions", {}),
            hashtags=result.get("hashtags", []), provider=result["provider"], model=result["model"],
            prompt_sha256=result["prompt_sha256"], tokens_in=result["tokens_in"], tokens_out=result["tokens_out"],
            latency_ms=result["latency_ms"], reason=result.get("reason"), detail=result.get("detail", ""),
            day=requested.result["day"], generations_today=requested.result["generations_today"],
            daily_limit=requested.result["daily_limit"], brand_voice_version=voice["version"] if voice else 0,
            command_id=recorded.command_id, position=recorded.position)
        if view.status == "failed":
            status, code, default_wait = FAILURE_PROBLEMS.get(view.reason or "", (502, "generation_failed", None))
            wait = retry_after_s if retry_after_s is not None else default_wait
            headers = {"Retry-After": str(max(1, math.ceil(wait)))} if wait is not None and status == 503 else None
            raise ProblemError(status, code, f"the provider failed ({view.reason}): {view.detail}", headers,
                               generation_id=generation_id, reason=view.reason, provider=view.provider,
                               model=view.model, generations_today=view.generations_today,
                               daily_limit=view.daily_limit, command_id=view.command_id, position=view.position)
        response.headers["Location"] = f"/v1/workspaces/{workspace_id}/generations/{generation_id}"
        return view

    @r.get(
        "/v1/workspaces/{workspace_id}/generations", summary="The workspace's generation log",
        responses=openapi_responses(401, 404, 422, 503),
        description="Newest first: request (topic, platforms, tone, language, brand voice version, local day), "
        "status (requested, succeeded, failed), provider, model, prompt SHA-256, tokens in/out, latency, the "
        "captions or the failure's reason. `before` (a `requested_at`) pages back.",
    )
    def get_log(workspace_id: WorkspaceId, caller: Caller, response: Response, before: cmd.Timestamp | None = None,
                limit: Annotated[int, Query(ge=1, le=log.MAX_LIMIT)] = 50, min_position: MinPosition = None):
        with shared.read(shared.within(caller, workspace_id), min_position, response) as conn:
            found = log.read_log(conn, workspace_id, before=before, limit=limit)
        return {"generations": found}

    @r.get(
        "/v1/admin/generation-stats", summary="AI generation stats over every workspace (admin)",
        responses=openapi_responses(401, 403, 422, 503),
        description="Total, succeeded, failed, pending (requested, no outcome recorded), `success_rate` (succeeded "
        "/ finished), failures by reason, generations per provider and model, tokens, mean latency, top topics; "
        "`since` limits it to generations requested from then on.",
    )
    def generation_stats(caller: Caller, since: cmd.Timestamp | None = None,
                         top: Annotated[int, Query(ge=1, le=100)] = 10):
        if not caller.is_admin:
            raise ProblemError(403, "forbidden", "only the admin key can see generation stats over every workspace")
        with shared.deps.pool.connection() as conn:
            return log.read_stats(conn, since, top)

    @r.get(
        "/v1/workspaces/{workspace_id}/brand-voice", response_model=api.BrandVoiceRead,
        summary="The workspace's brand voice", responses=openapi_responses(401, 404, 422, 503),
        description="The current version; 404 `no_brand_voice` until one is set.",
    )
    def get_brand_voice(workspace_id: WorkspaceId, caller: Caller, response: Response,
                        min_position: MinPosition = None):
        with shared.read(shared.within(caller, workspace_id), min_position, response) as conn:
            found = voices.read_voice(conn, workspace_id)
        if found is None:
            raise ProblemError(404, "no_brand_voice", "this workspace has no brand voice yet: PUT one")
        return found

    @r.put(
        "/v1/workspaces/{workspace_id}/brand-voice", response_model=api.BrandVoiceView,
        summary="Set the workspace's brand voice", responses=openapi_responses(401, 404, 422, 503),
        description="Replaces the voice as a new version; every later generation's prompt uses it and records "
        "its version.",
    )
    def set_brand_voice(workspace_id: WorkspaceId, body: api.SetBrandVoiceRequest, caller: Caller,
                        response: Response, idempotency_key: IdempotencyKey = None):
        ws = shared.within(caller, workspace_id, auth.WORKSPACE_WRITE)
        decision = shared.decide(caller, ws, body, idempotency_key, response)
        return api.BrandVoiceView(**decision.result, command_id=decision.command_id, position=decision.position)

    return r
