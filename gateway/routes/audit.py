"""Audit: the history of a post, a wallet or a social account (every event, who caused it, why),
the state at a past version, and the commands a workspace had rejected."""

# No `from __future__ import annotations`: FastAPI must see the endpoint-local Annotated aliases.
from datetime import datetime
from functools import cache
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from gateway import auth
from gateway.deps import MinPosition, ResourceId, Shared, WorkspaceId
from gateway.problems import ProblemError, openapi_responses
from herald.audit.history import MAX_LIMIT, History, NotFound, Subject
from projections import audit
from schemas import audit as bodies
from schemas import commands as cmd

HISTORY = (
    "Every event of the {what}, oldest first, with `time`, `actor` (the key or processor that sent the command, "
    "e.g. `api-key:<id>`, `dispatcher`, `publisher`, `settler`), `command_id` (= `causation_id`), "
    "`correlation_id`, the event's `data` (tokens redacted) and, for rejections, skips, failures, retries, "
    "unknown outcomes and releases, `reason` {{`code`, `sentence`}}. Commands rejected about it are merged in "
    "by position (`kind: rejection`). A page holds at most `limit` entries; pass `next_cursor` back as `cursor`. "
    "`?version=N` answers the {what}'s state right after its N-th event instead, `?at=<time>` its state at "
    "that time. Read from the event store."
)


# The reason code when the subject does not exist (in this workspace): the domain's own codes.
UNKNOWN = {"post": "unknown_post", "wallet": "unknown_workspace", "social_account": "unknown_social_account"}


def router(shared: Shared) -> APIRouter:
    r = APIRouter(tags=["audit"])
    Caller = Annotated[auth.Principal, Depends(shared.principal)]
    Cursor = Annotated[str | None, Query(max_length=200)]
    Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
    Version = Annotated[int | None, Query(ge=1, description="the state right after this version")]
    At = Annotated[cmd.Timestamp | None, Query(description="the state as it was at this time (with a time zone)")]

    @cache
    def history() -> History:
        return History(shared.deps.app)

    def answer(subject: Subject, response: Response, cursor: str | None, limit: int, version: int | None,
               min_position: int | None, at: datetime | None = None):
        if at is not None and at.tzinfo is None:
            raise ProblemError(422, "invalid_query", "at needs a time zone, e.g. 2026-12-02T09:00:00Z")
        if at is not None and version is not None:
            raise ProblemError(422, "invalid_query", "give version or at, not both")
        # Rejections come from the audit read model: min_position waits for it as for any read.
        with shared.read(subject.workspace_id, min_position, response) as conn:
            try:
                if at is not None:
                    version = history().version_at(conn, subject, at)
                if version is not None:
                    return history().state_at(conn, subject, version)
                return history().page(conn, subject, cursor=cursor, limit=limit)
            except NotFound as error:
                raise ProblemError(404, UNKNOWN[subject.kind] if version is None and at is None
                                   else "unknown_version", str(error)) from None
            except ValueError as error:
                raise ProblemError(422, "invalid_query", str(error)) from None

    responses = openapi_responses(401, 404, 422, 503)

    @r.get("/v1/workspaces/{workspace_id}/posts/{post_id}/history", summary="A post's history",
           description=HISTORY.format(what="post"), responses=responses,
           response_model=bodies.History | bodies.PastState)
    def post_history(workspace_id: WorkspaceId, post_id: ResourceId, caller: Caller, response: Response, cursor: Cursor = None,
                     limit: Limit = 100, version: Version = None, at: At = None, min_position: MinPosition = None):
        subject = Subject("post", post_id, shared.within(caller, workspace_id))
        return answer(subject, response, cursor, limit, version, min_position, at)

    @r.get("/v1/workspaces/{workspace_id}/wallet/history", summary="The wallet's history",
           description=HISTORY.format(what="wallet"), responses=responses,
           response_model=bodies.History | bodies.PastState)
    def wallet_history(workspace_id: WorkspaceId, caller: Caller, response: Response, cursor: Cursor = None,
                       limit: Limit = 100, version: Version = None, at: At = None, min_position: MinPosition = None):
        subject = Subject("wallet", workspace_id, shared.within(caller, workspace_id))
        return answer(subject, response, cursor, limit, version, min_position, at)

    @r.get("/v1/workspaces/{workspace_id}/social-accounts/{social_account_id}/history",
           summary="A social account's history", description=HISTORY.format(what="social account"),
           responses=responses, response_model=bodies.History | bodies.PastState)
    def account_history(workspace_id: WorkspaceId, social_account_id: ResourceId, caller: Caller, response: Response,
                        cursor: Cursor = None, limit: Limit = 100, version: Version = None, at: At = None,
                        min_position: MinPosition = None):
        subject = Subject("social_account", social_account_id, shared.within(caller, workspace_id))
        return answer(subject, response, cursor, limit, version, min_position, at)

    @r.get("/v1/workspaces/{workspace_id}/rejections", summary="Commands the workspace had rejected",
           responses=responses, response_model=bodies.Rejections,
           description="Every rejected command (HTTP or Kafka), oldest first: command id and type, `reason_code`, "
           "`detail`, `issued_by`, `subjects` (what it was about), `rejected_at`, `position`. Page with "
           "`after` = the last `position` seen; filter by `since`/`until` (rejected_at).")
    def rejections(workspace_id: WorkspaceId, caller: Caller, response: Response,
                   after: Annotated[int, Query(ge=0)] = 0, limit: Limit = 100, since: cmd.Timestamp | None = None,
                   until: cmd.Timestamp | None = None, min_position: MinPosition = None):
        with shared.read(shared.within(caller, workspace_id), min_position, response) as conn:
            found = audit.list_rejections(conn, workspace_id, after=after, limit=limit, since=since, until=until)
        return {"workspace_id": workspace_id, "rejections": found,
                "next_after": found[-1]["position"] if len(found) == limit else None}

    return r
