"""Wallet read model: per workspace its grants (with what remains of each) and its holds
(pending until consumed or released). The balances follow from the live rows:
``granted = Σ remaining of grants``, ``held = Σ amount of pending holds``,
``available = granted − held`` (view ``wallet_balances``).

Settled holds and used-up grants stay in the tables as history, but the read touches only the
live ones (partial indexes), so it costs the same however long the workspace has lived.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import Connection

from projections.base import Projection, applies
from schemas import events as ev
from schemas.events import CloudEvent, EventData

DDL = """
CREATE TABLE IF NOT EXISTS wallets (
    workspace_id text        PRIMARY KEY,
    opened_at    timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS wallet_grants (
    workspace_id text        NOT NULL,
    grant_id     text        NOT NULL,
    amount       integer     NOT NULL,
    remaining    integer     NOT NULL,
    source       text        NOT NULL,
    expires_at   timestamptz,
    granted_at   timestamptz NOT NULL,
    position     bigint      NOT NULL,
    PRIMARY KEY (workspace_id, grant_id)
);
CREATE INDEX IF NOT EXISTS wallet_grants_live ON wallet_grants (workspace_id, position) WHERE remaining > 0;
-- Credit expiry (docs/credits.md): what expired of the grant, and the last expiry event applied.
-- (ADD COLUMN IF NOT EXISTS would take an exclusive lock at every start: only ALTER when missing.)
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()
                    AND table_name = 'wallet_grants' AND column_name = 'expiry_position') THEN
        ALTER TABLE wallet_grants ADD COLUMN IF NOT EXISTS expired integer NOT NULL DEFAULT 0;
        ALTER TABLE wallet_grants ADD COLUMN IF NOT EXISTS expiry_position bigint NOT NULL DEFAULT 0;
    END IF;
END $$;
CREATE TABLE IF NOT EXISTS wallet_holds (
    workspace_id   text        NOT NULL,
    hold_id        text        NOT NULL,
    post_id        text        NOT NULL,
    destination_id text        NOT NULL,
    amount         integer     NOT NULL,
    status         text        NOT NULL,
    placed_at      timestamptz NOT NULL,
    settled_at     timestamptz,
    reason         text        NOT NULL DEFAULT '',
    position       bigint      NOT NULL,
    PRIMARY KEY (workspace_id, hold_id)
);
CREATE INDEX IF NOT EXISTS wallet_holds_pending ON wallet_holds (workspace_id, position) WHERE status = 'pending';
-- As for queue_destinations: ended holds leave dead entries in the pending index until a vacuum.
ALTER TABLE wallet_holds SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000);
-- Every expiry of a grant's credits (a grant can expire more than once: reserved credits expire when their
-- hold ends), for reports per day.
CREATE TABLE IF NOT EXISTS wallet_expiries (
    workspace_id text        NOT NULL,
    position     bigint      NOT NULL,
    grant_id     text        NOT NULL,
    amount       integer     NOT NULL,
    reason       text        NOT NULL,
    expired_at   timestamptz NOT NULL,
    PRIMARY KEY (workspace_id, position)
);
CREATE OR REPLACE VIEW wallet_balances AS
SELECT w.workspace_id, g.granted, h.held, g.granted - h.held AS available
  FROM wallets w,
       LATERAL (SELECT COALESCE(sum(remaining), 0)::bigint AS granted FROM wallet_grants
                 WHERE workspace_id = w.workspace_id AND remaining > 0) g,
       LATERAL (SELECT COALESCE(sum(amount), 0)::bigint AS held FROM wallet_holds
                 WHERE workspace_id = w.workspace_id AND status = 'pending') h;
"""
TABLES = ("wallets", "wallet_grants", "wallet_holds", "wallet_expiries")

_APPLIED = (ev.WorkspaceOpened, ev.WalletOpened, ev.CreditsGranted, ev.HoldPlaced, ev.HoldConsumed, ev.HoldReleased,
            ev.GrantExpired, ev.CreditsCarriedOver)

# Expiries and carryovers move a grant's remaining once: an event at or below the grant's last
# applied expiry position is a redelivery.
_TAKE = """
UPDATE wallet_grants g SET remaining = g.remaining - t.amount, expired = g.expired + t.expired,
                           expiry_position = %(pos)s
  FROM unnest(%(grant_ids)s::text[], %(amounts)s::integer[], %(expired)s::integer[]) AS t(grant_id, amount, expired)
 WHERE g.workspace_id = %(ws)s AND g.grant_id = t.grant_id AND g.expiry_position < %(pos)s
"""

# Burns only when this event is what ends the hold, so a redelivered consumption burns nothing.
_CONSUME = """
WITH settled AS (
    UPDATE wallet_holds SET status = 'consumed', settled_at = %(at)s
     WHERE workspace_id = %(ws)s AND hold_id = %(hold_id)s AND status = 'pending'
 RETURNING hold_id
)
UPDATE wallet_grants g SET remaining = g.remaining - b.amount
  FROM unnest(%(grant_ids)s::text[], %(amounts)s::integer[]) AS b(grant_id, amount)
 WHERE g.workspace_id = %(ws)s AND g.grant_id = b.grant_id AND EXISTS (SELECT 1 FROM settled)
