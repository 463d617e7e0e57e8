"""Deciding tier commands: defining a tier (admin), changing a workspace's tier, its limit
overrides, and marking its notices read.

A change to a higher tier (more monthly credits, then a longer queue) takes effect at once and
tops the current period up with the difference in monthly credits; a change to a lower one is
scheduled for the next renewal. Posts already queued stay queued whatever the new limits: the
limits refuse new work (schedules, connections) until the workspace is back under them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from schemas import commands as cmd

from domain.automation.handlers import pause_rules_over_limit
from domain.base import Context, derived_id
from domain.registry import Outcome, handles
from domain.rejections import Reason, Rejected
from domain.workspace.tier_catalogue import CATALOGUE_ID, TierCatalogue, TierDefinition, shipped

if TYPE_CHECKING:
    from domain.application import HeraldApplication



def tier_definition(app: HeraldApplication, name: str) -> TierDefinition:
    catalogue = app.find(TierCatalogue, CATALOGUE_ID)
    found = catalogue.get(name) if catalogue is not None else shipped(name)
    if found is None:
        raise Rejected(Reason.unknown_tier, f"no tier {name!r}: define it first")
    return found


@handles(cmd.DefineTier)
def define_tier(app: HeraldApplication, ctx: Context, p: cmd.DefineTier) -> Outcome:
    catalogue = app.find(TierCatalogue, CATALOGUE_ID)
    limits = dict(p.limits)
    if catalogue is None:
        catalogue, version = TierCatalogue.create(ctx, p.tier, limits), 1
    else:
        version = catalogue.define(ctx, p.tier, limits)
    return [catalogue], {"tier": p.tier, "version": version, "limits": limits}


@handles(cmd.ChangeTier)
def change_tier(app: HeraldApplication, ctx: Context, p: cmd.ChangeTier) -> Outcome:
    workspace, wallet = app.workspace(ctx), app.wallet(ctx)
    target = tier_definition(app, p.tier)
    if p.tier == workspace.tier and not workspace.pending_tier:
        raise Rejected(Reason.invalid_payload, f"the workspace is on the {p.tier} tier already")
    current = TierDefinition(workspace.tier, workspace.tier_version, workspace.limits)
    period = wallet.period
    if target.rank >= current.rank or period is None:
        old_monthly = workspace.limit("monthly_credits")
        reason = "upgrade" if target.rank > current.rank else "same_rank"
        workspace.change_tier(ctx, p.tier, target.version, target.limits, reason)
        wallet.change_allowance(ctx, p.tier, workspace.limits)
        top_up = workspace.limit("monthly_credits") - old_monthly
        if top_up > 0 and period is not None:
            wallet.grant(ctx, derived_id("upgrade", ctx.workspace_id, ctx.command_id), top_up, "monthly",
                         period.renews_at)
        paused = pause_rules_over_limit(app, ctx, workspace)  # a lower-ranked tier of the same credits
        return [workspace, wallet, *paused], {"tier": p.tier, "effective_at": ctx.now.isoformat(),
                                              "monthly_top_up": max(0, top_up),
                                              "rules_paused": [r.rule_id for r in paused]}
    workspace.schedule_tier_change(ctx, p.tier, period.renews_at)
    return [workspace], {"tier": p.tier, "effective_at": period.renews_at.isoformat(), "monthly_top_up": 0}


@handles(cmd.SetLimitOverrides)
def set_limit_overrides(app: HeraldApplication, ctx: Context, p: cmd.SetLimitOverrides) -> Outcome:
    workspace, wallet = app.workspace(ctx), app.wallet(ctx)
    workspace.override_limits(ctx, dict(p.limit_overrides))
    wallet.change_allowance(ctx, workspace.tier, workspace.limits)
    paused = pause_rules_over_limit(app, ctx, workspace)
    return [workspace, wallet, *paused], {"limit_overrides": dict(p.limit_overrides), "limits": workspace.limits,
                                          "rules_paused": [r.rule_id for r in paused]}


@handles(cmd.MarkNoticesRead)
def mark_notices_read(app: HeraldApplication, ctx: Context, p: cmd.MarkNoticesRead) -> Outcome:
    workspace = app.workspace(ctx)
    workspace.mark_notices_read(ctx, list(p.notice_ids))
    return [workspace], {"notice_ids": list(p.notice_ids)}
