"""Posts read model: each post's content (``posts``) with the per-destination state kept by the
queue projection (``queue_destinations``, which also holds each destination's text). A post's
status is rolled up from its destinations' statuses exactly as the domain's ``Post.status``.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from psycopg import Connection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from projections.base import Projection, applies
from schemas import events as ev
from schemas.events import CloudEvent, EventData
from schemas.statuses import post_status

DDL = """
CREATE TABLE IF NOT EXISTS posts (
    post_id      text        PRIMARY KEY,
    workspace_id text        NOT NULL,
    text         text        NOT NULL,
    media_urls   jsonb       NOT NULL,
    publish_at   timestamptz NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS posts_workspace ON posts (workspace_id, created_at);
-- Added with the content workflow: ideas and drafts (stage; their destinations, nothing held yet),
-- who made the last change and why; version: the post's aggregate version of the last workflow
-- event applied (a redelivered older one changes nothing). Only ALTER when missing (an ALTER locks).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()
                    AND table_name = 'posts' AND column_name = 'stage') THEN
        ALTER TABLE posts ADD COLUMN IF NOT EXISTS stage text;
        ALTER TABLE posts ADD COLUMN IF NOT EXISTS draft_destinations jsonb;
        ALTER TABLE posts ADD COLUMN IF NOT EXISTS actor text;
        ALTER TABLE posts ADD COLUMN IF NOT EXISTS reason text;
        ALTER TABLE posts ADD COLUMN IF NOT EXISTS version bigint NOT NULL DEFAULT 0;
        ALTER TABLE posts ALTER COLUMN publish_at DROP NOT NULL;
    END IF;
END $$;
-- The calendar's ideas and drafts with a time (projections/calendar.py), without a scan of the
-- workspace's posts.
CREATE INDEX IF NOT EXISTS posts_unscheduled ON posts (workspace_id, publish_at) WHERE stage IS NOT NULL;
CREATE TABLE IF NOT EXISTS content_policies (
    workspace_id       text    PRIMARY KEY,
    requires_approval  boolean NOT NULL,
    disconnect_waiting text    NOT NULL DEFAULT 'cancel'
);
"""
TABLES = ("posts", "content_policies")
COLUMNS = ("post_id", "workspace_id", "text", "media_urls", "publish_at", "created_at", "updated_at", "stage",
           "draft_destinations", "actor", "reason", "version")

# A destination event only moves the post's updated_at; the destination itself is the queue projection's.
_DESTINATION_EVENTS = (ev.AttemptStarted, ev.DestinationPublished, ev.RetryScheduled, ev.DestinationThrottled,
                       ev.DestinationFailed, ev.DestinationSkipped, ev.OutcomeUnknown, ev.DestinationsOnHold)
WORKFLOW_EVENTS = (ev.PostDrafted, ev.PostSubmitted, ev.PostApproved, ev.PostRejected, ev.PostRevised,
                   ev.PostCancelled, ev.ContentPolicySet)
_APPLIED = (ev.PostScheduled, *_DESTINATION_EVENTS, *WORKFLOW_EVENTS)

_UPSERT_DRAFT = """
INSERT INTO posts (post_id, workspace_id, text, media_urls, publish_at, created_at, updated_at, stage,
                   draft_destinations, actor, reason, version)
VALUES (%(post_id)s, %(ws)s, %(text)s, %(media)s, %(publish_at)s, %(at)s, %(at)s, %(stage)s, %(dests)s,
        %(actor)s, %(reason)s, %(version)s)
ON CONFLICT (post_id) DO UPDATE
   SET text = EXCLUDED.text, media_urls = EXCLUDED.media_urls, publish_at = EXCLUDED.publish_at,
       stage = EXCLUDED.stage, draft_destinations = EXCLUDED.draft_destinations, actor = EXCLUDED.actor,
       reason = EXCLUDED.reason, updated_at = EXCLUDED.updated_at, version = EXCLUDED.version
 WHERE posts.version < EXCLUDED.version
