"""When a rule's occurrences are: an RRULE (RFC 5545, python-dateutil) or a 5-field cron expression
(croniter), counted in the workspace's local wall time and turned into instants with zoneinfo.

Wall time has two awkward hours a year. A local time the clock skips (spring forward) fires at the
first instant after the gap; a local time that happens twice (fall back) fires once, at its first
pass (fold 0). So the instants only ever increase, and an occurrence is never fired twice."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter
from dateutil.rrule import HOURLY, MINUTELY, SECONDLY, rrule, rrulestr

# Counting missed occurrences stops here (an every-minute rule down for weeks): "at least" beyond.
COUNT_CAP = 10_000
_DST_SLACK = timedelta(hours=3)  # more than any zone's offset change


class InvalidSchedule(ValueError):
    pass


@dataclass(frozen=True)
class Schedule:
    kind: str  # rrule | cron
    expression: str
    anchor: datetime  # naive local wall time: the RRULE's DTSTART
    timezone: str

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def _wall_times_after(self, wall: datetime) -> Iterator[datetime]:
        """Naive local wall times strictly after ``wall``, ascending."""
        if self.kind == "cron":
            it = croniter(self.expression, wall)
            while True:
                yield it.get_next(datetime)
        else:
            rule = _from_near(_rrule(self.expression, self.anchor), self.anchor, wall)
            yield from _bounded(rule, wall + _HORIZON).xafter(wall, inc=False)

    def _instant(self, wall: datetime) -> datetime:
        zone = self.zone
        shifted = wall
        for _ in range(240):  # a skipped local time: the first minute after the gap
            aware = shifted.replace(tzinfo=zone, fold=0)
            if aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == shifted:
                return aware.astimezone(UTC)
            shifted = (shifted + timedelta(minutes=1)).replace(second=0, microsecond=0)
        return wall.replace(tzinfo=zone).astimezone(UTC)

    def after(self, instant: datetime) -> Iterator[datetime]:
        """Occurrences (UTC instants) strictly after ``instant``, ascending, each once."""
        wall = instant.astimezone(self.zone).replace(tzinfo=None) - _DST_SLACK
        last: datetime | None = None
        for candidate in self._wall_times_after(wall):
            at = self._instant(candidate)
            if at <= instant or (last is not None and at <= last):
                continue
            last = at
            yield at

    def next_after(self, instant: datetime) -> datetime | None:
        return next(self.after(instant), None)

    def is_occurrence(self, instant: datetime) -> bool:
        return self.next_after(instant - timedelta(microseconds=1)) == instant

    def between(self, start: datetime, end: datetime) -> tuple[list[datetime], bool]:
        """Occurrences in (start, end], at most COUNT_CAP of them (and whether it stopped there)."""
        found: list[datetime] = []
        for at in self.after(start):
            if at > end:
                return found, False
            if len(found) >= COUNT_CAP:
                return found, True
            found.append(at)
        return found, False


_PERIOD_S = {HOURLY: 3600, MINUTELY: 60, SECONDLY: 1}
# dateutil searches period after period for a match, forever when none can come (FREQ=HOURLY;
# BYMONTH=4;BYMONTHDAY=31): a search never looks further ahead than this. Longer than any gap
# between occurrences of a rule that has any (29 February: eight years at most).
_HORIZON = timedelta(days=9 * 366)
_PROBE = timedelta(days=4 * 366)


def _bounded(rule: rrule, until: datetime) -> rrule:
    if rule._count is not None:
        return rule  # it ends after COUNT occurrences; one that cannot occur is refused at parse
    if rule._until is not None and rule._until <= until:
        return rule
    return rule.replace(until=until)


def _from_near(rule: rrule, anchor: datetime, wall: datetime) -> rrule:
    """dateutil walks from DTSTART, so a frequent rule gets slower with age (measured: a MINUTELY rule
    a year old, 1.5 s per look). For HOURLY, MINUTELY and SECONDLY rules without COUNT, moving DTSTART
    forward by whole periods (FREQ × INTERVAL, in wall time) leaves every later occurrence where it
    was: their periods stay aligned, and the only defaults taken from DTSTART (its minute and second)
    do not change. Longer frequencies are cheap enough from their anchor."""
    period = _PERIOD_S.get(rule._freq)
    if period is None or rule._count is not None or wall <= anchor:
        return rule
    step = period * rule._interval
    periods = int((wall - anchor).total_seconds() // step) - 1
    if periods <= 0:
        return rule
    return rule.replace(dtstart=anchor + timedelta(seconds=periods * step))


def _rrule(expression: str, anchor: datetime) -> rrule:
    text = expression.strip()
    if text.upper().startswith("RRULE:"):
        text = text[len("RRULE:"):]
    if "\n" in text or "DTSTART" in text.upper():
        raise InvalidSchedule("give the RRULE line only (its start is the rule's anchor, in the workspace's time "
                              "zone)")
    for name, values in _BY_NUMBERS.findall(text.upper()):
        numbers = [int(v) for v in re.findall(r"[-+]?\d+", values)]
        if 0 in numbers or name == "MONTH" and any(not 1 <= n <= 12 for n in numbers):
            raise InvalidSchedule(f"BY{name} values must be non-zero" + (" months, 1 to 12" if name == "MONTH" else ""))
    parsed = rrulestr(text, dtstart=anchor)
    if not isinstance(parsed, rrule):
        raise InvalidSchedule("one RRULE only")
    if parsed._interval < 1:
        raise INVALID_INTERVAL
    if parsed._freq in _PERIOD_S and any((parsed._bymonth, parsed._bymonthday, parsed._bynmonthday,
                                          parsed._byyearday, parsed._byweekno, parsed._bysetpos, parsed._byeaster)):
        # dateutil would try every hour (minute…) until such a day comes: seconds of searching, for a
        # rule a DAILY one with BYHOUR (or a cron expression) says as well.
        raise InvalidSchedule("an HOURLY, MINUTELY or SECONDLY RRULE may narrow the weekday, hour, minute and "
                              "second only (BYDAY, BYHOUR, BYMINUTE, BYSECOND): for days of the month or year "
                              "use FREQ=DAILY (or longer) with BYHOUR/BYMINUTE, or cron")
    if parsed._bymonth and parsed._bymonthday and not parsed._bynmonthday and not any(
            day <= _DAYS_IN[month] for month in parsed._bymonth for day in parsed._bymonthday):
        raise InvalidSchedule("no month of BYMONTH has a day of BYMONTHDAY")  # 30 February: found at once
    return parsed


_BY_NUMBERS = re.compile(r"BY(MONTH|MONTHDAY|YEARDAY|WEEKNO|SETPOS)=([^;]*)")
_DAYS_IN = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31}
INVALID_INTERVAL = InvalidSchedule("INTERVAL must be at least 1")


def parse(kind: str, expression: str, anchor: datetime, timezone: str) -> Schedule:
    """The schedule, checked: it parses and has an occurrence after its anchor. Raises InvalidSchedule."""
    if kind == "cron":
        if len(expression.split()) != 5 or not croniter.is_valid(expression):
            raise InvalidSchedule(f"not a 5-field cron expression: {expression!r}")
    elif kind == "rrule":
        try:
            rule = _rrule(expression, anchor)
            # Whether any occurrence can come, without COUNT (dateutil would search forever for one
            # that never does): one within four years of the anchor.
            probe = rule.replace(count=None, until=anchor + _PROBE) if rule._count is not None \
                else _bounded(rule, anchor + _PROBE)
            if probe.after(anchor, inc=False) is None:
                raise InvalidSchedule("the RRULE has no occurrence within four years from now")
        except InvalidSchedule:
            raise
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as error:
            raise InvalidSchedule(f"not an RRULE: {error}") from None
    else:
        raise InvalidSchedule(f"unknown schedule kind {kind!r}")
    schedule = Schedule(kind, expression, anchor, timezone)
    try:
        schedule.next_after(anchor.replace(tzinfo=schedule.zone).astimezone(UTC))
    except (ValueError, OverflowError) as error:
        raise InvalidSchedule(f"the schedule cannot be evaluated: {error}") from None
    return schedule


def wall_anchor(now: datetime, timezone: str) -> datetime:
    """A rule's anchor: the local wall time it was defined at, to the second."""
    return now.astimezone(ZoneInfo(timezone)).replace(tzinfo=None, microsecond=0)
