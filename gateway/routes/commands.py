"""Any command, queued to the commands topic."""

# No `from __future__ import annotations`: FastAPI must see the endpoint-local Annotated aliases.
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import ValidationError

from gateway import auth
from gateway.credit_permissions import may_grant
from gateway.deps import Shared
from gateway.problems import ProblemError, field_errors, openapi_responses
from schemas import api
from schemas import commands as cmd

# Service keys may send what a client of one workspace asks for. The rest (opening
# workspaces, and the processors' attempt/outcome/hold commands, which move money and fence
# publishing) need the admin key.
SERVICE_COMMAND_TYPES = frozenset(
    {"connect_social_account.v1", "schedule_post.v1", "cancel_post.v1", "mark_notices_read.v1"}
)
# Granting credits needs the admin key or the credits:grant scope (gateway/credit_permissions.py).
GRANT_COMMAND_TYPES = frozenset({"grant_credits.v1"})


def router(shared: Shared) -> APIRouter:
    r = APIRouter(tags=["commands"])
    Caller = Annotated[auth.Principal, Depends(shared.principal)]

    @r.post(
        "/v1/commands", status_code=202, response_model=api.CommandQueued,
        summary="Submit any command to the commands topic",
        responses=openapi_responses(401, 403, 404, 422, 503),
        description="Validates the envelope and payload, then produces it to the commands topic; the outcome "
        "arrives as events correlated by `command_id` (the idempotency key). Service keys may only address their "
        f"own workspace (else 404) and only these types (else 403): {', '.join(sorted(SERVICE_COMMAND_TYPES))}; "
        "their `issued_by` is replaced with `api-key:<key id>`. The admin key may send any type and keeps "
        "`issued_by` as sent (e.g. to replay a dead letter unchanged).",
    )
    def submit_command(envelope: cmd.CommandEnvelope, caller: Caller):
        shared.within(caller, envelope.workspace_id)
        if envelope.type not in cmd.COMMAND_TYPES:
            raise ProblemError(422, "unknown_command_type", f"unknown command type {envelope.type!r}",
                               known_types=sorted(cmd.COMMAND_TYPES))
        allowed = caller.is_admin or envelope.type in SERVICE_COMMAND_TYPES or (
            envelope.type in GRANT_COMMAND_TYPES and may_grant(caller))
        if not allowed:
            raise ProblemError(403, "forbidden", f"a service key cannot send {envelope.type}")
        try:
            envelope.parsed_payload()
        except ValidationError as error:
            raise ProblemError(422, "invalid_payload", f"the payload is not a valid {envelope.type}",
                               errors=field_errors(list(error.errors()), ("body", "payload"))) from None
        if not caller.is_admin:
            envelope = envelope.model_copy(update={"issued_by": caller.issued_by})
        try:
            shared.deps.submit_command(envelope)
        except Exception:
            # Not queued, so nothing happened: the client may retry with the same command_id.
            raise ProblemError(503, "submit_failed", "the command could not be queued; retry with the same "
                               "command_id", {"Retry-After": "1"}) from None
        return api.CommandQueued(command_id=envelope.command_id)

    return r