"""
# A draft put on the schedule leaves its stage; a repeat of a post's first PostScheduled changes nothing.
_UPSERT_SCHEDULED = """
INSERT INTO posts (post_id, workspace_id, text, media_urls, publish_at, created_at, updated_at, stage,
                   draft_destinations, actor, reason, version)
VALUES (%(post_id)s, %(ws)s, %(text)s, %(media)s, %(publish_at)s, %(at)s, %(at)s, NULL, NULL, %(actor)s, %(reason)s,
        %(version)s)
ON CONFLICT (post_id) DO UPDATE
   SET text = EXCLUDED.text, media_urls = EXCLUDED.media_urls, publish_at = EXCLUDED.publish_at, stage = NULL,
       draft_destinations = NULL, actor = EXCLUDED.actor, reason = EXCLUDED.reason, updated_at = EXCLUDED.updated_at,
       version = EXCLUDED.version
 WHERE posts.stage IS NOT NULL AND posts.version < EXCLUDED.version
"""


def _stage_after(data: EventData) -> str | None:
    """The stage an approval-step event leaves the post in (None: unchanged)."""
    match data:
        case ev.PostSubmitted():
            return "needs_approval"
        case ev.PostRejected():
            return "draft"
    return None


@applies(*_APPLIED)
def apply(conn: Connection, event: CloudEvent, data: EventData) -> None:
    """Apply one event to ``posts``; others are ignored without parsing them."""
    at = event.time
    match data:
        case ev.PostScheduled():
            conn.execute(_UPSERT_SCHEDULED, {"post_id": data.post_id, "ws": event.workspaceid, "text": data.text,
                                             "media": Jsonb(list(data.media_urls)), "publish_at": data.publish_at,
                                             "at": at, "actor": data.actor, "reason": data.reason,
                                             "version": event.aggregateversion})
        case ev.PostDrafted():
            conn.execute(_UPSERT_DRAFT, {"post_id": data.post_id, "ws": event.workspaceid, "text": data.text,
                                         "media": Jsonb(list(data.media_urls)), "publish_at": data.publish_at,
                                         "at": at, "stage": data.stage,
                                         "dests": Jsonb([d.model_dump(mode="json") for d in data.destinations]),
                                         "actor": data.actor, "reason": data.reason,
                                         "version": event.aggregateversion})
        case ev.PostSubmitted() | ev.PostApproved() | ev.PostRejected():
            conn.execute("UPDATE posts SET stage = COALESCE(%s, stage), actor = %s, reason = %s, updated_at = %s,"
                         " version = %s WHERE post_id = %s AND version < %s",
                         (_stage_after(data), data.actor, data.reason, at, event.aggregateversion, data.post_id,
                          event.aggregateversion))
        case ev.PostRevised():
            conn.execute("UPDATE posts SET text = %s, media_urls = %s, publish_at = %s, actor = %s, reason = %s,"
                         " updated_at = %s, version = %s WHERE post_id = %s AND version < %s",
                         (data.text, Jsonb(list(data.media_urls)), data.publish_at, data.actor, data.reason, at,
                          event.aggregateversion, data.post_id, event.aggregateversion))
        case ev.PostCancelled():
            conn.execute("UPDATE posts SET stage = CASE WHEN stage IS NULL THEN NULL ELSE 'cancelled' END,"
                         " actor = COALESCE(%s, actor), reason = %s, updated_at = GREATEST(updated_at, %s), version = %s"
                         " WHERE post_id = %s AND version < %s",
                         (data.actor, data.reason, at, event.aggregateversion, data.post_id, event.aggregateversion))
        case ev.ContentPolicySet():
            conn.execute("INSERT INTO content_policies VALUES (%s, %s, %s) ON CONFLICT (workspace_id) DO UPDATE"
                         " SET requires_approval = EXCLUDED.requires_approval,"
                         " disconnect_waiting = EXCLUDED.disconnect_waiting",
                         (event.workspaceid, data.requires_approval, data.disconnect_waiting))
        case (ev.AttemptStarted() | ev.DestinationPublished() | ev.RetryScheduled() | ev.DestinationThrottled()
              | ev.DestinationFailed() | ev.DestinationSkipped() | ev.OutcomeUnknown() | ev.DestinationsOnHold()):
            conn.execute(
                "UPDATE posts SET updated_at = %s WHERE post_id = %s AND updated_at < %s",
                (event.time, data.post_id, event.time),
            )


PROJECTION = Projection(name="posts", ddl=DDL, tables=TABLES, handles=apply.handles, apply=apply)


_READ = """
SELECT p.post_id, p.workspace_id, p.text AS post_text, p.media_urls, p.publish_at, p.stage, p.draft_destinations,
       p.actor, p.reason AS post_reason,
       d.destination_id, d.social_account_id, d.platform, d.handle, COALESCE(d.text, '') AS text, d.status,
       d.attempt, d.due_at, d.platform_post_id, d.url, d.reason
  FROM posts p
  LEFT JOIN queue_destinations d ON d.post_id = p.post_id
 WHERE p.post_id = %s AND p.workspace_id = %s
 ORDER BY d.ordinal NULLS LAST, d.destination_id
