"""Wallet: a workspace's credit ledger of live grants and pending holds.

Invariants: ``available = Σ remaining grants − Σ pending holds`` never drops below zero,
and every hold ends exactly once, consumed or released.

The state stays bounded however long the workspace lives: a hold leaves it when it ends and
a grant when it is used up, so deciding costs the same after ten posts or ten thousand. Grant
ids stay unique for good through a ``GrantClaim`` per grant id, not through this state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from schemas import events as ev

from domain.base import Context, HeraldAggregate
from domain.rejections import Reason, Rejected


@dataclass
class Grant:
    amount: int
    remaining: int
    source: str
    expires_at: datetime | None


@dataclass
class Hold:
    post_id: str
    destination_id: str
    amount: int


class Wallet(HeraldAggregate):
    KIND = "wallet"

    def __init__(self) -> None:
        super().__init__()
        self.grants: dict[str, Grant] = {}  # live grants only: remaining > 0
        self.holds: dict[str, Hold] = {}  # pending holds only

    @classmethod
    def open(cls, ctx: Context) -> Wallet:
        return cls.start(ctx, ctx.workspace_id, ev.WalletOpened(wallet_id=ctx.workspace_id))

    @property
    def granted(self) -> int:
        return sum(g.remaining for g in self.grants.values())

    @property
    def held(self) -> int:
        return sum(h.amount for h in self.holds.values())

    @property
    def available(self) -> int:
        return self.granted - self.held

    def grant(self, ctx: Context, grant_id: str, amount: int, source: str, expires_at: datetime | None) -> None:
        self.record(ctx, ev.CreditsGranted(grant_id=grant_id, amount=amount, source=source, expires_at=expires_at))

    def place_hold(self, ctx: Context, hold_id: str, post_id: str, destination_id: str, amount: int = 1) -> None:
        if self.available < amount:
            raise Rejected(
                Reason.insufficient_credits, f"{amount} credit(s) needed, {self.available} available"
            )
        self.record(
            ctx, ev.HoldPlaced(hold_id=hold_id, post_id=post_id, destination_id=destination_id, amount=amount)
        )

    def consume(self, ctx: Context, hold_id: str) -> None:
        hold = self._pending_hold(hold_id)
        burned, due = [], hold.amount
        for grant_id, grant in sorted(self.grants.items(), key=_earliest_expiring_first):
            if due == 0:
                break
            take = min(grant.remaining, due)
            if take:
                burned.append(ev.Burn(grant_id=grant_id, amount=take))
                due -= take
        assert due == 0, "a pending hold is always covered by the remaining grants"
        self.record(ctx, ev.HoldConsumed(hold_id=hold_id, amount=hold.amount, burned=burned))

    def release(self, ctx: Context, hold_id: str, reason: str) -> None:
        hold = self._pending_hold(hold_id)
        self.record(ctx, ev.HoldReleased(hold_id=hold_id, amount=hold.amount, reason=reason))

    def _pending_hold(self, hold_id: str) -> Hold:
        hold = self.holds.get(hold_id)
        if hold is None:
            raise Rejected(
                Reason.hold_not_pending,
                f"no pending hold {hold_id} in this wallet: it was never placed, or it was already consumed or released",
            )
        return hold

    def evolve(self, event: ev.EventData) -> None:
        match event:
            case ev.CreditsGranted():
                self.grants[event.grant_id] = Grant(event.amount, event.amount, event.source, event.expires_at)
            case ev.HoldPlaced():
                self.holds[event.hold_id] = Hold(event.post_id, event.destination_id, event.amount)
            case ev.HoldConsumed():
                del self.holds[event.hold_id]
                for burn in event.burned:
                    grant = self.grants[burn.grant_id]
                    grant.remaining -= burn.amount
                    if grant.remaining <= 0:
                        del self.grants[burn.grant_id]
            case ev.HoldReleased():
                del self.holds[event.hold_id]


def _earliest_expiring_first(item: tuple[str, Grant]) -> tuple[bool, datetime | None]:
    grant = item[1]
    return (grant.expires_at is None, grant.expires_at)
