"""Any command, queued to the commands topic."""

# No `from __future__ import annotations`: FastAPI must see the endpoint-local Annotated aliases.
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import ValidationError

from gateway import auth
from gateway.deps import Shared
from gateway.problems import ProblemError, field_errors, openapi_responses
from herald import redaction
from schemas import api
from schemas import commands as cmd

# The scope each command type needs. The rest (opening workspaces, and the processors'
# attempt/outcome/hold commands, which move money and fence publishing) need the admin key.
SCOPE_OF_TYPE = {
    "connect_social_account.v1": auth.WORKSPACE_WRITE,
    "schedule_post.v1": auth.WORKSPACE_WRITE,
    "cancel_post.v1": auth.WORKSPACE_WRITE,
    "create_draft.v1": auth.WORKSPACE_WRITE,
    "submit_post.v1": auth.WORKSPACE_WRITE,
    "edit_post.v1": auth.WORKSPACE_WRITE,
    "reschedule_post.v1": auth.WORKSPACE_WRITE,
    "publish_post_now.v1": auth.WORKSPACE_WRITE,
    "approve_post.v1": auth.APPROVER,
    "reject_post.v1": auth.APPROVER,
    "set_content_policy.v1": auth.APPROVER,
    "grant_credits.v1": auth.CREDITS_GRANT,
    "mark_notices_read.v1": auth.WORKSPACE_WRITE,
}


def router(shared: Shared) -> APIRouter:
    r = APIRouter(tags=["commands"])
    Caller = Annotated[auth.Principal, Depends(shared.principal)]

    @r.post(
        "/v1/commands", status_code=202, response_model=api.CommandQueued,
        summary="Submit any command to the commands topic",
        responses=openapi_responses(401, 403, 404, 422, 503),
        description="Validates the envelope and payload, then produces it to the commands topic; the outcome "
        "arrives as events correlated by `command_id` (the idempotency key). A key bound to a workspace may only "
        "address it (else 404). Each type needs a scope (else 403): "
        + ", ".join(f"`{t}` {s}" for t, s in sorted(SCOPE_OF_TYPE.items()))
        + ", any other type admin. `issued_by` is replaced with `api-key:<key id>`, except for the admin key, "
        "which keeps it as sent (e.g. to replay a dead letter unchanged). A payload carrying a secret (e.g. "
        "`access_token`) is refused (422 `secret_not_accepted`): use the social-accounts endpoint, which seals it.",
    )
    def submit_command(envelope: cmd.CommandEnvelope, caller: Caller):
        shared.within(caller, envelope.workspace_id)
        if envelope.type not in cmd.COMMAND_TYPES:
            raise ProblemError(422, "unknown_command_type", f"unknown command type {envelope.type!r}",
                               known_types=sorted(cmd.COMMAND_TYPES))
        shared.require(caller, SCOPE_OF_TYPE.get(envelope.type, auth.ADMIN))
        if redaction.carries_secret(envelope.payload):
            # This inlet stores and produces the body as it came: a token would be kept in clear.
            raise ProblemError(422, "secret_not_accepted", "commands carrying a secret (an access token) are not "
                               "accepted here; connect accounts with POST /v1/workspaces/{workspace_id}/social-accounts,"
                               " which seals the token before anything is stored")
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
