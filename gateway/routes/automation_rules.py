"""Automation rules: create, list (with their stats), read one, replace, pause, resume, delete. The
rule runner (processors/automation/runner.py) fires them; docs/generation.md has the rule model."""

# No `from __future__ import annotations`: FastAPI must see the endpoint-local Annotated aliases.
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response

from domain.base import derived_id
from gateway import auth
from gateway.deps import IdempotencyKey, MinPosition, ResourceId, Shared, WorkspaceId, command_id_for
from gateway.problems import ProblemError, openapi_responses
from projections import automation_rules as rules
from schemas import api
from schemas import commands as cmd

_LIMIT_NOTE = ("Rules count against the tier's `automation_rules` (free 0, pro 5, business 20): 409 "
               "`automation_rule_limit_reached` with the limit.")


def router(shared: Shared) -> APIRouter:
    r = APIRouter(tags=["automation rules"])
    Caller = Annotated[auth.Principal, Depends(shared.principal)]
    base = "/v1/workspaces/{workspace_id}/automation-rules"

    def view(decision) -> api.AutomationRuleView:
        return api.AutomationRuleView(**decision.result, command_id=decision.command_id, position=decision.position)

    @r.post(base, status_code=201, response_model=api.AutomationRuleView, summary="Create an automation rule",
            responses=openapi_responses(401, 403, 404, 409, 422, 503),
            description="A schedule (`rrule`: an RFC 5545 RRULE line; `cron`: 5 fields), evaluated in the "
            "workspace's time zone, + what to generate + the destinations + the approval mode (`auto_schedule`: "
            "the post is scheduled, credits held; `draft_for_approval`: a draft, submitted for approval where the "
            "workspace requires it). 422 `invalid_schedule`, 422 `unknown_social_account`. " + _LIMIT_NOTE)
    def create(workspace_id: WorkspaceId, body: api.CreateAutomationRuleRequest, caller: Caller, response: Response,
               idempotency_key: IdempotencyKey = None):
        ws = shared.within(caller, workspace_id, auth.WORKSPACE_WRITE)
        command_id = command_id_for(ws, "create_automation_rule.v1", idempotency_key)
        rule_id = body.rule_id or derived_id("automation-rule", command_id)
        payload = cmd.CreateAutomationRule(rule_id=rule_id, **body.model_dump(exclude={"rule_id"}))
        decision = shared.decide(caller, ws, payload, idempotency_key, response, command_id=command_id)
        response.headers["Location"] = f"/v1/workspaces/{workspace_id}/automation-rules/{rule_id}"
        return view(decision)

    @r.get(base, response_model=api.AutomationRuleList, summary="The workspace's automation rules and their stats",
           responses=openapi_responses(401, 404, 422, 503),
           description="Oldest first: each rule's definition, status (and why it is paused), next run, last run, "
           "runs, posts, failures by reason, occurrences skipped.")
    def list_rules(workspace_id: WorkspaceId, caller: Caller, response: Response, min_position: MinPosition = None):
        with shared.read(shared.within(caller, workspace_id), min_position, response) as conn:
            return {"automation_rules": rules.read_rules(conn, workspace_id)}

    @r.get(base + "/{rule_id}", response_model=api.AutomationRuleStats, summary="One automation rule and its stats",
           responses=openapi_responses(401, 404, 422, 503))
    def get_rule(workspace_id: WorkspaceId, rule_id: ResourceId, caller: Caller, response: Response,
                 min_position: MinPosition = None):
        with shared.read(shared.within(caller, workspace_id), min_position, response) as conn:
            found = rules.read_rule(conn, workspace_id, rule_id)
        if found is None:
            raise ProblemError(404, "unknown_automation_rule", f"no automation rule {rule_id} in this workspace")
        return found

    @r.put(base + "/{rule_id}", response_model=api.AutomationRuleView, summary="Replace an automation rule",
           responses=openapi_responses(401, 403, 404, 409, 422, 503),
           description="The whole definition; occurrences count from now on (none before the change fires).")
    def update(workspace_id: WorkspaceId, rule_id: ResourceId, body: api.UpdateAutomationRuleRequest, caller: Caller,
               response: Response, idempotency_key: IdempotencyKey = None):
        ws = shared.within(caller, workspace_id, auth.WORKSPACE_WRITE)
        payload = cmd.UpdateAutomationRule(rule_id=rule_id, **body.model_dump())
        return view(shared.decide(caller, ws, payload, idempotency_key, response))

    def status_change(workspace_id: str, caller: auth.Principal, response: Response, idempotency_key: str | None,
                      payload: cmd.Payload) -> api.AutomationRuleStatus:
        ws = shared.within(caller, workspace_id, auth.WORKSPACE_WRITE)
        decision = shared.decide(caller, ws, payload, idempotency_key, response)
        return api.AutomationRuleStatus(rule_id=decision.result["rule_id"], status=decision.result["status"],
                                        command_id=decision.command_id, position=decision.position)

    @r.post(base + "/{rule_id}/pause", response_model=api.AutomationRuleStatus, summary="Pause an automation rule",
            responses=openapi_responses(401, 403, 404, 409, 422, 503),
            description="Its occurrences while paused are not fired, not even after a resume. 409 `rule_not_active` "
            "when paused already.")
    def pause(workspace_id: WorkspaceId, rule_id: ResourceId, caller: Caller, response: Response,
              idempotency_key: IdempotencyKey = None):
        return status_change(workspace_id, caller, response, idempotency_key, cmd.PauseAutomationRule(rule_id=rule_id))

    @r.post(base + "/{rule_id}/resume", response_model=api.AutomationRuleStatus, summary="Resume an automation rule",
            responses=openapi_responses(401, 403, 404, 409, 422, 503),
            description="It fires from its next occurrence after now. 409 `automation_rule_limit_reached` while the "
            "workspace's active rules are at the tier's limit (e.g. after a downgrade), 409 `rule_not_paused`.")
    def resume(workspace_id: WorkspaceId, rule_id: ResourceId, caller: Caller, response: Response,
               idempotency_key: IdempotencyKey = None):
        return status_change(workspace_id, caller, response, idempotency_key, cmd.ResumeAutomationRule(rule_id=rule_id))

    @r.delete(base + "/{rule_id}", response_model=api.AutomationRuleStatus, summary="Delete an automation rule",
              responses=openapi_responses(401, 403, 404, 422, 503),
              description="It fires no more and no longer counts against the limit; posts it made stay.")
    def delete(workspace_id: WorkspaceId, rule_id: ResourceId, caller: Caller, response: Response,
               idempotency_key: IdempotencyKey = None):
        return status_change(workspace_id, caller, response, idempotency_key, cmd.DeleteAutomationRule(rule_id=rule_id))

    @r.get("/v1/admin/automation-rules", summary="Automation rules over every workspace (admin)",
           responses=openapi_responses(401, 403, 422, 503),
           description="Per status: rules, workspaces, runs, posts, failures; then the rules, soonest next run "
           "first (`status`: active or paused).")
    def overview(caller: Caller, status: Literal["active", "paused"] | None = None,
                 limit: Annotated[int, Query(ge=1, le=rules.MAX_LIMIT)] = 100):
        if not caller.is_admin:
            raise ProblemError(403, "forbidden", "only the admin key sees rules over every workspace")
        with shared.deps.pool.connection() as conn:
            return rules.read_overview(conn, status, limit)

    return r
