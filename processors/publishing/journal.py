"""The attempt journal: the publisher's own table, one row per attempt, and the only place that
says whether the platform may already have been called.

    scheduled ─▶ claimed ─▶ in_flight ─▶ done ─▶ reported
        ▲           │ (lease lost:       │            │ (outcome unknown)
        └───────────┘  no call made)     │            ▼
                                         │        unresolved ─▶ reported (resolved or left to an admin)
                   (lease lost: the call may have happened) ─▶ reconciled with the platform

``in_flight`` is committed BEFORE the platform is called; a row found ``in_flight`` with its
lease run out (its engine died) is reconciled with the platform, never simply called again.
``claimed`` rows made no call, so when their lease runs out they go back to ``scheduled``.
Rows carry an owner (one engine instance) and a lease it renews while it holds them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable

from psycopg import Connection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from schemas import events as ev
from schemas.commands import Payload

DDL = """
CREATE TABLE IF NOT EXISTS publish_journal (
    attempt_key    text        PRIMARY KEY,
    post_id        text        NOT NULL,
    destination_id text        NOT NULL,
    attempt        integer     NOT NULL,
    platform       text        NOT NULL,
    state          text        NOT NULL,
    outcome        jsonb,
    started_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz
);
-- The engine's columns; journals written by the one-call-at-a-time publisher get them here
-- (its 'done' rows had produced their outcome in the same step: they are 'reported').
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()
                    AND table_name = 'publish_journal' AND column_name = 'owner') THEN
        ALTER TABLE publish_journal
            ADD COLUMN IF NOT EXISTS workspace_id   text,
            ADD COLUMN IF NOT EXISTS account_id     text,
            ADD COLUMN IF NOT EXISTS handle         text,
            ADD COLUMN IF NOT EXISTS instance_url   text,
            ADD COLUMN IF NOT EXISTS body           jsonb,
            ADD COLUMN IF NOT EXISTS not_before     timestamptz,
            ADD COLUMN IF NOT EXISTS correlation_id text,
            ADD COLUMN IF NOT EXISTS owner          text,
            ADD COLUMN IF NOT EXISTS lease_until    timestamptz,
            ADD COLUMN IF NOT EXISTS called_at      timestamptz,
            ADD COLUMN IF NOT EXISTS checks         integer NOT NULL DEFAULT 0,
            ADD COLUMN IF NOT EXISTS next_check_at  timestamptz;
        ALTER TABLE publish_journal DROP CONSTRAINT IF EXISTS publish_journal_state_check;
        UPDATE publish_journal SET state = 'reported' WHERE state = 'done';
        ALTER TABLE publish_journal ADD CONSTRAINT publish_journal_state_check CHECK
            (state IN ('scheduled', 'claimed', 'in_flight', 'done', 'reported', 'unresolved'));
    END IF;
END $$;
-- Tokens are read from the credentials store at call time; a journal never keeps one.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()
                AND table_name = 'publish_journal' AND column_name = 'sealed_token') THEN
        ALTER TABLE publish_journal DROP COLUMN sealed_token;
    END IF;
END $$;
CREATE INDEX IF NOT EXISTS publish_journal_scheduled ON publish_journal (not_before) WHERE state = 'scheduled';
CREATE INDEX IF NOT EXISTS publish_journal_leased ON publish_journal (lease_until)
    WHERE state IN ('claimed', 'in_flight', 'done');