"""
_DESTINATION_FIELDS = ("destination_id", "social_account_id", "platform", "handle", "text", "status", "attempt",
                       "due_at", "platform_post_id", "url", "reason")
STAGES = ("idea", "draft", "needs_approval")
POST_STATUSES = (*STAGES, "scheduled", "publishing", "on_hold", "published", "partially_published", "failed",
                 "skipped", "cancelled")
MAX_LIMIT = 200


def _shape(first: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    if first["stage"] is not None:  # not on the schedule: its destinations are the draft's, nothing waits
        destinations = [{"destination_id": d["destination_id"], "social_account_id": d["social_account_id"],
                         "platform": d["platform"], "handle": d["handle"],
                         "text": d["text"] if d["text"] is not None else first["post_text"],
                         "media_urls": d["media_urls"], "status": first["stage"], "attempt": 0,
                         "due_at": first["publish_at"], "platform_post_id": None, "url": None, "reason": ""}
                        for d in first["draft_destinations"] or []]
        status = first["stage"]
    else:
        destinations = [{f: row[f] for f in _DESTINATION_FIELDS} for row in rows if row["destination_id"] is not None]
        status = post_status(d["status"] for d in destinations)
    return {
        "post_id": first["post_id"],
        "workspace_id": first["workspace_id"],
        "status": status,
        "text": first["post_text"],
        "media_urls": first["media_urls"],
        "publish_at": first["publish_at"],
        "destinations": destinations,
        "last_change": {"actor": first["actor"], "reason": first["post_reason"]} if first["actor"] else None,
    }


def read_post(conn: Connection, workspace_id: str, post_id: str) -> dict[str, Any] | None:
    """The post shaped as ``schemas.api.PostView``, destinations in the order they were scheduled;
    None when the workspace has no such post (another workspace's post is None too). One query."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(_READ, (post_id, workspace_id)).fetchall()
    if not rows:
        return None
    return _shape(rows[0], rows)


# A post's status in SQL, exactly as schemas.statuses.post_status rolls it up (and its stage before).
_STATUS_SQL = """
CASE WHEN p.stage IS NOT NULL THEN p.stage
     WHEN bool_or(d.status IN ('attempting', 'outcome_unknown')) THEN 'publishing'
     WHEN bool_or(d.status IN ('pending', 'retry_scheduled')) THEN 'scheduled'
     WHEN bool_or(d.status = 'on_hold') THEN 'on_hold'
     WHEN bool_and(d.status = 'published') THEN 'published'
     WHEN bool_or(d.status = 'published') THEN 'partially_published'
     WHEN bool_and(d.status = 'cancelled') THEN 'cancelled'
     WHEN bool_or(d.status = 'failed') THEN 'failed'
     WHEN count(d.status) = 0 THEN 'scheduled'
     ELSE 'skipped' END
"""


def list_posts(conn: Connection, workspace_id: str, *, statuses: list[str] | None = None,
               social_account_id: str | None = None, platform: str | None = None,
               publish_from: datetime | None = None, publish_to: datetime | None = None,
               cursor: str | None = None, limit: int = 50) -> dict[str, Any]:
    """A page of the workspace's posts, newest first by creation (keyset on (created_at, post_id)),
    each shaped as ``read_post``'s. Filters: status (the post's, drafts' stages included), the
    account or platform of a destination, ``publish_from`` (inclusive) / ``publish_to`` (exclusive)
    on publish_at. ValueError for an unknown status, a bad cursor or limit."""
    unknown = sorted(set(statuses or ()) - set(POST_STATUSES))
    if unknown:
        raise ValueError(f"unknown post status {', '.join(map(repr, unknown))}; known: {', '.join(POST_STATUSES)}")
    if not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}, not {limit!r}")
    where = ["p.workspace_id = %(ws)s"]
    params: dict[str, Any] = {"ws": workspace_id, "limit": limit + 1}
    if social_account_id is not None or platform is not None:
        match = []
        if social_account_id is not None:
            match.append("x.social_account_id = %(account)s")
            params["account"] = social_account_id
        if platform is not None:
            match.append("x.platform = %(platform)s")
            params["platform"] = platform
        cond = " AND ".join(match)
        where.append(f"(EXISTS (SELECT 1 FROM queue_destinations x WHERE x.post_id = p.post_id AND {cond})"
                     f" OR EXISTS (SELECT 1 FROM jsonb_to_recordset(COALESCE(p.draft_destinations, '[]'::jsonb))"
                     f" AS x(social_account_id text, platform text) WHERE {cond}))")
    if publish_from is not None:
        where.append("p.publish_at >= %(from)s")
        params["from"] = publish_from
    if publish_to is not None:
        where.append("p.publish_at < %(to)s")
        params["to"] = publish_to
    if cursor is not None:
        created_at, post_id = _decode_cursor(cursor)
        where.append("(p.created_at, p.post_id) < (%(c_at)s, %(c_post)s)")
        params.update(c_at=created_at, c_post=post_id)
    having = ""
    if statuses:
        having = f"HAVING ({_STATUS_SQL}) = ANY(%(statuses)s)"
        params["statuses"] = list(statuses)
    query = f"""
SELECT p.post_id, p.created_at
  FROM posts p LEFT JOIN queue_destinations d ON d.post_id = p.post_id
 WHERE {' AND '.join(where)}
 GROUP BY p.post_id, p.created_at, p.stage
 {having}
 ORDER BY p.created_at DESC, p.post_id DESC
 LIMIT %(limit)s"""
    with conn.cursor(row_factory=dict_row) as cur:
        page = cur.execute(query, params).fetchall()
        next_cursor = None
        if len(page) > limit:
            page = page[:limit]
            next_cursor = _encode_cursor(page[-1]["created_at"], page[-1]["post_id"])
        ids = [r["post_id"] for r in page]
        rows = cur.execute(_READ.replace("WHERE p.post_id = %s AND p.workspace_id = %s",
                                         "WHERE p.post_id = ANY(%s) AND p.workspace_id = %s")
                           .replace("ORDER BY d.ordinal", "ORDER BY p.post_id, d.ordinal"),
                           (ids, workspace_id)).fetchall() if ids else []
    by_post: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_post.setdefault(row["post_id"], []).append(row)
    return {"workspace_id": workspace_id, "posts": [_shape(by_post[i][0], by_post[i]) for i in ids],
            "next_cursor": next_cursor}


def _encode_cursor(created_at: datetime, post_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), post_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        created_at, post_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        when = datetime.fromisoformat(created_at)
        if when.tzinfo is None or not isinstance(post_id, str):
            raise TypeError("not a posts cursor")
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError) as error:
        raise ValueError(f"malformed posts cursor {cursor[:80]!r}: pass back a next_cursor exactly as returned") from error
    return when, post_id


def read_content_policy(conn: Connection, workspace_id: str) -> dict[str, Any]:
    """The workspace's content policy (requires_approval, disconnect_waiting); the defaults until set."""
    row = conn.execute("SELECT requires_approval, disconnect_waiting FROM content_policies WHERE workspace_id = %s",
                       (workspace_id,)).fetchone()
    return {"requires_approval": row[0], "disconnect_waiting": row[1]} if row else \
        {"requires_approval": False, "disconnect_waiting": "cancel"}
