"""Posts read model: each post's content (``posts``) with the per-destination state kept by the
queue projection (``queue_destinations``, which also holds each destination's text). A post's
status is rolled up from its destinations' statuses exactly as the domain's ``Post.status``.
"""

from __future__ import annotations

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
"""
TABLES = ("posts",)

# A destination event only moves the post's updated_at; the destination itself is the queue projection's.
_DESTINATION_EVENTS = (ev.AttemptStarted, ev.DestinationPublished, ev.RetryScheduled, ev.DestinationThrottled,
                       ev.DestinationFailed, ev.DestinationSkipped, ev.OutcomeUnknown, ev.PostCancelled)
_APPLIED = (ev.PostScheduled, *_DESTINATION_EVENTS)


@applies(*_APPLIED)
def apply(conn: Connection, event: CloudEvent, data: EventData) -> None:
    """Apply one event to ``posts``; others are ignored without parsing them."""
    match data:
        case ev.PostScheduled():
            conn.execute(
                "INSERT INTO posts (post_id, workspace_id, text, media_urls, publish_at, created_at, updated_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (data.post_id, event.workspaceid, data.text, Jsonb(list(data.media_urls)), data.publish_at,
                 event.time, event.time),
            )
        case (ev.AttemptStarted() | ev.DestinationPublished() | ev.RetryScheduled() | ev.DestinationThrottled()
              | ev.DestinationFailed() | ev.DestinationSkipped() | ev.OutcomeUnknown() | ev.PostCancelled()):
            conn.execute(
                "UPDATE posts SET updated_at = %s WHERE post_id = %s AND updated_at < %s",
                (event.time, data.post_id, event.time),
            )


PROJECTION = Projection(name="posts", ddl=DDL, tables=TABLES, handles=apply.handles, apply=apply)


_READ = """
SELECT p.post_id, p.workspace_id, p.text AS post_text, p.media_urls, p.publish_at,
       d.destination_id, d.social_account_id, d.platform, d.handle, COALESCE(d.text, '') AS text, d.status,
       d.attempt, d.due_at, d.platform_post_id, d.url, d.reason
  FROM posts p
  LEFT JOIN queue_destinations d ON d.post_id = p.post_id
 WHERE p.post_id = %s AND p.workspace_id = %s
 ORDER BY d.ordinal NULLS LAST, d.destination_id
"""
_DESTINATION_FIELDS = ("destination_id", "social_account_id", "platform", "handle", "text", "status", "attempt",
                       "due_at", "platform_post_id", "url", "reason")


def read_post(conn: Connection, workspace_id: str, post_id: str) -> dict[str, Any] | None:
    """The post shaped as ``schemas.api.PostView``, destinations in the order they were scheduled;
    None when the workspace has no such post (another workspace's post is None too). One query."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(_READ, (post_id, workspace_id)).fetchall()
    if not rows:
        return None
    first = rows[0]
    destinations = [{f: row[f] for f in _DESTINATION_FIELDS} for row in rows if row["destination_id"] is not None]
    return {
        "post_id": first["post_id"],
        "workspace_id": first["workspace_id"],
        "status": post_status(d["status"] for d in destinations),
        "text": first["post_text"],
        "media_urls": first["media_urls"],
        "publish_at": first["publish_at"],
        "destinations": destinations,
    }
