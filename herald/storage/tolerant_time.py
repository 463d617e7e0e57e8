"""Reading timestamps that Python cannot hold.

PostgreSQL's timestamptz reaches year 294276; Python's datetime stops at 9999. A row written
before Herald bounded its timestamps (or by hand) would make every query that returns it fail,
so one bad row would break a whole read model for good. Queries that serve read models load
such a value as the nearest instant Python can hold instead
(https://www.psycopg.org/psycopg3/docs/advanced/adapt.html#example-handling-infinity-date).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from psycopg import DataError
from psycopg.adapt import AdaptersMap
from psycopg.types.datetime import TimestamptzBinaryLoader, TimestamptzLoader

LATEST = datetime.max.replace(tzinfo=UTC)
EARLIEST = datetime.min.replace(tzinfo=UTC)


def _clamped(load: Any, data: Any) -> datetime:
    try:
        return load(data)
    except DataError as error:
        return LATEST if "too large" in str(error) else EARLIEST  # psycopg: "timestamp too large/small"


class _TextLoader(TimestamptzLoader):
    def load(self, data: Any) -> datetime:
        return _clamped(super().load, data)


class _BinaryLoader(TimestamptzBinaryLoader):
    def load(self, data: Any) -> datetime:
        return _clamped(super().load, data)


def tolerate_out_of_range(adapters: AdaptersMap) -> None:
    """Register the clamping loaders on a connection's (or cursor's) adapters."""
    adapters.register_loader("timestamptz", _TextLoader)
    adapters.register_loader("timestamptz", _BinaryLoader)
