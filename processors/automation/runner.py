"""The rule runner: each due occurrence of an automation rule fired exactly once, then generated and
posted through the normal commands.

A run is a chain of decisions whose command ids are derived from (rule, occurrence), so running the
chain again — after a crash anywhere in it, or by a second runner — repeats nothing:

1. `fire_rule_occurrence` claims the occurrence (the rule refuses any at or before its last) and, in
   the same decision, counts and requests the generation;
2. the provider is called — skipped when the generation's outcome was already recorded — and
   `record_generation_outcome` records the answer or the failure;
3. `schedule_post` (auto_schedule: credits held, tier limits applied) or `create_draft` (+
   `submit_post` where the workspace requires approval) with the post id the fire decided;
4. `record_rule_run` ends the run: the post, or why there is none (the generation's failure, the
   post's rejection).

A crash before 4 leaves the run pending on the rule; the runner finishes pending runs before it
fires anything new (the rule refuses a new occurrence while one is pending). Which occurrence fires
after downtime is the rule's catch-up policy (domain/automation/handlers.py): the latest due one,
the older ones counted as missed; if even the latest is older than the window, all are skipped.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from domain.application import Decision, HeraldApplication
from domain.automation.schedule import Schedule
from domain.base import derived_id
from processors.generation import prompt
from processors.generation.calls import ConfiguredProvider, outcome_of, voice_of
from processors.generation.output import posted_text
from schemas import commands as cmd

log = logging.getLogger(__name__)

ISSUED_BY = "rule-runner"


@dataclass(frozen=True)
class RuleDue:
    """What the runner knows of a rule (from the automation_rules read model)."""

    workspace_id: str
    rule_id: str
    schedule: Schedule
    cursor: datetime | None
    next_run_at: datetime | None
    pending_occurrence: datetime | None


def occurrence_to_fire(rule: RuleDue, now: datetime) -> datetime | None:
    """The latest occurrence due by ``now`` that the rule has not passed yet; None when none is due."""
    if rule.next_run_at is None or rule.next_run_at > now:
        return None
    start = rule.cursor if rule.cursor is not None else rule.next_run_at - timedelta(microseconds=1)
    # Looked for in a growing span back from now, so a long downtime is not walked occurrence by
    # occurrence (an every-minute rule down for a month).
    span = timedelta(hours=1)
    while True:
        since = max(start, now - span)
        latest = None
        for at in rule.schedule.after(since):
            if at > now:
                break
            latest = at
        if latest is not None or since == start:
            return latest
        span *= 8


def command_id(step: str, workspace_id: str, rule_id: str, occurrence_at: datetime) -> str:
    return f"rule-{step}-{derived_id('rule-run', step, workspace_id, rule_id, occurrence_at.isoformat())}"


class RuleRunner:
    def __init__(self, app: HeraldApplication, generator: ConfiguredProvider,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.app, self.generator, self.clock = app, generator, clock

    def _decide(self, workspace_id: str, payload: cmd.Payload, cid: str, correlation: str) -> Decision:
        return self.app.handle(cmd.CommandEnvelope.wrap(payload, command_id=cid, workspace_id=workspace_id,
                                                        issued_by=ISSUED_BY, issued_at=self.clock(),
                                                        correlation_id=correlation))

    def run(self, rule: RuleDue) -> str:
        """Finishes the rule's pending run, then fires its due occurrence; what it did, for the logs."""
        finished = ""
        if rule.pending_occurrence is not None:
            finished = f"finished {self.finish(rule.workspace_id, rule.rule_id, rule.pending_occurrence)}; "
            rule = dataclasses.replace(rule, cursor=rule.pending_occurrence, pending_occurrence=None)
        occurrence = occurrence_to_fire(rule, self.clock())
        if occurrence is None:
            return finished + "not_due" if finished else "not_due"
        return finished + self.fire(rule.workspace_id, rule.rule_id, occurrence)

    def fire(self, workspace_id: str, rule_id: str, occurrence_at: datetime) -> str:
        fire_id = command_id("fire", workspace_id, rule_id, occurrence_at)
        fired = self._decide(workspace_id, cmd.FireRuleOccurrence(rule_id=rule_id, occurrence_at=occurrence_at),
                             fire_id, fire_id)
        if not fired.accepted:
            return f"refused:{fired.reason_code}"
        if fired.result["run"] == "failed":
            return f"failed:{fired.result['reason']}"
        if fired.result["run"] != "pending":
            return str(fired.result["run"])
        return self._complete(workspace_id, rule_id, occurrence_at, fired)

    def finish(self, workspace_id: str, rule_id: str, occurrence_at: datetime) -> str:
        """A pending run: its fire decision is on record (the command record of its id)."""
        fired = self.app.decided(workspace_id, command_id("fire", workspace_id, rule_id, occurrence_at))
        if fired is None or not fired.accepted or fired.result.get("run") != "pending":
            return "no_pending_run"
        return self._complete(workspace_id, rule_id, occurrence_at, fired)

    def _complete(self, workspace_id: str, rule_id: str, occurrence_at: datetime, fired: Decision) -> str:
        r = fired.result
        d = r["definition"]
        correlation = fired.command_id
        generation_id = r["generation_id"]
        record_id = derived_id("record_generation_outcome", workspace_id, generation_id)
        generated = self.app.decided(workspace_id, record_id)
        if generated is None:  # not recorded yet: call the provider (again, if a crash cut the first call)
            request = prompt.GenerationRequest(
                topic=d["topic"], platforms=list(d["platforms"]), tone=d["tone"], language=d["language"],
                context=d["context"], media_description="", voice=voice_of(r.get("brand_voice")))
            generated = self._decide(workspace_id, outcome_of(self.generator, generation_id, request), record_id,
                                     correlation)
        g = generated.result
        if not generated.accepted or g.get("status") != "succeeded":
            failure = g.get("reason") or generated.reason_code or "generation_failed"
            return self._end(workspace_id, rule_id, occurrence_at, correlation, failure=f"generation_{failure}",
                             detail=g.get("detail") or generated.detail)
        texts = {account: posted_text(g["captions"][platform], g["hashtags"])
                 for account, platform in d["destination_platforms"].items()}
        first = d["destinations"][0]
        overrides = {a: t for a, t in texts.items() if t != texts[first]}
        post_id = r["post_id"]
        if d["approval_mode"] == str(cmd.ApprovalMode.draft_for_approval):
            posted = self._decide(workspace_id, cmd.CreateDraft(
                post_id=post_id, text=texts[first], destinations=list(d["destinations"]), destination_text=overrides),
                command_id("draft", workspace_id, rule_id, occurrence_at), correlation)
            if posted.accepted and r.get("requires_approval"):
                posted = self._decide(workspace_id, cmd.SubmitPost(post_id=post_id, comment="automation rule"),
                                      command_id("submit", workspace_id, rule_id, occurrence_at), correlation)
        else:
            posted = self._decide(workspace_id, cmd.SchedulePost(
                post_id=post_id, text=texts[first], destinations=list(d["destinations"]), destination_text=overrides),
                command_id("schedule", workspace_id, rule_id, occurrence_at), correlation)
        if not posted.accepted:
            return self._end(workspace_id, rule_id, occurrence_at, correlation, failure=str(posted.reason_code),
                             detail=posted.detail)
        return self._end(workspace_id, rule_id, occurrence_at, correlation, post_id=post_id)

    def _end(self, workspace_id: str, rule_id: str, occurrence_at: datetime, correlation: str, *,
             post_id: str | None = None, failure: str | None = None, detail: str = "") -> str:
        ended = self._decide(workspace_id, cmd.RecordRuleRun(rule_id=rule_id, occurrence_at=occurrence_at,
                                                             post_id=post_id, failure=failure, detail=detail[:2000]),
                             command_id("end", workspace_id, rule_id, occurrence_at), correlation)
        if not ended.accepted:
            return f"refused:{ended.reason_code}"
        return "succeeded" if post_id else f"failed:{failure}"
