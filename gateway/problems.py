"""Errors as RFC 9457 problem details (``application/problem+json``) carrying a ``reason_code``."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
import psycopg_pool
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from domain.application import ConflictsPersisted
from domain.rejections import Reason
from schemas import api

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"

# A rejected command's reason code → HTTP status. 404: the thing named in the path does not
# exist (or belongs to another workspace); 422: the request body is wrong, including naming a
# social account the workspace does not have; 402: not enough credits; 409: a tier limit or a
# conflict with the current state (retrying the same request cannot succeed).
REASON_STATUS: dict[str, int] = {
    Reason.unknown_workspace: 404,
    Reason.unknown_post: 404,
    Reason.invalid_payload: 422,
    Reason.unknown_command_type: 422,
    Reason.unknown_social_account: 422,
    Reason.unknown_destination: 422,
    Reason.publish_at_in_past: 422,
    Reason.content_invalid: 422,
    Reason.publish_at_beyond_horizon: 422,
    Reason.expires_at_in_past: 422,
    Reason.insufficient_credits: 402,
    Reason.queue_full: 409,
    Reason.account_limit_reached: 409,
    Reason.workspace_exists: 409,
    Reason.account_exists: 409,
    Reason.post_exists: 409,
    Reason.grant_exists: 409,
    Reason.post_not_cancellable: 409,
    Reason.hold_not_pending: 409,
    Reason.attempt_fenced: 409,
    Reason.outcome_fenced: 409,
    Reason.destination_not_retryable: 409,
    Reason.daily_post_limit_reached: 409,
    Reason.scheduling_horizon_exceeded: 409,
    Reason.daily_generation_limit_reached: 409,
    Reason.automation_rule_limit_reached: 409,
    Reason.unknown_tier: 422,
    Reason.not_due: 409,
    Reason.generation_exists: 409,
    Reason.unknown_generation: 404,
    Reason.generation_already_recorded: 409,
    Reason.invalid_schedule: 422,
    Reason.unknown_slot: 404,
    Reason.slot_filled: 409,
    Reason.slot_in_past: 409,
    Reason.unknown_series: 404,
    Reason.automation_rule_exists: 409,
    Reason.unknown_automation_rule: 404,
    Reason.rule_not_active: 409,
    Reason.rule_not_paused: 409,
    Reason.rule_run_pending: 409,
    Reason.rule_run_not_pending: 409,
    Reason.occurrence_already_fired: 409,
    Reason.not_an_occurrence: 422,
    Reason.notification_delivery_ended: 409,
    Reason.notification_attempt_fenced: 409,
    Reason.post_not_draft: 409,
    Reason.post_not_awaiting_approval: 409,
    Reason.no_destinations: 422,
    Reason.destination_started: 409,
    Reason.destination_exists: 409,
    Reason.post_not_editable: 409,
}


class ProblemError(Exception):
    """Raise anywhere in a request to answer with a problem document."""

    def __init__(self, status: int, reason_code: str, detail: str, headers: dict[str, str] | None = None,
                 **extensions: Any) -> None:
        super().__init__(f"{status} {reason_code}: {detail}")
        self.status, self.reason_code, self.detail = status, reason_code, detail
        self.headers, self.extensions = headers, extensions


def rejection(reason_code: str, detail: str, command_id: str, limit: dict[str, Any] | None = None) -> ProblemError:
    """A rejected command's problem; a tier limit's adds ``limit`` (limit, tier, current, allowed)."""
    extensions = {"limit": limit} if limit else {}
    return ProblemError(REASON_STATUS.get(reason_code, 422), reason_code, detail, command_id=command_id, **extensions)


def problem_response(status: int, reason_code: str, detail: str, headers: dict[str, str] | None = None,
                     **extensions: Any) -> JSONResponse:
    body = api.problem(status, reason_code, detail, **extensions)
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def field_errors(errors: list[dict[str, Any]], prefix: tuple[str | int, ...] = ()) -> list[dict[str, Any]]:
    """Pydantic errors reduced to JSON-safe {loc, msg, type} (the raw ones may hold exceptions)."""
    return [{"loc": [*prefix, *e["loc"]], "msg": e["msg"], "type": e["type"]} for e in errors]


def openapi_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Problem responses for a route's OpenAPI entry."""
    described = {
        401: "missing, unknown or revoked API key",
        402: "not enough credits",
        403: "the key's scope does not allow this",
        404: "no such resource in this workspace; a service key asking about another workspace gets this too",
        409: "a tier limit or a conflict with the current state",
        413: "the request body is larger than the gateway accepts",
        422: "the request is invalid (body, path, headers, or a domain rule about the body)",
        429: "the key or the workspace is over its rate; wait `Retry-After` seconds",
        502: "an upstream service (the AI provider) failed; the failure is recorded",
        503: "a dependency is unavailable; safe to retry with the same Idempotency-Key",
    }
    content = {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    return {s: {"model": api.Problem, "description": described[s], "content": content} for s in statuses}


def complete_openapi(schema: dict[str, Any]) -> dict[str, Any]:
    """Every error an operation can answer, documented as a problem document: 413 where there is
    a body, 422 where there is any input, 401, 403 (a scope) and 429 where a key is needed. FastAPI's own 422
    (``HTTPValidationError``) and its ``application/json`` copies are not what the gateway sends,
    so they are replaced."""
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            responses = operation.setdefault("responses", {})
            wanted = []
            if "requestBody" in operation:
                wanted += [413, 422]
            if operation.get("parameters"):
                wanted.append(422)
            if operation.get("security"):
                wanted += [401, 403, 429]
            for status in wanted:
                responses.setdefault(str(status), {"description": openapi_responses(status)[status]["description"]})
            for status, response in responses.items():
                if status[0] in "45":  # the gateway sends every error as a problem document, nothing else
                    response["content"] = {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    return schema


def _allowed_methods(request: Request) -> list[str]:
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


def install(app: FastAPI) -> None:
    """Answer every error, expected or not, with a problem document."""

    @app.exception_handler(ProblemError)
    async def _problem(_: Request, error: ProblemError) -> JSONResponse:
        return problem_response(error.status, error.reason_code, error.detail, error.headers, **error.extensions)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
        errors = field_errors(list(error.errors()))
        return problem_response(422, "validation_error", "the request is not valid; see errors", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed"}
        headers = dict(error.headers or {})
        if error.status_code == 405:  # Starlette names only the first route of the path; a path has several
            headers["Allow"] = ", ".join(_allowed_methods(request))
        return problem_response(error.status_code, codes.get(error.status_code, "http_error"), str(error.detail),
                                headers)

    @app.exception_handler(ConflictsPersisted)
    async def _contention(_: Request, error: ConflictsPersisted) -> JSONResponse:
        log.warning("%s", error)
        return problem_response(503, "contention", "concurrent changes to the same data; retry with the same "
                                "Idempotency-Key", {"Retry-After": "1"})

    @app.exception_handler(psycopg.OperationalError)
    @app.exception_handler(psycopg_pool.PoolTimeout)
    async def _database_down(_: Request, error: Exception) -> JSONResponse:
        log.error("database unavailable: %s", error)
        return problem_response(503, "database_unavailable", "the database is not answering; retry later",
                                {"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, error: Exception) -> JSONResponse:
        # No stack trace or message in the body: it may hold internals. The server logs it.
        return problem_response(500, "internal_error", "an unexpected error occurred; it has been logged")
