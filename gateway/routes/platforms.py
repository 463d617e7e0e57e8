"""The platforms this Herald publishes to, and what each can do."""

# No `from __future__ import annotations`: FastAPI must see the endpoint-local Annotated aliases.
from typing import Annotated

from fastapi import APIRouter, Depends

from gateway import auth
from gateway.deps import Shared
from gateway.problems import ProblemError, openapi_responses
from processors.platforms.base import PlatformAdapter
from schemas import api


def router(shared: Shared) -> APIRouter:
    r = APIRouter(tags=["platforms"])
    Caller = Annotated[auth.Principal, Depends(shared.principal)]

    @r.get(
        "/v1/platforms", response_model=api.PlatformList, summary="The platforms Herald publishes to",
        responses=openapi_responses(401, 503),
        description="Every platform this Herald runs an adapter for, with what it supports (media kinds, text "
        "limit, threads, how an unknown outcome is reconciled), its documented rate budgets, the settings a connect "
        "must give, and the API documentation it follows. Any valid key may ask.",
    )
    def list_platforms(caller: Caller):
        registry = shared.registry()
        if registry is None:
            raise ProblemError(503, "platforms_unavailable", "this gateway runs no platform adapters")
        return api.PlatformList(platforms=[view(adapter) for adapter in registry.all()])

    return r


def view(adapter: PlatformAdapter) -> api.PlatformView:
    c = adapter.capabilities
    refresh = adapter.token_refresh
    return api.PlatformView(
        platform=adapter.platform, display_name=c.display_name, media_kinds=list(c.media_kinds),
        max_media=c.max_media, max_length=c.max_length, length_unit=c.length_unit, threads=c.threads,
        reconcile=str(c.reconcile),
        rate_budgets=[api.RateBudgetView(requests=b.requests, per_s=b.per_s, scope=b.scope, source=b.source)
                      for b in adapter.rate_budgets],
        required_settings=list(adapter.required_settings), optional_settings=list(c.optional_settings),
        oauth=refresh is not None and refresh.connectable, token_refresh=refresh is not None,
        doc_url=c.doc_url, notes=c.notes)
