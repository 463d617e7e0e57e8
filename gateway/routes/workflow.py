"""The content workflow: ideas and drafts, submission, approval, edits, reschedule, publish now,
and the workspace's content policy (docs/content-workflow.md)."""

# No `from __future__ import annotations`: FastAPI must see the endpoint-local Annotated aliases.
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response

from gateway import auth
from gateway.deps import IdempotencyKey, ResourceId, Shared, WorkspaceId
from gateway.problems import openapi_responses
from schemas import api
from schemas import commands as cmd


def router(shared: Shared) -> APIRouter:
    r = APIRouter(tags=["content workflow"])
    Caller = Annotated[auth.Principal, Depends(shared.principal)]

    def step(caller: auth.Principal, workspace_id: str, scope: str, payload: cmd.Payload,
             idempotency_key: str | None, response: Response) -> dict[str, Any]:
        ws = shared.within(caller, workspace_id, scope)
        decision = shared.decide(caller, ws, payload, idempotency_key, response)
        return {**decision.result, "command_id": decision.command_id, "position": decision.position}

    @r.post(
        "/v1/workspaces/{workspace_id}/drafts", status_code=201, response_model=api.PostChanged,
        summary="Create an idea or a draft", responses=openapi_responses(401, 403, 404, 409, 422, 503),
        description="Holds no credits, takes no queue place and counts against no limit until submitted. "
        "`stage`: `idea` (destinations may be empty) or `draft`. Per-destination `destination_text` and "
        "`destination_media` override the post's. 422 `unknown_social_account`; 409 `post_exists`.",
    )
    def create_draft(workspace_id: WorkspaceId, body: api.CreateDraftRequest, caller: Caller, response: Response,
                     idempotency_key: IdempotencyKey = None):
        result = step(caller, workspace_id, auth.WORKSPACE_WRITE, body, idempotency_key, response)
        response.headers["Location"] = f"/v1/workspaces/{workspace_id}/posts/{result['post_id']}"
        return result

    @r.post(
        "/v1/workspaces/{workspace_id}/posts/{post_id}/submit", response_model=api.PostChanged,
        summary="Submit a draft", responses=openapi_responses(401, 402, 403, 404, 409, 422, 503),
        description="Where the workspace requires approval: `needs_approval` (content checked, nothing held). "
        "Otherwise `scheduled`: content checked per platform (422 `content_invalid`), queue and daily limits "
        "(409 `queue_full`, `daily_post_limit_reached`), one credit held per destination (402 "
        "`insufficient_credits`). 409 `post_not_draft` unless it is a draft; 422 `no_destinations`, "
        "`publish_at_in_past`.",
    )
    def submit_post(workspace_id: WorkspaceId, post_id: ResourceId, caller: Caller, response: Response,
                    body: api.SubmitPostRequest | None = None, idempotency_key: IdempotencyKey = None):
        body = body or api.SubmitPostRequest()
        payload = cmd.SubmitPost(post_id=post_id, publish_at=body.publish_at, comment=body.comment)
        return step(caller, workspace_id, auth.WORKSPACE_WRITE, payload, idempotency_key, response)

    @r.post(
        "/v1/workspaces/{workspace_id}/posts/{post_id}/approve", response_model=api.PostChanged,
        summary="Approve a post awaiting approval", responses=openapi_responses(401, 402, 403, 404, 409, 422, 503),
        description="Needs the `approver` scope (403 otherwise). Schedules the post as a submission without "
        "approval would (credits held, limits checked). `publish_at` replaces the post's, e.g. when it has passed "
        "(422 `publish_at_in_past`). 409 `post_not_awaiting_approval`.",
    )
    def approve_post(workspace_id: WorkspaceId, post_id: ResourceId, caller: Caller, response: Response,
                     body: api.ApprovePostRequest | None = None, idempotency_key: IdempotencyKey = None):
        body = body or api.ApprovePostRequest()
        payload = cmd.ApprovePost(post_id=post_id, publish_at=body.publish_at, comment=body.comment)
        return step(caller, workspace_id, auth.APPROVER, payload, idempotency_key, response)

    @r.post(
        "/v1/workspaces/{workspace_id}/posts/{post_id}/reject", response_model=api.PostChanged,
        summary="Send a post awaiting approval back to draft", responses=openapi_responses(401, 403, 404, 409, 422, 503),
        description="Needs the `approver` scope. The comment is the event's reason and the post's `last_change`. "
        "409 `post_not_awaiting_approval`.",
    )
    def reject_post(workspace_id: WorkspaceId, post_id: ResourceId, body: api.RejectPostRequest, caller: Caller,
                    response: Response, idempotency_key: IdempotencyKey = None):
        payload = cmd.RejectPost(post_id=post_id, comment=body.comment)
        return step(caller, workspace_id, auth.APPROVER, payload, idempotency_key, response)

    @r.patch(
        "/v1/workspaces/{workspace_id}/posts/{post_id}", response_model=api.PostChanged,
        summary="Edit a post", responses=openapi_responses(401, 402, 403, 404, 409, 422, 503),
        description="Fields left out stay. An idea or draft changes freely (`stage` moves it between idea and "
        "draft; a post awaiting approval comes back to draft). A scheduled post: its content is checked again "
        "per platform, a new destination gets a hold, a removed one is cancelled and its hold released, a new "
        "`publish_at` moves every hold and re-checks the daily limit for the new day. 409 "
        "`destination_started` when a destination the change concerns has started publishing (text, media and "
        "time concern every destination not cancelled; overrides and removal only their own).",
    )
    def edit_post(workspace_id: WorkspaceId, post_id: ResourceId, body: api.EditPostRequest, caller: Caller,
                  response: Response, idempotency_key: IdempotencyKey = None):
        payload = cmd.EditPost(post_id=post_id, **{f: getattr(body, f) for f in body.model_fields_set})
        return step(caller, workspace_id, auth.WORKSPACE_WRITE, payload, idempotency_key, response)

    @r.post(
        "/v1/workspaces/{workspace_id}/posts/{post_id}/reschedule", response_model=api.PostChanged,
        summary="Move a post to another time", responses=openapi_responses(401, 402, 403, 404, 409, 422, 503),
        description="Every destination moves, or only `destination_ids` (the others keep their own times); those "
        "moved must not have started (409 `destination_started`); each gets a new hold in place of its old one; the "
        "daily limit is checked for the new day of each (409 `daily_post_limit_reached`). On an idea or draft it "
        "only sets the time (`destination_ids` is refused there: 409 `post_not_draft`).",
    )
    def reschedule_post(workspace_id: WorkspaceId, post_id: ResourceId, body: api.ReschedulePostRequest,
                        caller: Caller, response: Response, idempotency_key: IdempotencyKey = None):
        payload = cmd.ReschedulePost(post_id=post_id, publish_at=body.publish_at, reason=body.reason,
                                     destination_ids=body.destination_ids)
        return step(caller, workspace_id, auth.WORKSPACE_WRITE, payload, idempotency_key, response)

    @r.post(
        "/v1/workspaces/{workspace_id}/posts/{post_id}/publish-now", response_model=api.PostChanged,
        summary="Publish a scheduled post now", responses=openapi_responses(401, 403, 404, 409, 422, 503),
        description="A reschedule to now, of every destination or only `destination_ids`. 409 "
        "`destination_started`; 409 `post_not_editable` for an idea or draft (submit it without `publish_at` "
        "instead).",
    )
    def publish_now(workspace_id: WorkspaceId, post_id: ResourceId, caller: Caller, response: Response,
                    body: api.PublishNowRequest | None = None, idempotency_key: IdempotencyKey = None):
        body = body or api.PublishNowRequest()
        payload = cmd.PublishPostNow(post_id=post_id, reason=body.reason, destination_ids=body.destination_ids)
        return step(caller, workspace_id, auth.WORKSPACE_WRITE, payload, idempotency_key, response)

    @r.put(
        "/v1/workspaces/{workspace_id}/content-policy", response_model=api.ContentPolicySet,
        summary="Set the workspace's content policy", responses=openapi_responses(401, 403, 404, 422, 503),
        description="`requires_approval`: submitted posts wait for an approver (posts already awaiting approval "
        "keep waiting when it is switched off). `disconnect_waiting` (`cancel` or `hold`): what disconnecting an "
        "account does to its waiting destinations when the request does not say. Needs the `approver` scope (an "
        "editor cannot switch approval off). Shown on the workspace.",
    )
    def set_content_policy(workspace_id: WorkspaceId, body: api.ContentPolicyRequest, caller: Caller,
                           response: Response, idempotency_key: IdempotencyKey = None):
        return step(caller, workspace_id, auth.APPROVER, body, idempotency_key, response)

    return r
