"""Generation log read model: one row per generation (issue 15, item 4) with its request, the
provider, model, prompt hash, tokens in/out, latency and outcome; and the admin generation stats
(total, success rate, failures by reason, top topics) read from it."""

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
CREATE TABLE IF NOT EXISTS generation_log (
    workspace_id        text        NOT NULL,
    generation_id       text        NOT NULL,
    requested_at        timestamptz NOT NULL,
    day                 text        NOT NULL,
    topic               text        NOT NULL,
    platforms           jsonb       NOT NULL,
    tone                text        NOT NULL,
    language            text        NOT NULL,
    brand_voice_version integer     NOT NULL,
    status              text        NOT NULL,
    provider            text,
    model               text,
    prompt_sha256       text,
    tokens_in           integer,
    tokens_out          integer,
    latency_ms          integer,
    reason              text,
    detail              text,
    captions            jsonb,
    hashtags            jsonb,
    finished_at         timestamptz,
    PRIMARY KEY (workspace_id, generation_id)
);
CREATE INDEX IF NOT EXISTS generation_log_requested ON generation_log (workspace_id, requested_at DESC);
"""
TABLES = ("generation_log",)
COLUMNS = ("workspace_id", "generation_id", "requested_at", "day", "topic", "platforms", "tone", "language",
           "brand_voice_version", "status", "provider", "model", "prompt_sha256", "tokens_in", "tokens_out",
           "latency_ms", "reason", "detail", "captions", "hashtags", "finished_at")
JSONB = ("platforms", "captions", "hashtags")
MAX_LIMIT = 200

_APPLIED = (ev.GenerationRequested, ev.GenerationSucceeded, ev.GenerationFailed)


def requested_row(workspace_id: str, at: datetime, d: dict[str, Any]) -> dict[str, Any]:
    return {"workspace_id": workspace_id, "generation_id": d["generation_id"], "requested_at": at, "day": d["day"],
            "topic": d["topic"], "platforms": list(d["platforms"]), "tone": d["tone"], "language": d["language"],
            "brand_voice_version": d["brand_voice_version"], "status": "requested", "provider": None, "model": None,
            "prompt_sha256": None, "tokens_in": None, "tokens_out": None, "latency_ms": None, "reason": None,
            "detail": None, "captions": None, "hashtags": None, "finished_at": None}


def outcome_values(event_type: str, at: datetime, d: dict[str, Any]) -> dict[str, Any]:
    succeeded = event_type == ev.GenerationSucceeded.type
    return {"status": "succeeded" if succeeded else "failed", "provider": d["provider"], "model": d["model"],
            "prompt_sha256": d["prompt_sha256"], "tokens_in": d["tokens_in"], "tokens_out": d["tokens_out"],
            "latency_ms": d["latency_ms"], "reason": None if succeeded else d["reason"],
            "detail": None if succeeded else d["detail"], "captions": dict(d["captions"]) if succeeded else None,
            "hashtags": list(d["hashtags"]) if succeeded else None, "finished_at": at}


@applies(*_APPLIED)
def apply(conn: Connection, event: CloudEvent, data: EventData) -> None:
    d = data.model_dump()
    if isinstance(data, ev.GenerationRequested):
        row = requested_row(event.workspaceid, event.time, d)
        conn.execute(
            f"INSERT INTO generation_log ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"
            " ON CONFLICT DO NOTHING",
            [Jsonb(row[c]) if c in JSONB and row[c] is not None else row[c] for c in COLUMNS],
        )
        return
    values = outcome_values(event.type, event.time, d)
    conn.execute(
        f"UPDATE generation_log SET {', '.join(f'{c} = %s' for c in values)}"
        " WHERE workspace_id = %s AND generation_id = %s",
        [*(Jsonb(v) if c in JSONB and v is not None else v for c, v in values.items()),
         event.workspaceid, d["generation_id"]],
    )


PROJECTION = Projection(name="generations", ddl=DDL, tables=TABLES, handles=apply.handles, apply=apply)


def read_log(conn: Connection, workspace_id: str, *, before: datetime | None = None,
             limit: int = 50) -> list[dict[str, Any]]:
    """The workspace's generations, newest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"SELECT {', '.join(c for c in COLUMNS if c != 'workspace_id')} FROM generation_log"
            " WHERE workspace_id = %s AND (%s::timestamptz IS NULL OR requested_at < %s)"
            " ORDER BY requested_at DESC, generation_id LIMIT %s",
            (workspace_id, before, before, min(limit, MAX_LIMIT)),
        ).fetchall()


def read_stats(conn: Connection, since: datetime | None = None, top: int = 10) -> dict[str, Any]:
    """Admin generation stats over every workspace: total, outcomes, success rate (of those
    finished), failures by reason, providers, tokens, top topics."""
    where, args = ("WHERE requested_at >= %s", (since,)) if since else ("", ())
    with conn.cursor(row_factory=dict_row) as cur:
        totals = cur.execute(
            "SELECT count(*) AS total, count(*) FILTER (WHERE status = 'succeeded') AS succeeded,"
            " count(*) FILTER (WHERE status = 'failed') AS failed,"
            " count(*) FILTER (WHERE status = 'requested') AS pending,"
            " coalesce(sum(tokens_in), 0) AS tokens_in, coalesce(sum(tokens_out), 0) AS tokens_out,"
            f" avg(latency_ms) FILTER (WHERE status = 'succeeded') AS avg_latency_ms FROM generation_log {where}",
            args).fetchone()
        reasons = cur.execute(
            f"SELECT reason, count(*) AS n FROM generation_log {where} {'AND' if where else 'WHERE'}"
            " status = 'failed' GROUP BY reason ORDER BY n DESC, reason", args).fetchall()
        providers = cur.execute(
            f"SELECT provider, model, count(*) AS n FROM generation_log {where} {'AND' if where else 'WHERE'}"
            " provider IS NOT NULL GROUP BY provider, model ORDER BY n DESC, provider, model", args).fetchall()
        topics = cur.execute(
            f"SELECT lower(topic) AS topic, count(*) AS n FROM generation_log {where}"
            " GROUP BY lower(topic) ORDER BY n DESC, topic LIMIT %s", (*args, top)).fetchall()
    finished = totals["succeeded"] + totals["failed"]
    return {
        "total": totals["total"], "succeeded": totals["succeeded"], "failed": totals["failed"],
        "pending": totals["pending"],
        "success_rate": round(totals["succeeded"] / finished, 4) if finished else None,
        "failures_by_reason": {r["reason"]: r["n"] for r in reasons},
        "providers": [{"provider": p["provider"], "model": p["model"], "generations": p["n"]} for p in providers],
        "tokens_in": int(totals["tokens_in"]), "tokens_out": int(totals["tokens_out"]),
        "avg_latency_ms": round(float(totals["avg_latency_ms"]), 1) if totals["avg_latency_ms"] is not None else None,
        "top_topics": [{"topic": t["topic"], "generations": t["n"]} for t in topics],
    }
