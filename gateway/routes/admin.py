"""Operating Herald (admin key only): dead letters."""

# No `from __future__ import annotations`: FastAPI must see the endpoint-local Annotated aliases.
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from gateway import auth
from gateway.deps import Shared
from gateway.problems import ProblemError, openapi_responses


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

    return r
