"""Operating Herald (admin key only): dead letters, unknown publish outcomes."""

# No `from __future__ import annotations`: FastAPI must see the endpoint-local Annotated aliases.
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from gateway import auth
from gateway.deps import IdempotencyKey, ResourceId, Shared, WorkspaceId
from gateway.problems import ProblemError, openapi_responses
from schemas import api
from schemas import commands as cmd


def router(shared: Shared) -> APIRouter:
    r = APIRouter(tags=["admin"])
    Caller = Annotated[auth.Principal, Depends(shared.principal)]

    def dead_letter_store(caller: auth.Principal):
        if not caller.is_admin:
            raise ProblemError(403, "forbidden", "only the admin key can see or replay dead letters")
        if shared.deps.dead_letters is None:
            raise ProblemError(503, "dead_letters_unavailable", "dead letters are not wired into this gateway")
        return shared.deps.dead_letters

    @r.get(
        "/v1/admin/dead-letters", summary="Dead letters in the DLQ topic (admin)",
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

    @r.post(
        "/v1/admin/dead-letters/{dead_letter_id}/replay",
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

    @r.post(
        "/v1/admin/workspaces/{workspace_id}/posts/{post_id}/destinations/{destination_id}/resolution",
        response_model=api.OutcomeResolved, summary="Resolve an unknown publish outcome (admin)",
        responses=openapi_responses(401, 403, 404, 409, 422, 503),
        description="For a destination in `outcome_unknown` that reconciliation could not settle: say what the "
        "platform holds. `published` (with `platform_post_id`, optional `url`) consumes its credit hold; "
        "`not_published` fails the destination and releases the hold. 409 `outcome_fenced` when the destination "
        "is not in `outcome_unknown` at that attempt (e.g. already resolved).",
    )
    def resolve_outcome(workspace_id: WorkspaceId, post_id: ResourceId, destination_id: ResourceId, body: api.ResolveOutcomeRequest,
                        caller: Caller, response: Response, idempotency_key: IdempotencyKey = None):
        if not caller.is_admin:
            raise ProblemError(403, "forbidden", "only the admin key can resolve publish outcomes")
        payload = cmd.ResolvePublishOutcome(post_id=post_id, destination_id=destination_id, **body.model_dump())
        decision = shared.decide(caller, shared.within(caller, workspace_id), payload, idempotency_key, response)
        return api.OutcomeResolved(**decision.result, command_id=decision.command_id, position=decision.position)

    @r.post(
        "/v1/admin/workspaces/{workspace_id}/posts/{post_id}/destinations/{destination_id}/retry",
        response_model=api.DestinationRetried, summary="Publish a failed or skipped destination again (admin)",
        responses=openapi_responses(401, 402, 403, 404, 409, 422, 503),
        description="The job monitor's manual retry: the destination waits again, due now, with a new credit hold "
        "(402 `insufficient_credits` when the wallet has none available), and its next attempt starts within "
        "seconds. 409 `destination_not_retryable` unless it is `failed` or `skipped`.",
    )
    def retry_destination(workspace_id: WorkspaceId, post_id: ResourceId, destination_id: ResourceId,
                          caller: Caller, response: Response, idempotency_key: IdempotencyKey = None):
        if not caller.is_admin:
            raise ProblemError(403, "forbidden", "only the admin key can retry destinations")
        payload = cmd.RetryDestination(post_id=post_id, destination_id=destination_id)
        decision = shared.decide(caller, shared.within(caller, workspace_id), payload, idempotency_key, response)
        return api.DestinationRetried(**decision.result, command_id=decision.command_id, position=decision.position)

    return r
