"""Deciding automation-rule commands: define, change, pause, resume, delete; and the rule runner's
two decisions around each run — claiming an occurrence (`fire_rule_occurrence`, which also counts
and requests the generation) and recording how the run ended (`record_rule_run`). Between them the
runner calls the provider and schedules the post through the normal commands
(processors/automation/runner.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from schemas import commands as cmd
from schemas import events as ev

from domain.account import SocialAccount
from domain.automation import schedule as schedules
from domain.automation.aggregate import PAUSED_BY_USER, PAUSED_TIER_LIMIT, AutomationRule, Status
from domain.base import Context, HeraldAggregate
from domain.generation.handlers import request_generation
from domain.registry import Outcome, handles
from domain.rejections import Reason, Rejected, TierLimitReached
from domain.workspace.aggregate import Workspace

if TYPE_CHECKING:
    from domain.application import HeraldApplication


def _definition(app: HeraldApplication, ctx: Context, workspace: Workspace,
                p: cmd.AutomationRuleFields) -> ev.RuleDefinition:
    platforms: list[str] = []
    of: dict[str, str] = {}
    for account_id in p.destinations:
        account = app.find(SocialAccount, account_id) if account_id in workspace.accounts else None
        if account is None:
            raise Rejected(Reason.unknown_social_account, f"no social account {account_id} in this workspace")
        of[account_id] = account.platform
        if account.platform not in platforms:
            platforms.append(account.platform)
    anchor = schedules.wall_anchor(ctx.now, workspace.timezone)
    try:
        schedules.parse(str(p.schedule_kind), p.schedule, anchor, workspace.timezone)
    except schedules.InvalidSchedule as error:
        raise Rejected(Reason.invalid_schedule, str(error)) from None
    return ev.RuleDefinition(
        name=p.name, schedule_kind=str(p.schedule_kind), schedule=p.schedule, anchor=anchor.isoformat(),
        timezone=workspace.timezone, topic=p.topic, tone=p.tone, language=p.language, context=p.context,
        platforms=platforms, destinations=list(p.destinations), destination_platforms=of, approval_mode=str(p.approval_mode),
        catch_up_window_s=p.catch_up_window_s)


def _view(rule: AutomationRule) -> dict:
    return {"rule_id": rule.rule_id, "status": str(rule.status), **rule.definition,
            "next_run_at": rule.next_run_at.isoformat() if rule.next_run_at else None}


def _rule(app: HeraldApplication, ctx: Context, rule_id: str) -> AutomationRule:
    rule = app.find_in_workspace(AutomationRule, AutomationRule.key(ctx.workspace_id, rule_id), ctx.workspace_id)
    if rule is None or rule.status == Status.deleted:
        raise Rejected(Reason.unknown_automation_rule, f"no automation rule {rule_id} in this workspace")
    return rule


@handles(cmd.CreateAutomationRule)
def create_automation_rule(app: HeraldApplication, ctx: Context, p: cmd.CreateAutomationRule) -> Outcome:
    workspace = app.workspace(ctx)
    if app.find(AutomationRule, AutomationRule.key(ctx.workspace_id, p.rule_id)) is not None:
        raise Rejected(Reason.automation_rule_exists, f"automation rule {p.rule_id} already exists")
    definition = _definition(app, ctx, workspace, p)
    workspace.add_automation_rule(ctx, p.rule_id)
    rule = AutomationRule.create(ctx, p.rule_id, definition)
    return [workspace, rule], _view(rule)


@handles(cmd.UpdateAutomationRule)
def update_automation_rule(app: HeraldApplication, ctx: Context, p: cmd.UpdateAutomationRule) -> Outcome:
    workspace = app.workspace(ctx)
    rule = _rule(app, ctx, p.rule_id)
    rule.update(ctx, _definition(app, ctx, workspace, p))
    return [rule], _view(rule)


@handles(cmd.PauseAutomationRule)
def pause_automation_rule(app: HeraldApplication, ctx: Context, p: cmd.PauseAutomationRule) -> Outcome:
    workspace = app.workspace(ctx)
    rule = _rule(app, ctx, p.rule_id)
    rule.pause(ctx, PAUSED_BY_USER)
    workspace.set_rule_active(ctx, p.rule_id, False)
    return [workspace, rule], _view(rule)


@handles(cmd.ResumeAutomationRule)
def resume_automation_rule(app: HeraldApplication, ctx: Context, p: cmd.ResumeAutomationRule) -> Outcome:
    workspace = app.workspace(ctx)
    rule = _rule(app, ctx, p.rule_id)
    rule.resume(ctx)
    workspace.set_rule_active(ctx, p.rule_id, True)  # refused while the active rules are at the tier's limit
    return [workspace, rule], _view(rule)


@handles(cmd.DeleteAutomationRule)
def delete_automation_rule(app: HeraldApplication, ctx: Context, p: cmd.DeleteAutomationRule) -> Outcome:
    workspace = app.workspace(ctx)
    rule = _rule(app, ctx, p.rule_id)
    rule.delete(ctx)
    workspace.remove_automation_rule(ctx, p.rule_id)
    return [workspace, rule], {"rule_id": p.rule_id, "status": "deleted"}


def pause_rules_over_limit(app: HeraldApplication, ctx: Context, workspace: Workspace) -> list[HeraldAggregate]:
    """After the workspace's limits changed (a downgrade, an override): the active rules beyond the
    new automation-rule limit are paused, newest first; none is deleted. For the tier handlers."""
    changed: list[HeraldAggregate] = []
    over = workspace.active_rules_over_limit()
    for rule_id in over:
        rule = app.find(AutomationRule, AutomationRule.key(ctx.workspace_id, rule_id))
        if rule is not None and rule.status == Status.active:
            rule.pause(ctx, PAUSED_TIER_LIMIT, f"the {workspace.tier} tier allows "
                       f"{workspace.limit('automation_rules')} active automation rule(s)")
            changed.append(rule)
        workspace.set_rule_active(ctx, rule_id, False)
    return changed


@handles(cmd.FireRuleOccurrence)
def fire_rule_occurrence(app: HeraldApplication, ctx: Context, p: cmd.FireRuleOccurrence) -> Outcome:
    """Claims the occurrence (never fired again). Missed older occurrences are counted in the fired
    event; if even this one is older than the rule's catch-up window, all of them are recorded as
    skipped and nothing runs. A fired occurrence counts and requests its generation in the same
    decision; over the day's generation limit the run fails at once, recorded with that reason."""
    workspace = app.workspace(ctx)
    rule = _rule(app, ctx, p.rule_id)
    first, due = rule.check_fireable(ctx, p.occurrence_at)
    if ctx.now - p.occurrence_at > rule.catch_up_window():
        rule.skip(ctx, first, p.occurrence_at, due)
        return [rule], {"rule_id": rule.rule_id, "run": "skipped", "skipped": due}
    fired = rule.fire(ctx, p.occurrence_at, skipped_before=due - 1)
    d = rule.definition
    request = cmd.GenerateContent(generation_id=fired.generation_id, topic=d["topic"], platforms=d["platforms"],
                                  tone=d["tone"], language=d["language"], context=d["context"])
    result = {"rule_id": rule.rule_id, "occurrence_at": p.occurrence_at.isoformat(), "post_id": fired.post_id,
              "generation_id": fired.generation_id, "skipped_before": fired.skipped_before,
              "definition": dict(d), "requires_approval": bool(workspace.requires_approval)}
    try:
        generation, requested = request_generation(app, ctx, workspace, request)
    except TierLimitReached as limit:
        rule.end_run(ctx, p.occurrence_at, post_id=None, failure=str(limit.reason), detail=limit.detail)
        return [rule], {**result, "run": "failed", "reason": str(limit.reason)}
    return [workspace, rule, generation], {**result, "run": "pending", "brand_voice": requested["brand_voice"]}


@handles(cmd.RecordRuleRun)
def record_rule_run(app: HeraldApplication, ctx: Context, p: cmd.RecordRuleRun) -> Outcome:
    rule = app.find_in_workspace(AutomationRule, AutomationRule.key(ctx.workspace_id, p.rule_id), ctx.workspace_id)
    if rule is None:
        raise Rejected(Reason.unknown_automation_rule, f"no automation rule {p.rule_id} in this workspace")
    rule.end_run(ctx, p.occurrence_at, post_id=p.post_id, failure=p.failure, detail=p.detail)
    return [rule], {"rule_id": p.rule_id, "occurrence_at": p.occurrence_at.isoformat(),
                    "run": "failed" if p.failure else "succeeded", "post_id": p.post_id, "failure": p.failure}
