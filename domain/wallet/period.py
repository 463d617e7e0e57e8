"""When a credit period renews: local midnight of the renewal day of the month in the workspace's
IANA time zone (zoneinfo), the day clamped to the month's last day (the 31st renews on 28/29
February). Computed in local time and only then turned into an instant, so a period always
starts at local midnight whatever the daylight-saving offset: a month across a DST change is an
hour shorter or longer in UTC. A local midnight that does not exist (a zone that springs forward
at midnight) is read with the offset before the change (``fold=0``), i.e. 01:00 local."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime
from zoneinfo import ZoneInfo


def renewal_in(year: int, month: int, timezone: str, renewal_day: int) -> datetime:
    day = min(renewal_day, calendar.monthrange(year, month)[1])
    return datetime(year, month, day, tzinfo=ZoneInfo(timezone)).astimezone(UTC)


def next_renewal(after: datetime, timezone: str, renewal_day: int) -> datetime:
    """The first renewal instant strictly after ``after``."""
    local = after.astimezone(ZoneInfo(timezone))
    year, month = local.year, local.month
    while True:
        candidate = renewal_in(year, month, timezone, renewal_day)
        if candidate > after:
            return candidate
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def local_day_of_month(at: datetime, timezone: str) -> int:
    return at.astimezone(ZoneInfo(timezone)).day
