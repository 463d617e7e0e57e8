"""Planning: posting schedules and their planned slots, recurring and evergreen series (docs/calendar.md)."""

from domain.planning.series import Series
from domain.planning.slot_plan import SlotPlan

__all__ = ["Series", "SlotPlan"]
