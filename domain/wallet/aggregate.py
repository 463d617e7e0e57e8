"""Wallet: a workspace's credit ledger of live grants, pending holds and its credit period.

Invariants: ``available = Σ remaining grants − Σ pending holds`` never drops below zero, every
hold ends exactly once (consumed or released), and no credit is used after its grant expired.

A hold reserves its credits from particular grants when it is placed (the grant that expires
first, first) and a consumption burns exactly those (``HoldConsumed.burned``). An expiry
expires what is not reserved; the reserved credits stay for their holds (the grant is marked
``expired``), and what a released hold gave back to an expired grant expires then. A grant
whose ``expires_at`` passed reserves nothing for new holds even before the credit clock records
its expiry, so a late clock never lets a dead credit be used (docs/credits.md).

The state stays bounded however long the workspace lives: a hold leaves it when it ends and
a grant when it is used up or expired with nothing reserved, so deciding costs the same after
ten posts or ten thousand. Grant ids stay unique for good through a ``GrantClaim`` per grant id,
not through this state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from schemas import events as ev

from domain import tiers
from domain.base import Context, HeraldAggregate, derived_id
from domain.rejections import Reason, Rejected
from domain.wallet.period import next_renewal

# A hold still pending this long after its post's due time is released by the credit clock
# (retries and the missed window end well before), so credits are never stuck.
HOLD_GRACE = timedelta(hours=24)
MONTHLY_SOURCES = frozenset({"monthly", "carryover"})


@dataclass
class Grant:
    amount: int
    remaining: int
    source: str
    expires_at: datetime | None
    expired: bool = False  # its expiry is recorded: what remains is reserved by pending holds
    reserved: int = 0  # by pending holds

    @property
    def unreserved(self) -> int:
        return self.remaining - self.reserved


@dataclass
class Hold:
    post_id: str
    destination_id: str
    amount: int
    expires_at: datetime | None = None
    reserved: dict[str, int] | None = None  # grant id → credits; None for holds placed before reservations


@dataclass
class Period:
    period_start: datetime
    renews_at: datetime
    timezone: str
    renewal_day: int
    tier: str
    monthly_credits: int
    carryover_cap: int
    low_credit_threshold: int
    low_notified: bool = False


class Wallet(HeraldAggregate):
    KIND = "wallet"
    period: Period | None = None  # class default: a snapshot from before periods loads without one

    def __init__(self) -> None:
        super().__init__()
        self.grants: dict[str, Grant] = {}  # live grants only: remaining > 0
        self.holds: dict[str, Hold] = {}  # pending holds only
        self.period = None

    @classmethod
    def open(cls, ctx: Context) -> Wallet:
        return cls.start(ctx, ctx.workspace_id, ev.WalletOpened(wallet_id=ctx.workspace_id))

    # Balances ------------------------------------------------------------------------------

    @property
    def granted(self) -> int:
        return sum(g.remaining for g in self.grants.values())

    @property
    def held(self) -> int:
        return sum(h.amount for h in self.holds.values())

    @property
    def available(self) -> int:
        return self.granted - self.held

    def available_at(self, now: datetime) -> int:
        """What new holds may take: unreserved credits of grants not past their expiry (less what
        holds from before reservations still need)."""
        return sum(g.unreserved for g in self.grants.values() if not _is_dead(g, now)) - self._unallocated_held()

    def _unallocated_held(self) -> int:
        return sum(h.amount for h in self.holds.values() if h.reserved is None)

    # Grants and holds ----------------------------------------------------------------------

    def grant(self, ctx: Context, grant_id: str, amount: int, source: str, expires_at: datetime | None) -> None:
        self.record(ctx, ev.CreditsGranted(grant_id=grant_id, amount=amount, source=source, expires_at=expires_at))

    def check_available(self, ctx: Context, amount: int) -> None:
        """Refuse, changing nothing, when fewer than ``amount`` credits could be held now."""
        available = self.available_at(ctx.now)
        if available < amount:
            raise Rejected(Reason.insufficient_credits, f"{amount} credit(s) needed, {available} available")

    def place_hold(self, ctx: Context, hold_id: str, post_id: str, destination_id: str, amount: int = 1,
                   due_at: datetime | None = None) -> None:
        available = self.available_at(ctx.now)
        if available < amount:
            raise Rejected(Reason.insufficient_credits, f"{amount} credit(s) needed, {available} available")
        reserved, due = [], amount
        for grant_id, grant in sorted(self.grants.items(), key=_burn_order):
            if due == 0:
                break
            take = min(grant.unreserved, due) if not _is_dead(grant, ctx.now) else 0
            if take > 0:
                reserved.append(ev.Burn(grant_id=grant_id, amount=take))
                due -= take
        assert due == 0, "available credits are unreserved credits of live grants"
        expires_at = due_at + HOLD_GRACE if due_at is not None else None
        self.record(ctx, ev.HoldPlaced(hold_id=hold_id, post_id=post_id, destination_id=destination_id,
                                       amount=amount, expires_at=expires_at, reserved=reserved))
        self.notice_if_low(ctx)

    def consume(self, ctx: Context, hold_id: str) -> None:
        hold = self._pending_hold(hold_id)
        if hold.reserved is not None:
            burned = [ev.Burn(grant_id=g, amount=n) for g, n in hold.reserved.items()]
        else:  # a hold from before reservations: the unreserved credits, the grant that expires first first
            burned, due = [], hold.amount
            for grant_id, grant in sorted(self.grants.items(), key=_burn_order):
                take = min(grant.unreserved, due)
                if take > 0:
                    burned.append(ev.Burn(grant_id=grant_id, amount=take))
                    due -= take
            assert due == 0, "a pending hold is always covered by the remaining grants"
        self.record(ctx, ev.HoldConsumed(hold_id=hold_id, amount=hold.amount, burned=burned))

    def release(self, ctx: Context, hold_id: str, reason: str) -> None:
        hold = self._pending_hold(hold_id)
        self.record(ctx, ev.HoldReleased(hold_id=hold_id, amount=hold.amount, reason=reason))
        self._expire_unreserved(ctx)

    def _pending_hold(self, hold_id: str) -> Hold:
        hold = self.holds.get(hold_id)
        if hold is None:
            raise Rejected(
                Reason.hold_not_pending,
                f"no pending hold {hold_id} in this wallet: it was never placed, or it was already consumed or released",
            )
        return hold

    def _expire_unreserved(self, ctx: Context) -> None:
        """An expired grant keeps only what pending holds reserve: a hold that ended frees its share to expire."""
        for grant_id, grant in list(self.grants.items()):
            if grant.expired and grant.unreserved > 0:
                self.record(ctx, ev.GrantExpired(grant_id=grant_id, amount=grant.unreserved, reserved=grant.reserved,
                                                 reason="hold_ended"))

    # The credit clock ----------------------------------------------------------------------

    def expire_grant(self, ctx: Context, grant_id: str, reason: str = "expired") -> int:
        """Expire what pending holds do not need of a grant past its expiry; returns the amount.
        A grant used up (gone from the state) or already expired expires nothing."""
        grant = self.grants.get(grant_id)
        if grant is None or grant.expired:
            return 0
        if grant.expires_at is None or grant.expires_at > ctx.now:
            raise Rejected(Reason.not_due, f"grant {grant_id} expires at {grant.expires_at}, not yet")
        amount = grant.unreserved
        self.record(ctx, ev.GrantExpired(grant_id=grant_id, amount=amount, reserved=grant.reserved, reason=reason))
        self.notice_if_low(ctx)
        return amount

    def warn_expiring(self, ctx: Context, grant_id: str) -> bool:
        grant = self.grants.get(grant_id)
        if grant is None or grant.expired or grant.expires_at is None or grant.expires_at <= ctx.now:
            return False
        self.record(ctx, ev.CreditsExpiringSoon(grant_id=grant_id, amount=grant.remaining, expires_at=grant.expires_at))
        return True

    def expire_hold(self, ctx: Context, hold_id: str) -> bool:
        """Release a hold that outlived its post's due time plus the grace; False when it already ended."""
        hold = self.holds.get(hold_id)
        if hold is None:
            return False
        if hold.expires_at is None or hold.expires_at > ctx.now:
            raise Rejected(Reason.not_due, f"hold {hold_id} expires at {hold.expires_at}, not yet")
        self.release(ctx, hold_id, "hold_expired")
        return True

    def start_period(self, ctx: Context, period_start: datetime, timezone: str, renewal_day: int, tier: str,
                     limits: dict[str, int], renews_at: datetime | None = None) -> None:
        monthly = limits["monthly_credits"]
        self.record(ctx, ev.CreditPeriodStarted(
            period_start=period_start, renews_at=renews_at or next_renewal(period_start, timezone, renewal_day),
            timezone=timezone, renewal_day=renewal_day, tier=tier, monthly_credits=monthly,
            carryover_cap=limits["carryover_cap"], low_credit_threshold=tiers.low_credit_threshold(monthly),
        ))

    def grant_monthly(self, ctx: Context) -> None:
        period = self.period
        assert period is not None
        if period.monthly_credits > 0:
            grant_id = derived_id("monthly", ctx.workspace_id, period.period_start.isoformat())
            self.grant(ctx, grant_id, period.monthly_credits, "monthly", period.renews_at)

    def change_allowance(self, ctx: Context, tier: str, limits: dict[str, int]) -> None:
        """From the next renewal on: the tier's monthly credits and carryover cap; the low-credit
        threshold at once."""
        monthly = limits["monthly_credits"]
        self.record(ctx, ev.AllowanceChanged(tier=tier, monthly_credits=monthly, carryover_cap=limits["carryover_cap"],
                                             low_credit_threshold=tiers.low_credit_threshold(monthly)))

    def renew(self, ctx: Context, renews_at: datetime) -> None:
        """End the period that renews at ``renews_at``: carry unused monthly credits over up to
        the cap, expire the rest (what pending holds need stays reserved), start the next period
        and grant its monthly credits. Purchased and other grants are left alone."""
        period = self.period
        if period is None or period.renews_at != renews_at:
            raise Rejected(Reason.not_due, f"the period does not renew at {renews_at.isoformat()}")
        if ctx.now < renews_at:
            raise Rejected(Reason.not_due, f"the period renews at {renews_at.isoformat()}, not yet")
        monthly = sorted(((i, g) for i, g in self.grants.items() if g.source in MONTHLY_SOURCES and not g.expired),
                         key=_burn_order)
        carry = min(sum(g.unreserved for _, g in monthly), period.carryover_cap)
        next_renews_at = next_renewal(renews_at, period.timezone, period.renewal_day)
        if carry:
            drawn, left = [], carry
            for grant_id, grant in monthly:
                take = min(grant.unreserved, left)
                if take > 0:
                    drawn.append(ev.Burn(grant_id=grant_id, amount=take))
                    left -= take
            self.record(ctx, ev.CreditsCarriedOver(grant_id=derived_id("carryover", ctx.workspace_id, renews_at.isoformat()),
                                                   amount=carry, expires_at=next_renews_at, drawn=drawn))
        for grant_id, grant in monthly:
            if grant_id in self.grants:  # not carried over whole
                self.record(ctx, ev.GrantExpired(grant_id=grant_id, amount=grant.unreserved, reserved=grant.reserved,
                                                 reason="period_reset"))
        self.record(ctx, ev.CreditPeriodStarted(
            period_start=renews_at, renews_at=next_renews_at, timezone=period.timezone,
            renewal_day=period.renewal_day, tier=period.tier, monthly_credits=period.monthly_credits,
            carryover_cap=period.carryover_cap, low_credit_threshold=period.low_credit_threshold,
        ))
        self.grant_monthly(ctx)
        self.notice_if_low(ctx)

    def notice_if_low(self, ctx: Context) -> None:
        """Once per period: available credits fell to the low-credit threshold."""
        period = self.period
        if period is None or period.low_notified or period.monthly_credits <= 0:
            return
        available = self.available_at(ctx.now)
        if available <= period.low_credit_threshold:
            self.record(ctx, ev.CreditsLow(available=available, threshold=period.low_credit_threshold,
                                           period_start=period.period_start))

    def evolve(self, event: ev.EventData) -> None:
        match event:
            case ev.CreditsGranted():
                self.grants[event.grant_id] = Grant(event.amount, event.amount, event.source, event.expires_at)
            case ev.HoldPlaced():
                reserved = {b.grant_id: b.amount for b in event.reserved} if event.reserved else None
                self.holds[event.hold_id] = Hold(event.post_id, event.destination_id, event.amount, event.expires_at,
                                                 reserved)
                for burn in event.reserved:
                    self.grants[burn.grant_id].reserved += burn.amount
            case ev.HoldConsumed():
                hold = self.holds.pop(event.hold_id)
                self._unreserve(hold)
                for burn in event.burned:
                    self._take(burn.grant_id, burn.amount)
            case ev.HoldReleased():
                self._unreserve(self.holds.pop(event.hold_id))
            case ev.GrantExpired():
                grant = self.grants[event.grant_id]
                grant.expired = True
                self._take(event.grant_id, event.amount)
            case ev.CreditsCarriedOver():
                for burn in event.drawn:
                    self._take(burn.grant_id, burn.amount)
                self.grants[event.grant_id] = Grant(event.amount, event.amount, "carryover", event.expires_at)
            case ev.CreditPeriodStarted():
                self.period = Period(event.period_start, event.renews_at, event.timezone, event.renewal_day,
                                     event.tier, event.monthly_credits, event.carryover_cap,
                                     event.low_credit_threshold)
            case ev.AllowanceChanged():
                if self.period is not None:
                    self.period.tier, self.period.monthly_credits = event.tier, event.monthly_credits
                    self.period.carryover_cap = event.carryover_cap
                    self.period.low_credit_threshold = event.low_credit_threshold
            case ev.CreditsLow():
                if self.period is not None:
                    self.period.low_notified = True

    def _unreserve(self, hold: Hold) -> None:
        for grant_id, amount in (hold.reserved or {}).items():
            self.grants[grant_id].reserved -= amount

    def _take(self, grant_id: str, amount: int) -> None:
        grant = self.grants[grant_id]
        grant.remaining -= amount
        if grant.remaining <= 0:
            del self.grants[grant_id]


def _is_dead(grant: Grant, now: datetime) -> bool:
    return grant.expired or (grant.expires_at is not None and grant.expires_at <= now)


def _burn_order(item: tuple[str, Grant]) -> tuple[bool, datetime]:
    """The grant that expires first, first; grants that never expire last; ties in grant order."""
    grant = item[1]
    return (grant.expires_at is None, grant.expires_at or datetime.min.replace(tzinfo=UTC))
