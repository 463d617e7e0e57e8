"""Deciding workspace commands."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from schemas import commands as cmd

from domain.base import Context
from domain.registry import Outcome, handles
from domain.rejections import Reason, Rejected
from domain.tiers import LIMIT_NAMES
from domain.wallet import Wallet
from domain.wallet.period import local_day_of_month
from domain.workspace.aggregate import Workspace
from domain.workspace.tier_handlers import tier_definition

FIRST_PERIOD_AT_MOST = timedelta(days=31)

if TYPE_CHECKING:
    from domain.application import HeraldApplication


@handles(cmd.OpenWorkspace)
def open_workspace(app: HeraldApplication, ctx: Context, p: cmd.OpenWorkspace) -> Outcome:
    if app.find(Workspace, ctx.workspace_id) is not None:
        raise Rejected(Reason.workspace_exists, f"workspace {ctx.workspace_id} is already open")
    definition = tier_definition(app, p.tier)
    workspace = Workspace.open(ctx, p.name, p.tier, p.timezone, dict(p.limit_overrides),
                               base_limits=definition.limits, tier_version=definition.version)
    wallet = Wallet.open(ctx)
    first = p.first_renewal_at
    if first is not None and not ctx.now < first <= ctx.now + FIRST_PERIOD_AT_MOST:
        raise Rejected(Reason.invalid_payload, f"first_renewal_at must be after now and within 31 days, "
                       f"not {first.isoformat()}")
    renewal_day = local_day_of_month(first or ctx.now, p.timezone)
    wallet.start_period(ctx, ctx.now, p.timezone, renewal_day, p.tier, workspace.limits, renews_at=first)
    if p.start_with_monthly_credits:
        wallet.grant_monthly(ctx)
    result = {
        "workspace_id": ctx.workspace_id, "name": workspace.name, "tier": workspace.tier,
        "timezone": workspace.timezone, "limit_overrides": dict(workspace.limit_overrides),
        "limits": {name: workspace.limit(name) for name in LIMIT_NAMES},
    }
    return [workspace, wallet], result


@handles(cmd.SetPublishingPolicy)
def set_publishing_policy(app: HeraldApplication, ctx: Context, p: cmd.SetPublishingPolicy) -> Outcome:
    workspace = app.workspace(ctx)
    window_s = p.missed_window_minutes * 60.0 if p.missed_window_minutes is not None else None
    workspace.set_publishing_policy(ctx, window_s)
    effective = window_s if window_s is not None else app.policy.missed_window_s
    return [workspace], {"missed_window_minutes": p.missed_window_minutes, "effective_missed_window_s": effective}


@handles(cmd.SetContentPolicy)
def set_content_policy(app: HeraldApplication, ctx: Context, p: cmd.SetContentPolicy) -> Outcome:
    workspace = app.workspace(ctx)
    workspace.set_content_policy(ctx, p.requires_approval)
    return [workspace], {"requires_approval": workspace.requires_approval}
