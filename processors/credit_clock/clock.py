"""The credit clock: turns due items (``projections.credit_clock``) into commands.

One tick claims due rows (``FOR UPDATE SKIP LOCKED``, soonest first, so several clocks share
them), words one command per row and notes when it sent it; the rows stay until the events of
the outcome remove them. A row still there ``redeliver_after_s`` after it was sent is sent
again (the broker lost it, or the domain said ``not_due`` because this host's clock ran ahead).

Command ids are derived from the item and its attempt number. The effects are exactly once
whatever is sent twice: the wallet expires a grant once (an expired grant stays marked), renews
only the period that is due, and releases only a pending hold. A crash between producing and
committing sends the same ids again, which the domain answers as repeats.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from psycopg import Connection

from domain.base import derived_id
from schemas import commands as cmd
from schemas.commands import CommandEnvelope

# Two reads, each on its own partial index: never sent and due, soonest first; then sent long
# enough ago without an outcome (resent). Sent items waiting for their outcome are not scanned.
_DUE = """
SELECT item_id, workspace_id, kind, ref, attempts
  FROM credit_clock
 WHERE sent_at IS NULL AND due_at <= %(now)s
 ORDER BY due_at
 LIMIT %(limit)s
 FOR UPDATE SKIP LOCKED
"""
_STALE = """
SELECT item_id, workspace_id, kind, ref, attempts
  FROM credit_clock
 WHERE sent_at IS NOT NULL AND sent_at <= %(stale_before)s AND due_at <= %(now)s
 ORDER BY sent_at
 LIMIT %(limit)s
 FOR UPDATE SKIP LOCKED
"""


def payload_for(kind: str, ref: str) -> cmd.Payload:
    match kind:
        case "expire_grant":
            return cmd.ExpireGrant(grant_id=ref)
        case "warn_expiring":
            return cmd.WarnExpiringCredits(grant_id=ref)
        case "renew":
            return cmd.RenewCreditPeriod(renews_at=datetime.fromisoformat(ref))
        case "expire_hold":
            return cmd.ExpireHold(hold_id=ref)
    raise ValueError(f"unknown credit clock item kind {kind!r}")


def command_id_for(item_id: str, attempt: int) -> str:
    return f"clock-{derived_id('credit-clock', item_id, attempt)}"


def due_commands(conn: Connection, now: datetime, limit: int, redeliver_after_s: float,
                 issued_at: datetime | None = None) -> list[CommandEnvelope]:
    """Claim due items inside the caller's transaction and word their commands."""
    params = {"now": now, "stale_before": now - timedelta(seconds=redeliver_after_s), "limit": limit}
    rows = conn.execute(_DUE, params).fetchall()
    if len(rows) < limit:
        rows += conn.execute(_STALE, {**params, "limit": limit - len(rows)}).fetchall()
    if not rows:
        return []
    conn.execute(
        "UPDATE credit_clock SET sent_at = %s, attempts = attempts + 1 WHERE item_id = ANY(%s)",
        (now, [row[0] for row in rows]),
    )
    return [
        CommandEnvelope.wrap(payload_for(kind, ref), command_id=command_id_for(item, attempts),
                             workspace_id=workspace_id, issued_by="credit-clock", issued_at=issued_at or now)
        for item, workspace_id, kind, ref, attempts in rows
    ]
