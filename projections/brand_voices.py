"""Brand voice read model: each workspace's current brand voice and its version (what
`GET /v1/workspaces/{ws}/brand-voice` answers). A version older than the row's changes nothing, so an
event applied twice or late leaves the row as it was."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import Connection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from projections.base import Projection, applies
from schemas import events as ev
from schemas.events import CloudEvent, EventData

DDL = """
CREATE TABLE IF NOT EXISTS brand_voices (
    workspace_id   text        PRIMARY KEY,
    version        integer     NOT NULL,
    tone           text        NOT NULL,
    audience       text        NOT NULL,
    niche          text        NOT NULL,
    words_to_use   jsonb       NOT NULL,
    words_to_avoid jsonb       NOT NULL,
    example_posts  jsonb       NOT NULL,
    emoji_policy   text        NOT NULL,
    hashtag_policy text        NOT NULL,
    set_at         timestamptz NOT NULL
);
"""
TABLES = ("brand_voices",)
COLUMNS = ("workspace_id", "version", "tone", "audience", "niche", "words_to_use", "words_to_avoid", "example_posts",
           "emoji_policy", "hashtag_policy", "set_at")
JSONB = ("words_to_use", "words_to_avoid", "example_posts")
APPLIED = (ev.BrandVoiceSet,)


def row_of(workspace_id: str, at: datetime, d: dict[str, Any]) -> dict[str, Any]:
    return {"workspace_id": workspace_id, "version": d["version"], "tone": d["tone"], "audience": d["audience"],
            "niche": d["niche"], "words_to_use": list(d["words_to_use"]), "words_to_avoid": list(d["words_to_avoid"]),
            "example_posts": list(d["example_posts"]), "emoji_policy": d["emoji_policy"],
            "hashtag_policy": d["hashtag_policy"], "set_at": at}


@applies(*APPLIED)
def apply(conn: Connection, event: CloudEvent, data: EventData) -> None:
    row = row_of(event.workspaceid, event.time, data.model_dump())
    conn.execute(
        f"INSERT INTO brand_voices ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"
        f" ON CONFLICT (workspace_id) DO UPDATE SET {', '.join(f'{c} = EXCLUDED.{c}' for c in COLUMNS[1:])}"
        " WHERE brand_voices.version < EXCLUDED.version",
        [Jsonb(row[c]) if c in JSONB else row[c] for c in COLUMNS])


PROJECTION = Projection(name="brand_voices", ddl=DDL, tables=TABLES, handles=apply.handles, apply=apply)


def read_voice(conn: Connection, workspace_id: str) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(f"SELECT {', '.join(COLUMNS[1:])} FROM brand_voices WHERE workspace_id = %s",
                           (workspace_id,)).fetchone()
