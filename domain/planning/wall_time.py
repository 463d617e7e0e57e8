"""Local wall times → instants, the same way everywhere planning needs it (slots and series).

The rules (docs/calendar.md "Time zones and DST"):
- a wall time that exists once is that instant: a 09:00 slot is 09:00 local on both sides of a change;
- a wall time that does not exist (skipped by a spring-forward gap) moves to the next valid local time,
  the end of the gap (02:30 on the night clocks go 02:00 → 03:00 becomes 03:00);
- a wall time that exists twice (repeated by a fall-back) is its first occurrence (``fold=0``, the
  earlier instant, still on the summer offset).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

SKIPPED = "skipped_hour"
AMBIGUOUS = "ambiguous_first"
_LONGEST_GAP = timedelta(days=2)  # Pacific/Apia skipped a whole day in 2011


def exists(wall: datetime, zone: ZoneInfo) -> bool:
    """Whether the naive wall time happens in the zone (is not inside a gap)."""
    return datetime.fromtimestamp(wall.replace(tzinfo=zone).timestamp(), zone).replace(tzinfo=None) == wall


def instant(wall: datetime, zone: ZoneInfo) -> tuple[datetime, str | None]:
    """The UTC instant a naive local wall time stands for, and how it was adjusted (None, SKIPPED, AMBIGUOUS)."""
    first = wall.replace(tzinfo=zone, fold=0)
    if exists(wall, zone):
        ambiguous = first.utcoffset() != wall.replace(tzinfo=zone, fold=1).utcoffset()
        return first.astimezone(UTC), AMBIGUOUS if ambiguous else None
    # Inside a gap: the first minute after it that exists is the gap's end (tz transitions are on whole minutes).
    candidate = wall.replace(second=0, microsecond=0)
    limit = wall + _LONGEST_GAP
    while candidate < limit:
        candidate += timedelta(minutes=1)
        if exists(candidate, zone):
            return candidate.replace(tzinfo=zone).astimezone(UTC), SKIPPED
    raise ValueError(f"no valid local time within two days after {wall.isoformat()} in {zone.key}")


def parse_hhmm(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def spread(posts_per_week: int, times: list[str]) -> list[tuple[str, str]]:
    """``posts_per_week`` weekly slots spread evenly over Monday … Sunday (post i on weekday
    ⌊7i/n⌋), their times taken from ``times`` in rotation. Raises ValueError when two posts would
    fall on the same weekday and time (too few times for that many posts a day)."""
    slots = []
    for i in range(posts_per_week):
        slot = (WEEKDAYS[(7 * i) // posts_per_week], times[i % len(times)])
        if slot in slots:
            raise ValueError(f"{posts_per_week} posts a week need more than {len(times)} time(s) a day: two would "
                             f"fall on {slot[0]} at {slot[1]}")
        slots.append(slot)
    return slots


def occurrences(weekly: list[tuple[str, str]], zone: ZoneInfo, after: datetime,
                until: datetime) -> Iterator[tuple[datetime, datetime, str | None]]:
    """(instant, wanted local wall time, adjustment) of each weekly slot with ``after < instant <= until``,
    soonest first, each instant once (two wall times that land on one instant are one slot)."""
    by_weekday: dict[int, list[time]] = {}
    for weekday, hhmm in weekly:
        by_weekday.setdefault(WEEKDAYS.index(weekday), []).append(parse_hhmm(hhmm))
    first: date = after.astimezone(zone).date() - timedelta(days=1)
    last: date = until.astimezone(zone).date() + timedelta(days=1)
    found: dict[datetime, tuple[datetime, datetime, str | None]] = {}
    day = first
    while day <= last:
        for at in by_weekday.get(day.weekday(), ()):
            wall = datetime.combine(day, at)
            utc, adjusted = instant(wall, zone)
            if after < utc <= until and utc not in found:
                found[utc] = (utc, wall, adjusted)
        day += timedelta(days=1)
    yield from (found[k] for k in sorted(found))
