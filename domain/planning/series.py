"""Series: a recurring post (one item) or an evergreen queue (a pool of items), scheduled as posts
at the occurrences of an RFC 5545 RRULE, evaluated as local wall times in the workspace's zone
(the DST rules of ``wall_time``: a 09:00 occurrence stays 09:00 local).

State stays bounded: the definition (at most 500 items), the instant up to which occurrences were
handled (``planned_until``), and per item when it was last scheduled. Each occurrence's post id is
derived from (series, instant), so an occurrence is scheduled once however often top-offs run."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr

from schemas import events as ev

from domain.base import Context, HeraldAggregate, derived_id
from domain.planning import wall_time

# Occurrences handled per series per top-off, so a rule like FREQ=MINUTELY cannot make one decision
# huge; the rest are handled by the next top-off (planned_until moves only past those handled).
MAX_OCCURRENCES_PER_TOP_OFF = 100
ALL_ITEMS_RECENT = "all_items_recent"


def post_id_for(series_id: str, at: datetime) -> str:
    return derived_id("series_post", series_id, at.isoformat())


class Series(HeraldAggregate):
    KIND = "series"

    def __init__(self) -> None:
        super().__init__()
        self.series_id = ""
        self.kind = "recurring"
        self.rrule = ""
        self.starts_at = ""
        self.timezone = "UTC"
        self.destinations: list[str] = []
        self.items: list[dict] = []
        self.skip_days = 0
        self.active = False
        self.planned_until: datetime | None = None
        self.last_scheduled: dict[str, datetime] = {}  # item id → the latest occurrence it was scheduled for

    @classmethod
    def define_new(cls, ctx: Context, defined: ev.SeriesDefined) -> Series:
        return cls.start(ctx, defined.series_id, defined)

    def define(self, ctx: Context, defined: ev.SeriesDefined) -> None:
        self.record(ctx, defined)

    def due(self, now: datetime, until: datetime) -> Iterator[datetime]:
        """The instants of occurrences after what was handled (and after ``now``) up to ``until``."""
        if not self.active:
            return
        zone = ZoneInfo(self.timezone)
        after = max(now, self.planned_until) if self.planned_until else now
        rule = rrulestr(self.rrule, dtstart=datetime.fromisoformat(self.starts_at))
        # Wall times a day either side of the window: an instant may sit on another local date.
        start_wall = after.astimezone(zone).replace(tzinfo=None) - timedelta(days=1)
        end_wall = until.astimezone(zone).replace(tzinfo=None) + timedelta(days=1)
        if rule._count is None and (rule._until is None or rule._until > end_wall):  # noqa: SLF001
            rule = rule.replace(until=end_wall)  # the walk ends at the window, found or not
        seen, count = set(), 0
        for wall in rule.xafter(start_wall, inc=True):
            if wall > end_wall or count >= MAX_OCCURRENCES_PER_TOP_OFF:
                break
            at, _adjusted = wall_time.instant(wall, zone)
            if after < at <= until and at not in seen:
                seen.add(at)
                count += 1
                yield at

    def pick(self, at: datetime) -> dict | None:
        """The item for the occurrence at ``at``: the recurring series' one item; for an evergreen
        queue the item scheduled longest ago (never first, then in pool order) that was not scheduled
        within ``skip_days`` before ``at``; None when every item was."""
        if self.kind == "recurring":
            return self.items[0]
        window = timedelta(days=self.skip_days)
        eligible = [(self.last_scheduled.get(item["item_id"]), n, item) for n, item in enumerate(self.items)
                    if item["item_id"] not in self.last_scheduled
                    or self.last_scheduled[item["item_id"]] <= at - window]
        if not eligible:
            return None
        eligible.sort(key=lambda e: (e[0] is not None, e[0] or at, e[1]))
        return eligible[0][2]

    def scheduled(self, ctx: Context, at: datetime, post_id: str, item_id: str) -> None:
        self.record(ctx, ev.SeriesOccurrenceScheduled(series_id=self.series_id, occurrence_at=at, post_id=post_id,
                                                      item_id=item_id))

    def skipped(self, ctx: Context, at: datetime, reason_code: str, detail: str) -> None:
        self.record(ctx, ev.SeriesOccurrenceSkipped(series_id=self.series_id, occurrence_at=at,
                                                    reason_code=reason_code, detail=detail[:2000]))

    def evolve(self, event: ev.EventData) -> None:
        match event:
            case ev.SeriesDefined():
                self.series_id, self.kind, self.rrule = event.series_id, event.kind, event.rrule
                self.starts_at, self.timezone = event.starts_at, event.timezone
                self.destinations = list(event.destinations)
                self.items = [i.model_dump() for i in event.items]
                self.skip_days, self.active = event.skip_days, event.active
                ids = {i.item_id for i in event.items}
                self.last_scheduled = {k: v for k, v in self.last_scheduled.items() if k in ids}
            case ev.SeriesOccurrenceScheduled():
                self.planned_until = event.occurrence_at
                self.last_scheduled[event.item_id] = event.occurrence_at
            case ev.SeriesOccurrenceSkipped():
                self.planned_until = event.occurrence_at
