"""SlotPlan: one social account's posting schedule and the planned slots it created.

Its state stays bounded: slots are kept from a day before the latest top-off's window on (the
window is at most 28 days), older ones are dropped when a top-off plans new ones and never planned
again (``forgotten_before``), even by a process whose clock is behind. A slot's id is
derived from (account, instant), and a top-off plans only instants it does not hold, so each
account has at most one slot per instant however many top-offs run, and at once (they are
decisions on this aggregate: the event store's version check lets one of two concurrent ones win,
the other is decided again and finds the slots there)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from schemas import events as ev

from domain.base import Context, HeraldAggregate, derived_id
from domain.planning import wall_time
from domain.rejections import Reason, Rejected

# Slots this far before the newest window's start are forgotten (they are past; their posts live
# on). The margin covers processes whose clocks disagree: none of them plans an instant this old.
KEEP_BEFORE_WINDOW = timedelta(days=1)
_JUST_BEFORE = timedelta(microseconds=1)


def slot_id_for(social_account_id: str, at: datetime) -> str:
    return derived_id("slot", social_account_id, at.isoformat())


class SlotPlan(HeraldAggregate):
    KIND = "slot_plan"

    def __init__(self) -> None:
        super().__init__()
        self.social_account_id = ""
        self.timezone = "UTC"
        self.posts_per_week = 0
        self.weekly: list[list[str]] = []  # [weekday, HH:MM]
        self.active = False
        self.slots: dict[str, dict] = {}  # slot id → {"at": datetime, "post_id": str | None}
        # Slots before this were forgotten; none is planned before it again, whatever a process's clock says.
        self.forgotten_before: datetime | None = None

    # Deciding ----------------------------------------------------------------------------

    @classmethod
    def first(cls, ctx: Context, social_account_id: str, timezone: str, weekly: list[tuple[str, str]],
              active: bool) -> SlotPlan:
        return cls.start(ctx, social_account_id, _schedule_set(social_account_id, timezone, weekly, active))

    def set_schedule(self, ctx: Context, timezone: str, weekly: list[tuple[str, str]], active: bool) -> int:
        """Replace the schedule. Empty future slots the new schedule would not create are removed
        (all of them when it is paused); slots with content stay. Returns how many were removed."""
        self.record(ctx, _schedule_set(self.social_account_id, timezone, weekly, active))
        future = {sid: s for sid, s in self.slots.items() if s["post_id"] is None and s["at"] > ctx.now}
        if not future:
            return 0
        if active:
            latest = max(s["at"] for s in future.values())
            kept = {at for at, _w, _a in wall_time.occurrences(self._weekly(), ZoneInfo(self.timezone), ctx.now, latest)}
            gone = sorted(sid for sid, s in future.items() if s["at"] not in kept)
        else:
            gone = sorted(future)
        if gone:
            self.record(ctx, ev.SlotsRemoved(social_account_id=self.social_account_id, slot_ids=gone,
                                             reason="schedule_changed" if active else "paused"))
        return len(gone)

    def top_off(self, ctx: Context, days: int) -> tuple[int, int]:
        """Plan the missing slots of the next ``days`` days: (created, already there)."""
        if not self.active:
            return 0, 0
        end = ctx.now + timedelta(days=days)
        after = ctx.now
        if self.forgotten_before is not None and self.forgotten_before - _JUST_BEFORE > after:
            after = self.forgotten_before - _JUST_BEFORE
        new, existing = [], 0
        for at, wanted, adjusted in wall_time.occurrences(self._weekly(), ZoneInfo(self.timezone), after, end):
            slot_id = slot_id_for(self.social_account_id, at)
            if slot_id in self.slots:
                existing += 1
                continue
            local = at.astimezone(ZoneInfo(self.timezone))
            new.append(ev.PlannedSlot(slot_id=slot_id, at=at, local=local.strftime("%Y-%m-%dT%H:%M"),
                                      wanted=wanted.strftime("%Y-%m-%dT%H:%M"), adjusted=adjusted))
        if new:
            self.record(ctx, ev.SlotsPlanned(social_account_id=self.social_account_id, window_start=ctx.now,
                                             window_end=end, slots=new))
        return len(new), existing

    def fill(self, ctx: Context, slot_id: str, post_id: str) -> datetime:
        """Mark the slot as having content (the post); returns its instant."""
        slot = self.slots.get(slot_id)
        if slot is None:
            raise Rejected(Reason.unknown_slot, f"no planned slot {slot_id} on account {self.social_account_id}")
        if slot["post_id"] is not None:
            raise Rejected(Reason.slot_filled, f"slot {slot_id} already has post {slot['post_id']}")
        if slot["at"] <= ctx.now:
            raise Rejected(Reason.slot_in_past, f"slot {slot_id} was due at {slot['at'].isoformat()}")
        self.record(ctx, ev.SlotFilled(social_account_id=self.social_account_id, slot_id=slot_id, post_id=post_id,
                                       at=slot["at"]))
        return slot["at"]

    def _weekly(self) -> list[tuple[str, str]]:
        return [(w, t) for w, t in self.weekly]

    # State -------------------------------------------------------------------------------

    def evolve(self, event: ev.EventData) -> None:
        match event:
            case ev.PostingScheduleSet():
                self.social_account_id, self.timezone = event.social_account_id, event.timezone
                self.posts_per_week, self.active = event.posts_per_week, event.active
                self.weekly = [[s.weekday, s.time] for s in event.slots]
            case ev.SlotsPlanned():
                keep_from = event.window_start - KEEP_BEFORE_WINDOW
                if self.forgotten_before is None or keep_from > self.forgotten_before:
                    self.forgotten_before = keep_from
                keep_from = self.forgotten_before
                self.slots = {sid: s for sid, s in self.slots.items() if s["at"] >= keep_from}
                for slot in event.slots:
                    self.slots[slot.slot_id] = {"at": slot.at, "post_id": None}
            case ev.SlotsRemoved():
                for slot_id in event.slot_ids:
                    self.slots.pop(slot_id, None)
            case ev.SlotFilled():
                if event.slot_id in self.slots:
                    self.slots[event.slot_id]["post_id"] = event.post_id


def _schedule_set(social_account_id: str, timezone: str, weekly: list[tuple[str, str]],
                  active: bool) -> ev.PostingScheduleSet:
    return ev.PostingScheduleSet(social_account_id=social_account_id, timezone=timezone, posts_per_week=len(weekly),
                                 slots=[ev.WeeklySlotData(weekday=w, time=t) for w, t in weekly], active=active)
