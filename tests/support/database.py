"""Reading what a test's Herald stored: SQL on its pool, and the event store."""

from __future__ import annotations

from collections import Counter
from typing import Any

from herald.runtime.wiring import Herald


def _pool(source: Any) -> Any:
    return source.pool if isinstance(source, Herald) else source


def query_all(source: Any, sql: str, params: tuple = ()) -> list[tuple]:
    """Every row of ``sql`` on a Herald's pool (or a pool)."""
    with _pool(source).connection() as conn:
        return conn.execute(sql, params).fetchall()


def query_one(source: Any, sql: str, params: tuple = ()) -> Any:
    """The first column of the first row of ``sql``, or None when there is no row."""
    with _pool(source).connection() as conn:
        row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


def stored_notifications(app: Any) -> list:
    """Every event in the store, oldest first."""
    return app.recorder.select_notifications(start=1, limit=1_000_000)


def event_types(herald: Herald) -> Counter:
    """How many stored events there are of each type."""
    return Counter(herald.app.mapper.to_domain_event(n).type for n in stored_notifications(herald.app))
