"""The sandbox platform: "posts" are rows in a PostgreSQL table, so Herald can publish end to end
without a real platform. One row per attempt key, however often an attempt is retried."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from processors.platforms.base import Capabilities, ErrorKind, PublishError, PublishRequest, PublishResult, Reconcile

DDL = """
CREATE TABLE IF NOT EXISTS sandbox_posts (
    id          bigserial   PRIMARY KEY,
    attempt_key text        UNIQUE NOT NULL,
    account_id  text        NOT NULL,
    handle      text        NOT NULL,
    text        text        NOT NULL,
    media_urls  jsonb       NOT NULL,
    posted_at   timestamptz NOT NULL DEFAULT now()
);
"""
MAX_TEXT = 5000


@dataclass(frozen=True)
class SandboxPost:
    id: int
    attempt_key: str
    account_id: str
    handle: str
    text: str
    media_urls: tuple[str, ...]
    posted_at: datetime

    @property
    def platform_post_id(self) -> str:
        return _post_id(self.id)


class SandboxAdapter:
    platform = "sandbox"
    rate_budgets = ()  # Herald's own table: no budget to keep
    token_refresh = None  # no tokens, no OAuth: nothing to refresh, and no connect flow (connect it without tokens)
    required_settings: tuple[str, ...] = ()
    capabilities = Capabilities.from_rules("sandbox", threads=False, reconcile=Reconcile.lookup,
                                           doc_url="docs/platforms.md#sandbox",
                                           notes="Herald's own table, for trying Herald out; nothing leaves Herald")

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool

    def publish(self, request: PublishRequest) -> PublishResult:
        if not request.text.strip():
            raise PublishError(ErrorKind.invalid_content, "text is empty")
        if len(request.text) > MAX_TEXT:
            detail = f"{len(request.text)} characters; the sandbox allows {MAX_TEXT}"
            raise PublishError(ErrorKind.invalid_content, detail)
        with self.pool.connection() as conn:
            # DO NOTHING + re-select (not RETURNING alone): a repeated attempt key returns the first row.
            conn.execute(
                "INSERT INTO sandbox_posts (attempt_key, account_id, handle, text, media_urls)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (attempt_key) DO NOTHING",
                (request.attempt_key, request.account.account_id, request.account.handle, request.text,
                 Jsonb(list(request.media_urls))),
            )
            (post_id,) = conn.execute(
                "SELECT id FROM sandbox_posts WHERE attempt_key = %s", (request.attempt_key,)
            ).fetchone()
        return PublishResult(_post_id(post_id), None)

    def reconcile(self, request: PublishRequest) -> PublishResult | None:
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT id FROM sandbox_posts WHERE attempt_key = %s", (request.attempt_key,)
            ).fetchone()
        return PublishResult(_post_id(row[0]), None) if row else None


def list_posts(pool: ConnectionPool, account_id: str | None = None) -> list[SandboxPost]:
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT id, attempt_key, account_id, handle, text, media_urls, posted_at FROM sandbox_posts"
            " WHERE %(account)s::text IS NULL OR account_id = %(account)s ORDER BY id",
            {"account": account_id},
        ).fetchall()
    return [SandboxPost(r[0], r[1], r[2], r[3], r[4], tuple(r[5]), r[6]) for r in rows]


def _post_id(row_id: int) -> str:
    return f"sandbox-{row_id}"