"""


@applies(*_APPLIED)
def apply(conn: Connection, event: CloudEvent, data: EventData) -> None:
    """Apply one event to the wallet tables; others are ignored without parsing them."""
    ws, at = event.workspaceid, event.time
    match data:
        case ev.WorkspaceOpened() | ev.WalletOpened():
            conn.execute("INSERT INTO wallets VALUES (%s, %s) ON CONFLICT DO NOTHING", (ws, at))
        case ev.CreditsGranted():
            conn.execute(
                "INSERT INTO wallet_grants (workspace_id, grant_id, amount, remaining, source, expires_at, granted_at,"
                " position) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (ws, data.grant_id, data.amount, data.amount, data.source, data.expires_at, at, event.position),
            )
        case ev.HoldPlaced():
            conn.execute(
                "INSERT INTO wallet_holds (workspace_id, hold_id, post_id, destination_id, amount, status, placed_at,"
                " position) VALUES (%s, %s, %s, %s, %s, 'pending', %s, %s) ON CONFLICT DO NOTHING",
                (ws, data.hold_id, data.post_id, data.destination_id, data.amount, at, event.position),
            )
        case ev.HoldConsumed():
            conn.execute(
                _CONSUME,
                {"ws": ws, "hold_id": data.hold_id, "at": at,
                 "grant_ids": [b.grant_id for b in data.burned], "amounts": [b.amount for b in data.burned]},
            )
        case ev.HoldReleased():
            conn.execute(
                "UPDATE wallet_holds SET status = 'released', settled_at = %s, reason = %s"
                " WHERE workspace_id = %s AND hold_id = %s AND status = 'pending'",
                (at, data.reason, ws, data.hold_id),
            )
        case ev.GrantExpired():
            conn.execute(_TAKE, {"ws": ws, "pos": event.position, "grant_ids": [data.grant_id],
                                 "amounts": [data.amount], "expired": [data.amount]})
            conn.execute("INSERT INTO wallet_expiries VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                         (ws, event.position, data.grant_id, data.amount, data.reason, at))
        case ev.CreditsCarriedOver():
            conn.execute(_TAKE, {"ws": ws, "pos": event.position, "grant_ids": [b.grant_id for b in data.drawn],
                                 "amounts": [b.amount for b in data.drawn], "expired": [0 for _ in data.drawn]})
            conn.execute(
                "INSERT INTO wallet_grants (workspace_id, grant_id, amount, remaining, source, expires_at, granted_at,"
                " position) VALUES (%s, %s, %s, %s, 'carryover', %s, %s, %s) ON CONFLICT DO NOTHING",
                (ws, data.grant_id, data.amount, data.amount, data.expires_at, at, event.position),
            )


PROJECTION = Projection(name="wallet", ddl=DDL, tables=TABLES, handles=apply.handles, apply=apply)


_READ = """
SELECT w.workspace_id,
       (SELECT COALESCE(json_agg(json_build_object(
                   'grant_id', g.grant_id, 'amount', g.amount, 'remaining', g.remaining, 'source', g.source,
                   'expires_at', g.expires_at, 'expired', g.expired) ORDER BY g.position), '[]'::json)
          FROM wallet_grants g WHERE g.workspace_id = w.workspace_id AND g.remaining > 0) AS grants,
       (SELECT COALESCE(json_agg(json_build_object(
                   'hold_id', h.hold_id, 'post_id', h.post_id, 'destination_id', h.destination_id,
                   'amount', h.amount, 'status', h.status) ORDER BY h.position), '[]'::json)
          FROM wallet_holds h WHERE h.workspace_id = w.workspace_id AND h.status = 'pending') AS holds
  FROM wallets w
 WHERE w.workspace_id = %s
"""


def read_wallet(conn: Connection, workspace_id: str) -> dict[str, Any] | None:
    """The wallet shaped as ``schemas.api.WalletView``: balances, live grants (remaining > 0) and
    pending holds, in the order they were made; None when the workspace has no wallet. One query."""
    row = conn.execute(_READ, (workspace_id,)).fetchone()
    if row is None:
        return None
    _, grants, holds = row
    for grant in grants:
        if grant["expires_at"] is not None:
            grant["expires_at"] = datetime.fromisoformat(grant["expires_at"])
    granted = sum(g["remaining"] for g in grants)
    held = sum(h["amount"] for h in holds)
    return {"workspace_id": workspace_id, "available": granted - held, "granted": granted, "held": held,
            "grants": grants, "holds": holds}


def read_expiries(conn: Connection, workspace_id: str, limit: int = 20) -> list[dict[str, Any]]:
    """The workspace's last credit expiries (grant, amount, reason, when), newest first; one
    keyset read of ``wallet_expiries``'s primary key, whatever the history's length."""
    rows = conn.execute(
        "SELECT grant_id, amount, reason, expired_at FROM wallet_expiries WHERE workspace_id = %s"
        " ORDER BY position DESC LIMIT %s", (workspace_id, limit)).fetchall()
    return [{"grant_id": g, "amount": a, "reason": r, "expired_at": at} for g, a, r, at in rows]
