"""Dispatcher: finds destinations due within the lead time in the queue read model and asks the
domain to start their next attempt. It starts them ``lead_s`` ahead so that the attempt is
journaled and waiting in the publishing engine when it falls due: the engine calls the platform
at the due time itself (the attempt carries it as ``not_before``). Several dispatchers can run: ``FOR UPDATE SKIP LOCKED`` shares the rows,
and the command id derived from (post, destination, attempt) makes a re-issue harmless.

It owns ``dispatch_log`` (what it asked for and when) and never writes the read model:
a start-attempt nobody answered is asked for again after ``redeliver_after_s``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from psycopg import Connection

from processors.commands import command_for
from schemas.commands import CommandEnvelope, StartPublishAttempt

DDL = """
CREATE TABLE IF NOT EXISTS dispatch_log (
    post_id        text        NOT NULL,
    destination_id text        NOT NULL,
    attempt        integer     NOT NULL,
    dispatched_at  timestamptz NOT NULL,
    PRIMARY KEY (post_id, destination_id, attempt)
);
"""

_DUE = """
SELECT q.workspace_id, q.post_id, q.destination_id, q.attempt + 1
  FROM queue_destinations q
 WHERE q.status IN ('pending', 'retry_scheduled')
   AND q.due_at <= %(until)s
   AND NOT EXISTS (
        SELECT 1 FROM dispatch_log l
         WHERE l.post_id = q.post_id AND l.destination_id = q.destination_id
           AND l.attempt = q.attempt + 1 AND l.dispatched_at > %(stale_before)s)
 ORDER BY q.due_at
 LIMIT %(limit)s
 FOR UPDATE OF q SKIP LOCKED
"""


def due_attempts(conn: Connection, now: datetime, limit: int, redeliver_after_s: float,
                 lead_s: float = 0.0) -> list[CommandEnvelope]:
    """Claim destinations due by ``now + lead_s`` (inside the caller's transaction) and word their
    start commands."""
    rows = conn.execute(
        _DUE, {"until": now + timedelta(seconds=lead_s), "stale_before": now - timedelta(seconds=redeliver_after_s),
               "limit": limit}
    ).fetchall()
    if not rows:
        return []
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO dispatch_log VALUES (%s, %s, %s, %s) ON CONFLICT (post_id, destination_id, attempt)"
            " DO UPDATE SET dispatched_at = EXCLUDED.dispatched_at",
            [(post_id, destination_id, attempt, now) for _, post_id, destination_id, attempt in rows],
        )
    return [
        command_for(
            StartPublishAttempt(post_id=post_id, destination_id=destination_id, attempt=attempt),
            workspace_id=workspace_id,
            id_parts=("start", post_id, destination_id, attempt),
            issued_by="dispatcher",
        )
        for workspace_id, post_id, destination_id, attempt in rows
    ]