CREATE INDEX IF NOT EXISTS publish_journal_unresolved ON publish_journal (next_check_at) WHERE state = 'unresolved';
ALTER TABLE publish_journal SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000);
"""

_COLUMNS = ("attempt_key, post_id, destination_id, attempt, platform, workspace_id, account_id, handle,"
            " instance_url, body, not_before, correlation_id, state, outcome, checks")


@dataclass
class Entry:
    """One journal row as the engine holds it."""

    attempt_key: str
    post_id: str
    destination_id: str
    attempt: int
    platform: str
    workspace_id: str
    account_id: str
    handle: str
    instance_url: str | None
    text: str
    media_urls: tuple[str, ...]
    not_before: float  # epoch seconds
    correlation_id: str | None
    state: str
    outcome: dict[str, Any] | None
    checks: int
    account_settings: dict[str, str] = field(default_factory=dict)  # non-secret (page_id, …)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Entry:
        body = row["body"] or {}
        not_before: datetime | None = row["not_before"]
        return cls(
            attempt_key=row["attempt_key"], post_id=row["post_id"], destination_id=row["destination_id"],
            attempt=row["attempt"], platform=row["platform"], workspace_id=row["workspace_id"] or "",
            account_id=row["account_id"] or "", handle=row["handle"] or "", instance_url=row["instance_url"],
            text=body.get("text", ""),
            media_urls=tuple(body.get("media_urls", ())),
            not_before=not_before.timestamp() if not_before else 0.0, correlation_id=row["correlation_id"],
            state=row["state"], outcome=row["outcome"], checks=row["checks"],
            account_settings=dict(body.get("account_settings") or {}),
        )


def schedule(conn: Connection, event: ev.CloudEvent, attempt: ev.AttemptStarted) -> None:
    """Record a started attempt for the engine (in the consumer's transaction). A repeat changes
    nothing, except that a row the earlier publisher journaled gets what the engine needs."""
    conn.execute(
        "INSERT INTO publish_journal (attempt_key, post_id, destination_id, attempt, platform, state,"
        " workspace_id, account_id, handle, instance_url, body, not_before, correlation_id)"
        " VALUES (%s, %s, %s, %s, %s, 'scheduled', %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (attempt_key) DO UPDATE SET workspace_id = EXCLUDED.workspace_id,"
        " account_id = EXCLUDED.account_id, handle = EXCLUDED.handle, instance_url = EXCLUDED.instance_url,"
        " body = EXCLUDED.body, not_before = EXCLUDED.not_before,"
        " correlation_id = EXCLUDED.correlation_id WHERE publish_journal.body IS NULL",
        (attempt.attempt_key, attempt.post_id, attempt.destination_id, attempt.attempt, attempt.platform,
         event.workspaceid, attempt.social_account_id, attempt.handle, attempt.instance_url,
         Jsonb({"text": attempt.text, "media_urls": list(attempt.media_urls),
                "account_settings": dict(attempt.account_settings)}),
         attempt.not_before or event.time, event.correlationid),
    )


def _lease(lease_s: float) -> str:
    return f"now() + make_interval(secs => {float(lease_s)!r})"


def claim_due(conn: Connection, owner: str, *, lead_s: float, lease_s: float, limit: int) -> list[Entry]:
    """Claim scheduled rows due within ``lead_s``: no call is made yet."""
    if limit <= 0:
        return []
    rows = conn.execute(
        f"UPDATE publish_journal j SET state = 'claimed', owner = %(owner)s, lease_until = {_lease(lease_s)}"
        " FROM (SELECT attempt_key FROM publish_journal WHERE state = 'scheduled'"
        "        AND not_before <= now() + make_interval(secs => %(lead)s)"
        "        ORDER BY not_before LIMIT %(limit)s FOR UPDATE SKIP LOCKED) due"
        f" WHERE j.attempt_key = due.attempt_key RETURNING {_prefixed('j')}",
        {"owner": owner, "lead": lead_s, "limit": limit},
    )
    return _entries(rows)


def mark_in_flight(conn: Connection, owner: str, keys: list[str], lease_s: float) -> set[str]:
    """Journal-before-call: the keys still ours, now in flight (the caller commits before calling)."""
    if not keys:
        return set()
    rows = conn.execute(
        f"UPDATE publish_journal SET state = 'in_flight', called_at = now(), lease_until = {_lease(lease_s)}"
        " WHERE attempt_key = ANY(%s) AND owner = %s AND state = 'claimed' RETURNING attempt_key",
        (keys, owner),
    ).fetchall()
    return {key for (key,) in rows}


def claim_lost(conn: Connection, owner: str, *, lease_s: float, limit: int) -> list[Entry]:
    """Rows whose engine died: claimed ones go back to scheduled (no call was made); in-flight,
    done and unresolved-and-due ones are taken over, to be reconciled, reported or re-checked."""
    conn.execute("UPDATE publish_journal SET state = 'scheduled', owner = NULL, lease_until = NULL"
                 " WHERE state = 'claimed' AND lease_until < now()")
    rows = conn.execute(
        f"UPDATE publish_journal j SET owner = %(owner)s, lease_until = {_lease(lease_s)}"
        " FROM (SELECT attempt_key FROM publish_journal"
        "        WHERE (state IN ('in_flight', 'done') AND lease_until < now())"
        "           OR (state = 'unresolved' AND next_check_at <= now())"
        "        LIMIT %(limit)s FOR UPDATE SKIP LOCKED) lost"
        f" WHERE j.attempt_key = lost.attempt_key RETURNING {_prefixed('j')}",
        {"owner": owner, "limit": limit},
    )
    return _entries(rows)


def renew(conn: Connection, owner: str, keys: list[str], lease_s: float) -> None:
    if keys:
        conn.execute(f"UPDATE publish_journal SET lease_until = {_lease(lease_s)}"
                     " WHERE attempt_key = ANY(%s) AND owner = %s", (keys, owner))


def release(conn: Connection, owner: str, keys: Iterable[str]) -> None:
    """Give claimed rows back (the engine stops): another engine may call them."""
    conn.execute("UPDATE publish_journal SET state = 'scheduled', owner = NULL, lease_until = NULL"
                 " WHERE attempt_key = ANY(%s) AND owner = %s AND state = 'claimed'", (list(keys), owner))


def finish(conn: Connection, owner: str, outcomes: list[tuple[str, Payload]]) -> set[str]:
    """Store outcomes (state done) of rows still ours, in one statement; returns those keys."""
    if not outcomes:
        return set()
    keys = [key for key, _ in outcomes]
    bodies = [json.dumps({"type": type(payload).__name__, **json.loads(payload.model_dump_json())})
              for _, payload in outcomes]
    rows = conn.execute(
        "UPDATE publish_journal j SET state = 'done', outcome = o.body::jsonb, finished_at = now()"
        " FROM unnest(%s::text[], %s::text[]) AS o(attempt_key, body)"
        " WHERE j.attempt_key = o.attempt_key AND j.owner = %s AND j.state IN ('in_flight', 'unresolved', 'done')"
        " RETURNING j.attempt_key",
        (keys, bodies, owner),
    ).fetchall()
    return {key for (key,) in rows}


def reported(conn: Connection, keys: list[str], unresolved: dict[str, float]) -> None:
    """Outcomes produced; an unknown one is re-checked with the platform after ``unresolved[key]`` seconds."""
    settled = [k for k in keys if k not in unresolved]
    if settled:
        conn.execute("UPDATE publish_journal SET state = 'reported', owner = NULL, lease_until = NULL"
                     " WHERE attempt_key = ANY(%s)", (settled,))
    with conn.cursor() as cur:
        cur.executemany(
            "UPDATE publish_journal SET state = 'unresolved', owner = NULL, lease_until = NULL, checks = checks + 1,"
            " next_check_at = now() + make_interval(secs => %s) WHERE attempt_key = %s",
            [(delay, key) for key, delay in unresolved.items()],
        )


def _prefixed(alias: str) -> str:
    return ", ".join(f"{alias}.{c.strip()}" for c in _COLUMNS.split(","))


def _entries(cursor: Any) -> list[Entry]:
    names = [d.name for d in cursor.description]
    return [Entry.from_row(dict(zip(names, row))) for row in cursor.fetchall()]


def counts(conn: Connection) -> dict[str, int]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT state, count(*) AS n FROM publish_journal GROUP BY state")
        return {row["state"]: row["n"] for row in cur.fetchall()}
