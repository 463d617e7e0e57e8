"""Wallet: a workspace's credit ledger of live grants, pending holds and its credit period.

Invariants: ``available = Σ remaining grants − Σ pending holds`` never drops below zero, every
hold ends exactly once (consumed or released), and credits of an expired grant are never
available again: an expiry expires what pending holds do not need, and what they need stays
reserved for them (``expired`` grants, used first when a hold is consumed) until they end; a
released hold's share of an expired grant expires then (docs/credits.md).

A grant whose ``expires_at`` passed counts as expired for new holds even before the credit
clock records its expiry, so a late clock never lets a dead credit be used.

The state stays bounded however long the workspace lives: a hold leaves it when it ends and
a grant when it is used up or expired, so deciding costs the same after ten posts or ten
thousand. Grant ids stay unique for good through a ``GrantClaim`` per grant id, not through this state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

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


@dataclass
class Hold:
    post_id: str
    destination_id: str
    amount: int
    expires_at: datetime | None = None


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

    def dead(self, now: datetime) -> int:
        """Credits of grants past their expiry (recorded or not yet)."""
        return sum(g.remaining for g in self.grants.values() if _is_dead(g, now))

    def available_at(self, now: datetime) -> int:
        """What a new hold may take: dead credits only ever back holds already pending."""
        return self.granted - max(self.held, self.dead(now))

    def reserved_by_expired(self) -> int:
        return sum(g.remaining for g in self.grants.values() if g.expired)

    # Grants and holds ----------------------------------------------------------------------

    def grant(self, ctx: Context, grant_id: str, amount: int, source: str, expires_at: datetime | None) -> None:
        self.record(ctx, ev.CreditsGranted(grant_id=grant_id, amount=amount, source=source, expires_at=expires_at))

    def place_hold(self, ctx: Context, hold_id: str, post_id: str, destination_id: str, amount: int = 1,
                   due_at: datetime | None = None) -> None:
        available = self.available_at(ctx.now)
        if available < amount:
            raise Rejected(Reason.insufficient_credits, f"{amount} credit(s) needed, {available} available")
        expires_at = due_at + HOLD_GRACE if due_at is not None else None
        self.record(ctx, ev.HoldPlaced(hold_id=hold_id, post_id=post_id, destination_id=destination_id,
                                       amount=amount, expires_at=expires_at))
        self.notice_if_low(ctx)

    def consume(self, ctx: Context, hold_id: str) -> None:
        hold = self._pending_hold(hold_id)
        burned, due = [], hold.amount
        for grant_id, grant in sorted(self.grants.items(), key=_burn_order):
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
        """Expired grants keep only what pending holds need; a hold that ended frees its share to expire."""
        excess = self.reserved_by_expired() - self.held
        for grant_id, grant in sorted(self.grants.items(), key=_burn_order):
            if excess <= 0:
                break
            if grant.expired:
                amount = min(grant.remaining, excess)
                self.record(ctx, ev.GrantExpired(grant_id=grant_id, amount=amount, reserved=grant.remaining - amount,
                                                 reason="hold_ended"))
                excess -= amount

    # The credit clock ----------------------------------------------------------------------

    def expire_grant(self, ctx: Context, grant_id: str, reason: str = "expired") -> int:
        """Expire what pending holds do not need of a grant past its expiry; returns the amount.
        A grant used up (gone from the state) or already expired expires nothing."""
        grant = self.grants.get(grant_id)
        if grant is None or grant.expired:
            return 0
        if grant.expires_at is None or grant.expires_at > ctx.now:
            raise Rejected(Reason.not_due, f"grant {grant_id} expires at {grant.expires_at}, not yet")
        amount = min(grant.remaining, max(0, self.dead(ctx.now) - self.held))
        self.record(ctx, ev.GrantExpired(grant_id=grant_id, amount=amount, reserved=grant.remaining - amount,
                                         reason=reason))
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
                     limits: dict[str, int]) -> None:
        monthly = limits["monthly_credits"]
        self.record(ctx, ev.CreditPeriodStarted(
            period_start=period_start, renews_at=next_renewal(period_start, timezone, renewal_day),
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
        unreserved = min(sum(g.remaining for _, g in monthly), max(0, self.dead(ctx.now) - self.held))
        carry = min(unreserved, period.carryover_cap)
        to_expire = unreserved - carry
        next_renews_at = next_renewal(renews_at, period.timezone, period.renewal_day)
        if carry:
            drawn, left = [], carry
            for grant_id, grant in monthly:
                take = min(grant.remaining, left)
                if take:
                    drawn.append(ev.Burn(grant_id=grant_id, amount=take))
                    left -= take
            self.record(ctx, ev.CreditsCarriedOver(grant_id=derived_id("carryover", ctx.workspace_id, renews_at.isoformat()),
                                                   amount=carry, expires_at=next_renews_at, drawn=drawn))
        for grant_id, grant in monthly:
            if grant_id not in self.grants:
                continue  # carried over whole
            amount = min(grant.remaining, to_expire)
            to_expire -= amount
            self.record(ctx, ev.GrantExpired(grant_id=grant_id, amount=amount, reserved=grant.remaining - amount,
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
                self.holds[event.hold_id] = Hold(event.post_id, event.destination_id, event.amount, event.expires_at)
            case ev.HoldConsumed():
                del self.holds[event.hold_id]
                for burn in event.burned:
                    self._take(burn.grant_id, burn.amount)
            case ev.HoldReleased():
                del self.holds[event.hold_id]
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

    def _take(self, grant_id: str, amount: int) -> None:
        grant = self.grants[grant_id]
        grant.remaining -= amount
        if grant.remaining <= 0:
            del self.grants[grant_id]


def _is_dead(grant: Grant, now: datetime) -> bool:
    return grant.expired or (grant.expires_at is not None and grant.expires_at <= now)


def _burn_order(item: tuple[str, Grant]) -> tuple[bool, bool, datetime | None]:
    """Expired grants' reserved credits first, then the grant that expires first (no expiry last)."""
    grant = item[1]
    return (not grant.expired, grant.expires_at is None, grant.expires_at)
