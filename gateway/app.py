"""The HTTP gateway: commands decided synchronously or queued to Kafka, queries, health."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request

from gateway import console, problems, routes
from gateway.body_limits import BodyLimits
from gateway.deps import GatewayDeps, Shared

__all__ = ["GatewayDeps", "create_app"]

AUDIT = logging.getLogger("herald.audit")

DESCRIPTION = """
Schedule social-media posts, publish them on time, charge prepaid credits.

**Authentication.** `Authorization: Bearer <key>` (or `X-API-Key: <key>`). A key has scopes:
`admin` (anything), `workspace:read`, `workspace:write`, `credits:grant`, `analytics:read`;
the key issued when a workspace is opened is bound to it and holds `workspace:read` and
`workspace:write` (it cannot grant its workspace credits). Asking a key about another
workspace answers **404** `unknown_workspace`, exactly as for a workspace that does not exist,
so keys cannot probe which workspaces exist; a missing scope answers **403** `forbidden`. A
missing, unknown, revoked or expired key answers **401**. Keys are listed, revoked and rotated
under `/v1/api-keys`.

**Errors** are `application/problem+json` (RFC 9457) with `type`, `title`, `status`,
`detail` and a stable `reason_code`; rejected commands keep the domain's reason code:
404 `unknown_workspace`, `unknown_post`; 422 `invalid_payload`, `publish_at_in_past`, `content_invalid`,
`unknown_social_account` (a destination the workspace lacks: a fault of the body),
`unknown_destination`, `publish_at_beyond_horizon`, `expires_at_in_past`; 402
`insufficient_credits`; 409 tier limits (`queue_full`, `account_limit_reached`) and conflicts
(`*_exists`, `post_not_cancellable`, ...). Numbers are strict (no `"5"` or `true` for 5) and
timestamps are RFC 3339 strings with an offset. 413 `body_too_large` above the body limit;
429 `rate_limited` (with `Retry-After` and `RateLimit-*`) over a key's or a workspace's rate.

**Idempotency.** Every decision is recorded, so a synchronous command repeated with the same
`Idempotency-Key` answers with its first outcome and changes nothing. The same key with a
different body answers 422 `idempotency_key_reused`.
"""

TAGS = [
    {"name": "workspaces", "description": "Workspaces and their social accounts"},
    {"name": "credits", "description": "The prepaid credit wallet"},
    {"name": "posts", "description": "Scheduling, cancelling and following posts"},
    {"name": "commands", "description": "Any command, queued to the commands topic"},
    {"name": "api-keys", "description": "API keys: create, list, revoke, rotate"},
    {"name": "health", "description": "Liveness and readiness"},
    {"name": "admin", "description": "Operating Herald (admin key only): dead letters"},
    {"name": "audit", "description": "Histories, past states and rejected commands"},
    {"name": "tiers", "description": "Tiers as data, a workspace's tier and limit overrides (admin)"},
    {"name": "notifications", "description": "The workspace's notifications inbox"},
    {"name": "usage", "description": "Usage per day and per credit period; the limit check"},
    {"name": "platforms", "description": "The platforms Herald publishes to and what each supports"},
]


def create_app(deps: GatewayDeps) -> FastAPI:
    app = FastAPI(title="Herald", version="0.1.0", description=DESCRIPTION, openapi_tags=TAGS)
    problems.install(app)
    shared = Shared(deps)
    app.include_router(routes.build(deps, shared))
    app.mount("/console", console.create(shared))  # the admin console's pages (docs/console.md)
    app.add_middleware(BodyLimits, max_bytes=deps.max_body_bytes)

    @app.middleware("http")
    async def access_log(request: Request, call_next):  # noqa: ANN001, ANN202 - Starlette's middleware signature
        # Every authenticated request, reads included, attributed to its key (decisions also
        # carry it in their events' issued_by). Never the key itself.
        response = await call_next(request)
        key_id = getattr(request.state, "api_key_id", None)
        if key_id is not None:
            AUDIT.info("key=%s %s %s %s", key_id, request.method, request.url.path, response.status_code)
        return response
    described = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = problems.complete_openapi(described())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
