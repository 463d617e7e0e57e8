"""AutomationRule: a schedule, what to generate, where to post it and how (scheduled, or a draft
for approval). The rule fires each occurrence at most once: it keeps only the last occurrence it
fired (or skipped) — its cursor — and refuses any occurrence at or before it. That and the one
run in progress are all the state a rule keeps about its history (bounded)."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from schemas import events as ev

from domain.automation import schedule as schedules
from domain.base import Context, HeraldAggregate, derived_id
from domain.rejections import Reason, Rejected


class Status(StrEnum):
    active = "active"
    paused = "paused"
    deleted = "deleted"


PAUSED_BY_USER = "paused_by_user"
PAUSED_TIER_LIMIT = "tier_limit"
MISSED = "missed_catch_up_window"


class AutomationRule(HeraldAggregate):
    KIND = "automation_rule"

    def __init__(self) -> None:
        super().__init__()
        self.rule_id = ""
        self.definition: dict = {}
        self.status = Status.active
        self.cursor: datetime | None = None  # occurrences at or before it are never fired
        self.last_fired: datetime | None = None
        self.run: dict | None = None  # the fired occurrence whose run has not ended
        self.next_run_at: datetime | None = None

    @staticmethod
    def key(workspace_id: str, rule_id: str) -> str:
        return f"{workspace_id}/{rule_id}"

    @property
    def schedule(self) -> schedules.Schedule:
        d = self.definition
        return schedules.Schedule(d["schedule_kind"], d["schedule"], datetime.fromisoformat(d["anchor"]),
                                  d["timezone"])

    @classmethod
    def create(cls, ctx: Context, rule_id: str, definition: ev.RuleDefinition) -> AutomationRule:
        first = _next(definition, ctx.now)
        return cls.start(ctx, cls.key(ctx.workspace_id, rule_id),
                         ev.AutomationRuleCreated(rule_id=rule_id, definition=definition, next_run_at=first))

    def update(self, ctx: Context, definition: ev.RuleDefinition) -> None:
        self._not_deleted()
        self.record(ctx, ev.AutomationRuleUpdated(rule_id=self.rule_id, definition=definition,
                                                  next_run_at=_next(definition, ctx.now)))

    def pause(self, ctx: Context, reason: str, detail: str = "") -> None:
        self._not_deleted()
        if self.status == Status.paused:
            raise Rejected(Reason.rule_not_active, f"rule {self.rule_id} is paused already")
        self.record(ctx, ev.AutomationRulePaused(rule_id=self.rule_id, reason=reason, detail=detail))

    def resume(self, ctx: Context) -> None:
        self._not_deleted()
        if self.status == Status.active:
            raise Rejected(Reason.rule_not_paused, f"rule {self.rule_id} is active already")
        self.record(ctx, ev.AutomationRuleResumed(rule_id=self.rule_id,
                                                  next_run_at=self.schedule.next_after(ctx.now)))

    def delete(self, ctx: Context) -> None:
        self._not_deleted()
        self.record(ctx, ev.AutomationRuleDeleted(rule_id=self.rule_id))

    # Firing ------------------------------------------------------------------------------

    def check_fireable(self, ctx: Context, occurrence_at: datetime) -> tuple[datetime, int]:
        """Refuses an occurrence that may not fire now; returns the first occurrence not fired yet
        and how many there are up to and including this one (the earlier ones are missed; counted
        up to ``schedule.COUNT_CAP``)."""
        if self.status != Status.active:
            raise Rejected(Reason.rule_not_active, f"rule {self.rule_id} is {self.status}")
        if self.run is not None:
            raise Rejected(Reason.rule_run_pending, f"the run of {self.run['occurrence_at']} has not ended")
        if occurrence_at > ctx.now:
            raise Rejected(Reason.not_due, f"occurrence {occurrence_at.isoformat()} is not due yet")
        if self.cursor is not None and occurrence_at <= self.cursor:
            raise Rejected(Reason.occurrence_already_fired,
                           f"occurrence {occurrence_at.isoformat()} is at or before the last one "
                           f"({self.cursor.isoformat()}), fired or skipped already")
        schedule = self.schedule
        if not schedule.is_occurrence(occurrence_at):
            raise Rejected(Reason.not_an_occurrence, f"{occurrence_at.isoformat()} is not an occurrence of the rule")
        if self.cursor is None:
            return occurrence_at, 1
        pending, capped = schedule.between(self.cursor, occurrence_at)
        return (pending[0] if pending else occurrence_at), (schedules.COUNT_CAP if capped else max(1, len(pending)))

    def catch_up_window(self) -> timedelta:
        return timedelta(seconds=self.definition["catch_up_window_s"])

    def skip(self, ctx: Context, first: datetime, last: datetime, count: int) -> None:
        self.record(ctx, ev.AutomationRuleOccurrencesSkipped(
            rule_id=self.rule_id, first_at=first, last_at=last, count=count, reason=MISSED,
            next_run_at=self.schedule.next_after(max(last, ctx.now))))

    def fire(self, ctx: Context, occurrence_at: datetime, skipped_before: int) -> ev.AutomationRuleFired:
        fired = ev.AutomationRuleFired(
            rule_id=self.rule_id, occurrence_at=occurrence_at, skipped_before=skipped_before,
            generation_id=run_generation_id(self.workspace_id, self.rule_id, occurrence_at),
            post_id=run_post_id(self.workspace_id, self.rule_id, occurrence_at),
            next_run_at=self.schedule.next_after(max(occurrence_at, ctx.now)))
        self.record(ctx, fired)
        return fired

    def end_run(self, ctx: Context, occurrence_at: datetime, *, post_id: str | None, failure: str | None,
                detail: str = "") -> None:
        if self.run is None or self.run["occurrence_at"] != occurrence_at:
            raise Rejected(Reason.rule_run_not_pending, f"no run of {occurrence_at.isoformat()} is in progress")
        generation_id = self.run["generation_id"]
        if failure is not None:
            self.record(ctx, ev.AutomationRuleRunFailed(rule_id=self.rule_id, occurrence_at=occurrence_at,
                                                        generation_id=generation_id, reason=failure, detail=detail))
        else:
            self.record(ctx, ev.AutomationRuleRunSucceeded(
                rule_id=self.rule_id, occurrence_at=occurrence_at, generation_id=generation_id,
                post_id=post_id or "", approval_mode=self.definition["approval_mode"]))

    def _not_deleted(self) -> None:
        if self.status == Status.deleted:
            raise Rejected(Reason.unknown_automation_rule, f"rule {self.rule_id} was deleted")

    def evolve(self, event: ev.EventData) -> None:
        match event:
            case ev.AutomationRuleCreated() | ev.AutomationRuleUpdated():
                self.rule_id, self.definition = event.rule_id, event.definition.model_dump()
                self.next_run_at = event.next_run_at if self.status == Status.active else None
                # Occurrences count from the definition on: none before it fires.
                self.cursor = _before(event.next_run_at, self.cursor)
            case ev.AutomationRulePaused():
                self.status, self.next_run_at = Status.paused, None
            case ev.AutomationRuleResumed():
                self.status, self.next_run_at = Status.active, event.next_run_at
                self.cursor = _before(event.next_run_at, self.cursor)
            case ev.AutomationRuleDeleted():
                self.status = Status.deleted
            case ev.AutomationRuleFired():
                self.cursor = self.last_fired = event.occurrence_at
                self.next_run_at = event.next_run_at
                self.run = {"occurrence_at": event.occurrence_at, "generation_id": event.generation_id,
                            "post_id": event.post_id}
            case ev.AutomationRuleOccurrencesSkipped():
                self.cursor, self.next_run_at = event.last_at, event.next_run_at
            case ev.AutomationRuleRunSucceeded() | ev.AutomationRuleRunFailed():
                self.run = None


def _before(next_run_at: datetime | None, cursor: datetime | None) -> datetime | None:
    """The cursor once a rule is (re)armed: just before its next occurrence, never moved back."""
    if next_run_at is None:
        return cursor
    armed = next_run_at - timedelta(microseconds=1)
    return armed if cursor is None or armed > cursor else cursor


def _next(definition: ev.RuleDefinition, now: datetime) -> datetime | None:
    return schedules.Schedule(definition.schedule_kind, definition.schedule,
                              datetime.fromisoformat(definition.anchor), definition.timezone).next_after(now)


def run_generation_id(workspace_id: str, rule_id: str, occurrence_at: datetime) -> str:
    return derived_id("rule-generation", workspace_id, rule_id, occurrence_at.isoformat())


def run_post_id(workspace_id: str, rule_id: str, occurrence_at: datetime) -> str:
    return derived_id("rule-post", workspace_id, rule_id, occurrence_at.isoformat())
