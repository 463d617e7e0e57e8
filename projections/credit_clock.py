"""The credit clock's due items: what the clock must do to which workspace, and when.

Written from the wallet's events (one row per future duty), deleted when the duty is done or
moot, so the table holds only what is still ahead: the clock reads due rows by an index on
``due_at`` and never scans workspaces. Items:

| kind            | made by                                   | due                     | gone when                         |
|-----------------|-------------------------------------------|-------------------------|-----------------------------------|
| `expire_grant`  | CreditsGranted with expires_at (not monthly) | expires_at            | GrantExpired, or the grant used up |
| `warn_expiring` | the same                                  | expires_at − 3 days     | CreditsExpiringSoon, GrantExpired, used up |
| `renew`         | CreditPeriodStarted                       | renews_at               | the next CreditPeriodStarted      |
| `expire_hold`   | HoldPlaced with expires_at                | due time + hold grace   | HoldConsumed, HoldReleased        |

Monthly and carried-over credits are not expired here: the renewal ends them (with carryover).
"""

from __future__ import annotations

from datetime import timedelta

from psycopg import Connection

from projections.base import Projection, applies
from schemas import events as ev
from schemas.events import CloudEvent, EventData

WARN_AHEAD = timedelta(days=3)
MONTHLY_SOURCES = ("monthly", "carryover")

DDL = """
CREATE TABLE IF NOT EXISTS credit_clock (
    item_id      text        PRIMARY KEY,
    workspace_id text        NOT NULL,
    kind         text        NOT NULL,
    ref          text        NOT NULL,
    due_at       timestamptz NOT NULL,
    sent_at      timestamptz,
    attempts     integer     NOT NULL DEFAULT 0
);
-- The clock reads unsent due items by due time, and sent ones by when it sent them (to resend a
-- stale one): sent items wait for their outcome, and must not be scanned again at every tick.
DROP INDEX IF EXISTS credit_clock_due;
CREATE INDEX IF NOT EXISTS credit_clock_unsent ON credit_clock (due_at) WHERE sent_at IS NULL;
CREATE INDEX IF NOT EXISTS credit_clock_sent ON credit_clock (sent_at) WHERE sent_at IS NOT NULL;
DROP INDEX IF EXISTS credit_clock_ref;
-- Rows come and go all the time: vacuum after a fixed number of dead rows, not a share of the table.
ALTER TABLE credit_clock SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000);
"""
TABLES = ("credit_clock",)

_APPLIED = (ev.CreditsGranted, ev.HoldPlaced, ev.HoldConsumed, ev.HoldReleased, ev.GrantExpired,
            ev.CreditsExpiringSoon, ev.CreditPeriodStarted)

_INSERT = ("INSERT INTO credit_clock (item_id, workspace_id, kind, ref, due_at) VALUES (%s, %s, %s, %s, %s)"
           " ON CONFLICT (item_id) DO NOTHING")


def item_id(kind: str, workspace_id: str, ref: str) -> str:
    return f"{kind}:{workspace_id}:{ref}"


@applies(*_APPLIED)
def apply(conn: Connection, event: CloudEvent, data: EventData) -> None:
    ws = event.workspaceid

    def add(kind: str, ref: str, due_at: object) -> None:
        conn.execute(_INSERT, (item_id(kind, ws, ref), ws, kind, ref, due_at))

    def drop(*kinds: str, ref: str) -> None:
        conn.execute("DELETE FROM credit_clock WHERE item_id = ANY(%s)", ([item_id(k, ws, ref) for k in kinds],))

    match data:
        case ev.CreditsGranted() if data.expires_at is not None and data.source not in MONTHLY_SOURCES:
            add("expire_grant", data.grant_id, data.expires_at)
            add("warn_expiring", data.grant_id, max(event.time, data.expires_at - WARN_AHEAD))
        case ev.HoldPlaced() if data.expires_at is not None:
            add("expire_hold", data.hold_id, data.expires_at)
        case ev.HoldConsumed():
            drop("expire_hold", ref=data.hold_id)
            # A grant used up has nothing left to expire or warn about (wallet_grants is applied first).
            conn.execute(
                "DELETE FROM credit_clock WHERE item_id IN (SELECT k.kind || ':' || g.workspace_id || ':' || g.grant_id"
                " FROM wallet_grants g, (VALUES ('expire_grant'), ('warn_expiring')) AS k(kind)"
                " WHERE g.workspace_id = %s AND g.grant_id = ANY(%s) AND g.remaining <= 0 AND g.expires_at IS NOT NULL)",
                (ws, [b.grant_id for b in data.burned]),
            )
        case ev.HoldReleased():
            drop("expire_hold", ref=data.hold_id)
        case ev.GrantExpired():
            drop("expire_grant", "warn_expiring", ref=data.grant_id)
        case ev.CreditsExpiringSoon():
            drop("warn_expiring", ref=data.grant_id)
        case ev.CreditPeriodStarted():
            drop("renew", ref=data.period_start.isoformat())
            add("renew", data.renews_at.isoformat(), data.renews_at)


# Grants made before the clock existed: their items, from the wallet read model (what it has not
# applied yet, the projection adds when it gets there). Run once at the first start (wiring.prepare).
BACKFILL = """
INSERT INTO credit_clock (item_id, workspace_id, kind, ref, due_at)
SELECT k.kind || ':' || g.workspace_id || ':' || g.grant_id, g.workspace_id, k.kind, g.grant_id,
       CASE WHEN k.kind = 'warn_expiring' THEN g.expires_at - interval '3 days' ELSE g.expires_at END
  FROM wallet_grants g, (VALUES ('expire_grant'), ('warn_expiring')) AS k(kind)
 WHERE g.expires_at IS NOT NULL AND g.remaining > 0 AND g.source NOT IN ('monthly', 'carryover')
    ON CONFLICT (item_id) DO NOTHING
"""


def backfill(conn: Connection) -> int:
    return conn.execute(BACKFILL).rowcount


PROJECTION = Projection(name="credit_clock", ddl=DDL, tables=TABLES, handles=apply.handles, apply=apply,
                        needs=("wallet",))  # a grant's remaining
