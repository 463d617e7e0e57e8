"""Scheduling, cancelling and following posts; the publishing queue."""

# No `from __future__ import annotations`: FastAPI must see the endpoint-local Annotated aliases.
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from gateway import auth
from gateway.deps import IdempotencyKey, MinPosition, ResourceId, Shared, WorkspaceId
from gateway.problems import ProblemError, openapi_responses
from projections import posts, queue
from schemas import api
from schemas import commands as cmd


def router(shared: Shared) -> APIRouter:
    r = APIRouter(tags=["posts"])
    Caller = Annotated[auth.Principal, Depends(shared.principal)]

    @r.post(
        "/v1/workspaces/{workspace_id}/posts", status_code=201, response_model=api.PostScheduled,
        summary="Schedule a post", responses=openapi_responses(401, 402, 404, 409, 422, 503),
        description="Creates and schedules at once. Where the workspace requires approval, the post is created "
        "as a submitted draft instead (status `needs_approval`, nothing held until approved). "
        "Holds one credit per destination. 402 `insufficient_credits`; 409 `queue_full` at the "
        "tier's queue size; 422 `unknown_social_account` when a destination is not one of the workspace's "
        "accounts, `publish_at_in_past` when publish_at has passed, `content_invalid` when a destination's "
        "platform would refuse the text or media (each destination's violations in the detail).",
    )
    def schedule_post(workspace_id: WorkspaceId, body: api.SchedulePostRequest, caller: Caller, response: Response,
                      idempotency_key: IdempotencyKey = None):
        ws = shared.within(caller, workspace_id, auth.WORKSPACE_WRITE)
        decision = shared.decide(caller, ws, body, idempotency_key, response)
        post_id = decision.result["post_id"]
        response.headers["Location"] = f"/v1/workspaces/{workspace_id}/posts/{post_id}"
        return api.PostScheduled(post_id=post_id, publish_at=decision.result["publish_at"],
                                 status=decision.result.get("status", "scheduled"),
                                 command_id=decision.command_id, position=decision.position)

    @r.post(
        "/v1/workspaces/{workspace_id}/posts/{post_id}/cancel", response_model=api.PostCancelled,
        summary="Cancel a post", responses=openapi_responses(401, 404, 409, 422, 503),
        description="Cancels every destination still waiting (an idea or draft: the post), or only "
        "`destination_ids`, whose credits are released and daily-limit slots freed at once. 409 "
        "`post_not_cancellable` when none is (or a named one is not) waiting; 422 `unknown_destination`.",
    )
    def cancel_post(workspace_id: WorkspaceId, post_id: ResourceId, caller: Caller, response: Response,
                    body: api.CancelPostRequest | None = None, idempotency_key: IdempotencyKey = None):
        body = body or api.CancelPostRequest()
        payload = cmd.CancelPost(post_id=post_id, reason=body.reason, destination_ids=body.destination_ids)
        ws = shared.within(caller, workspace_id, auth.WORKSPACE_WRITE)
        decision = shared.decide(caller, ws, payload, idempotency_key, response)
        return api.PostCancelled(**decision.result, command_id=decision.command_id, position=decision.position)

    @r.get(
        "/v1/workspaces/{workspace_id}/posts", response_model=api.PostList,
        summary="The workspace's posts, newest first", responses=openapi_responses(401, 404, 422, 503),
        description="Ideas and drafts included. Filters: `status` (repeatable: "
        f"{', '.join(posts.POST_STATUSES)}), `social_account_id`, `platform` (a destination's), `publish_from` "
        "(inclusive) and `publish_to` (exclusive) on publish_at. A page at a time (`next_cursor`).",
    )
    def list_posts(
        workspace_id: WorkspaceId, caller: Caller, response: Response,
        status: Annotated[list[str] | None, Query()] = None,
        social_account_id: Annotated[str | None, Query(max_length=200)] = None,
        platform: Annotated[str | None, Query(max_length=50)] = None,
        publish_from: cmd.Timestamp | None = None,
        publish_to: cmd.Timestamp | None = None,
        cursor: Annotated[str | None, Query(max_length=1000)] = None,
        limit: Annotated[int, Query(ge=1, le=posts.MAX_LIMIT)] = 50,
        min_position: MinPosition = None,
    ):
        with shared.read(shared.within(caller, workspace_id), min_position, response) as conn:
            try:
                return posts.list_posts(conn, workspace_id, statuses=status, social_account_id=social_account_id,
                                        platform=platform, publish_from=publish_from, publish_to=publish_to,
                                        cursor=cursor, limit=limit)
            except ValueError as error:
                raise ProblemError(422, "invalid_query", str(error)) from None

    @r.get(
        "/v1/workspaces/{workspace_id}/posts/{post_id}", response_model=api.PostView,
        summary="A post and each destination's state", responses=openapi_responses(401, 404, 503),
        description="From the posts read model; pass `min_position` (from a command's answer) to read your own write.",
    )
    def get_post(workspace_id: WorkspaceId, post_id: ResourceId, caller: Caller, response: Response,
                 min_position: MinPosition = None):
        with shared.read(shared.within(caller, workspace_id), min_position, response) as conn:
            found = posts.read_post(conn, workspace_id, post_id)
        if found is None:
            raise ProblemError(404, "unknown_post", f"no post {post_id} in this workspace")
        return found

    @r.get(
        "/v1/workspaces/{workspace_id}/queue", response_model=api.QueueView,
        summary="The workspace's publishing queue", responses=openapi_responses(401, 404, 422, 503),
        description="Destinations soonest first, a page at a time (`next_cursor`). By default only those waiting "
        f"or being published ({', '.join(queue.ACTIVE)}); `status` (repeatable) chooses others, e.g. "
        "`status=published`. Filters: `social_account_id`, `due_from` (inclusive), `due_to` (exclusive).",
    )
    def get_queue(
        workspace_id: WorkspaceId, caller: Caller, response: Response,
        status: Annotated[list[str] | None, Query(description=f"any of {', '.join(sorted(queue.STATUSES))}")] = None,
        social_account_id: str | None = None,
        due_from: cmd.Timestamp | None = None,
        due_to: cmd.Timestamp | None = None,
        cursor: Annotated[str | None, Query(max_length=1000)] = None,
        limit: Annotated[int, Query(ge=1, le=queue.MAX_LIMIT)] = 50,
        min_position: MinPosition = None,
    ):
        with shared.read(shared.within(caller, workspace_id), min_position, response) as conn:
            try:
                view = queue.read_queue(conn, workspace_id, statuses=status, social_account_id=social_account_id,
                                        due_from=due_from, due_to=due_to, cursor=cursor, limit=limit)
            except ValueError as error:
                raise ProblemError(422, "invalid_query", str(error)) from None
        if view["tier"] is None:
            raise ProblemError(404, "unknown_workspace", f"no workspace {workspace_id}")
        return view

    return r
