"""Deciding the credit clock's commands: grant expiry, the expiring-soon warning, the monthly
renewal (with a scheduled downgrade or a new version of the tier applied first), hold expiry.

Each is safe to repeat and to send late: what already happened answers as a no-op, what is not
due yet is rejected ``not_due``, and the clock's command ids come from the due item, so a
restarted clock repeats a command rather than adding a second effect."""

from __future__ import annotations

from typing import TYPE_CHECKING

from schemas import commands as cmd

from domain.automation.handlers import pause_rules_over_limit
from domain.base import Context
from domain.registry import Outcome, handles
from domain.wallet.period import local_day_of_month
from domain.workspace.tier_catalogue import CATALOGUE_ID, TierCatalogue, shipped

if TYPE_CHECKING:
    from domain.application import HeraldApplication


@handles(cmd.ExpireGrant)
def expire_grant(app: HeraldApplication, ctx: Context, p: cmd.ExpireGrant) -> Outcome:
    wallet = app.wallet(ctx)
    expired = wallet.expire_grant(ctx, p.grant_id)
    return [wallet], {"grant_id": p.grant_id, "expired": expired, "available": wallet.available_at(ctx.now)}


@handles(cmd.WarnExpiringCredits)
def warn_expiring_credits(app: HeraldApplication, ctx: Context, p: cmd.WarnExpiringCredits) -> Outcome:
    wallet = app.wallet(ctx)
    warned = wallet.warn_expiring(ctx, p.grant_id)
    return [wallet], {"grant_id": p.grant_id, "warned": warned}


@handles(cmd.ExpireHold)
def expire_hold(app: HeraldApplication, ctx: Context, p: cmd.ExpireHold) -> Outcome:
    wallet = app.wallet(ctx)
    released = wallet.expire_hold(ctx, p.hold_id)
    return [wallet], {"hold_id": p.hold_id, "released": released, "available": wallet.available_at(ctx.now)}


@handles(cmd.RenewCreditPeriod)
def renew_credit_period(app: HeraldApplication, ctx: Context, p: cmd.RenewCreditPeriod) -> Outcome:
    workspace, wallet = app.workspace(ctx), app.wallet(ctx)
    catalogue = app.find(TierCatalogue, CATALOGUE_ID)
    pending = workspace.pending_tier
    target = pending["tier"] if pending and pending["effective_at"] <= p.renews_at else workspace.tier
    definition = (catalogue.get(target) if catalogue else shipped(target))
    if definition is not None and (target != workspace.tier or definition.version != workspace.tier_version):
        reason = "downgrade" if target != workspace.tier else "new_version"
        workspace.change_tier(ctx, target, definition.version, definition.limits, reason)
        wallet.change_allowance(ctx, target, workspace.limits)
    paused = pause_rules_over_limit(app, ctx, workspace)  # a downgrade takes effect here
    wallet.renew(ctx, p.renews_at)
    period = wallet.period
    assert period is not None
    return [workspace, wallet, *paused], {"rules_paused": [r.rule_id for r in paused], "period_start": period.period_start.isoformat(),
                                 "renews_at": period.renews_at.isoformat(), "tier": workspace.tier,
                                 "available": wallet.available_at(ctx.now)}


@handles(cmd.StartCreditPeriod)
def start_credit_period(app: HeraldApplication, ctx: Context, p: cmd.StartCreditPeriod) -> Outcome:
    workspace, wallet = app.workspace(ctx), app.wallet(ctx)
    if wallet.period is None:
        wallet.start_period(ctx, ctx.now, workspace.timezone, local_day_of_month(ctx.now, workspace.timezone),
                            workspace.tier, workspace.limits)
    period = wallet.period
    assert period is not None
    return [wallet], {"period_start": period.period_start.isoformat(), "renews_at": period.renews_at.isoformat()}
