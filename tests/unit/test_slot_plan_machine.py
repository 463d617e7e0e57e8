"""The slot plan's invariants under any sequence of schedule changes, pauses, top-offs, fills and
time passing (hypothesis state machine, in-memory store): no (account, instant) is ever planned
twice; a filled slot is never removed; every planned slot is at its wall time or the next valid one;
the aggregate's state stays within the horizon and a day before it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from domain.application import HeraldApplication
from domain.planning import SlotPlan, wall_time
from schemas import commands as cmd
from tests.support.commands import envelope

WS, ACCOUNT = "ws", "acc"
ZONES = ["America/Los_Angeles", "Europe/Berlin", "Asia/Kolkata"]
TIMES = ["00:30", "01:30", "02:00", "02:30", "03:00", "09:00", "17:45", "23:59"]


class SlotPlanMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)  # both spring changes ahead, fall ones in reach
        self.app = HeraldApplication({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=lambda: self.now)
        self.ids = 0
        self.zone = "UTC"
        self.filled: set[str] = set()
        self.decide(cmd.OpenWorkspace(name=WS, tier="business"))
        self.decide(cmd.ConnectSocialAccount(social_account_id=ACCOUNT, platform="sandbox", handle="a"))

    def decide(self, payload: cmd.Payload):
        self.ids += 1
        return self.app.handle(envelope(payload, workspace_id=WS, command_id=f"c{self.ids}"))

    def plan(self) -> SlotPlan | None:
        return self.app.find(SlotPlan, ACCOUNT)

    def events(self) -> list[tuple[str, dict]]:
        notifications = self.app.recorder.select_notifications(start=1, limit=1_000_000)
        return [(e.type, e.data) for e in map(self.app.mapper.to_domain_event, notifications)]

    @rule(zone=st.sampled_from(ZONES), slots=st.sets(st.tuples(st.sampled_from(cmd.WEEKDAYS), st.sampled_from(TIMES)),
                                                      min_size=1, max_size=6), active=st.booleans())
    def set_schedule(self, zone: str, slots: set, active: bool) -> None:
        decision = self.decide(cmd.SetPostingSchedule(
            social_account_id=ACCOUNT, timezone=zone, active=active,
            slots=[cmd.WeeklySlot(weekday=w, time=t) for w, t in sorted(slots)]))
        assert decision.accepted, decision
        self.zone = zone

    @rule(days=st.integers(1, 28))
    def top_off(self, days: int) -> None:
        assert self.decide(cmd.TopOffSlots(days=days)).accepted

    @rule(hours=st.integers(1, 24 * 9))
    def time_passes(self, hours: int) -> None:
        self.now += timedelta(hours=hours)

    @rule(pick=st.integers(0, 1000))
    def fill(self, pick: int) -> None:
        plan = self.plan()
        empty = sorted(sid for sid, s in (plan.slots if plan else {}).items()
                       if s["post_id"] is None and s["at"] > self.now)
        if empty:
            slot_id = empty[pick % len(empty)]
            decision = self.decide(cmd.FillSlot(social_account_id=ACCOUNT, slot_id=slot_id, text="content"))
            assert decision.accepted, decision
            self.filled.add(slot_id)

    @invariant()
    def history_keeps_the_rules(self) -> None:
        zone, seen, filled = None, set(), set()  # filled: the slots with content at that point of the history
        for kind, data in self.events():
            if kind == "herald.posting_schedule.set.v1":
                zone = ZoneInfo(data["timezone"])
            elif kind == "herald.posting_schedule.slot_filled.v1":
                filled.add(data["slot_id"])
            elif kind == "herald.posting_schedule.slots_removed.v1":
                seen -= set(data["slot_ids"])
                # an empty slot removed (a pause) may be planned again later and filled then: only a
                # slot that had content when it was removed breaks the rule
                assert not (set(data["slot_ids"]) & filled), "a slot with content was removed"
            elif kind == "herald.posting_schedule.slots_planned.v1":
                for slot in data["slots"]:
                    # planned again only after it was removed (a schedule change, a pause), never beside itself
                    assert slot["slot_id"] not in seen, "an instant planned twice"
                    seen.add(slot["slot_id"])
                    at = datetime.fromisoformat(slot["at"])
                    assert wall_time.instant(datetime.fromisoformat(slot["wanted"]), zone)[0] == at
                    assert at.astimezone(zone).strftime("%Y-%m-%dT%H:%M") == slot["local"]
        plan = self.plan()
        for slot_id in self.filled:
            slot = plan.slots.get(slot_id) if plan else None
            assert slot is None or slot["post_id"] is not None  # forgotten once past, never emptied

    @invariant()
    def state_is_bounded(self) -> None:
        plan = self.plan()
        if plan is not None and plan.slots:
            span = max(s["at"] for s in plan.slots.values()) - min(s["at"] for s in plan.slots.values())
            assert span <= timedelta(days=28 + 1 + 9 + 1), span  # horizon + kept day + the longest time step

    def teardown(self) -> None:
        self.app.close()


SlotPlanMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=25, deadline=None)
TestSlotPlanMachine = SlotPlanMachine.TestCase


def test_a_slot_emptied_by_a_pause_can_be_planned_again_and_filled() -> None:
    """Found by the machine: pause (the empty slot removed), resume, top off (the same instant
    planned again), fill — the removal came before the content, so no rule is broken."""
    machine = SlotPlanMachine()
    try:
        for active in (True, False, True):
            machine.set_schedule(zone="America/Los_Angeles", slots={("mon", "00:30")}, active=active)
            if active:
                machine.top_off(days=2)
        machine.fill(pick=0)
        assert len(machine.filled) == 1
        machine.history_keeps_the_rules()
        slot = machine.plan().slots[next(iter(machine.filled))]
        assert slot["post_id"] is not None
    finally:
        machine.teardown()
