"""The queries a decision runs against the event store cost the same however long the streams
are: each reads index entries per id, never a stream's events."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest

from domain.application import HeraldApplication
from herald.storage import db, event_store

pytestmark = pytest.mark.integration


def _rows_read(plan: dict) -> int:
    """The most rows any node of an EXPLAIN ANALYZE plan produced (times its loops)."""
    own = plan.get("Actual Rows", 0) * plan.get("Actual Loops", 1)
    return max([own, *(_rows_read(child) for child in plan.get("Plans", []))])


def test_the_version_check_does_not_read_long_streams(database_url):
    app = HeraldApplication({**db.eventsourcing_env(database_url),
                             "APPLICATION_RECORDER_TOPIC": event_store.RECORDER_TOPIC})  # creates herald_events
    long_stream, short_stream, absent = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO herald_events (originator_id, originator_version, topic, state)"
                     " SELECT %s, v, 't', '\\x00' FROM generate_series(1, 20000) AS v", (long_stream,))
        conn.execute("INSERT INTO herald_events (originator_id, originator_version, topic, state)"
                     " SELECT %s, v, 't', '\\x00' FROM generate_series(1, 3) AS v", (short_stream,))
        conn.execute("ANALYZE herald_events")
    pool = db.connection_pool(database_url, max_size=1)
    try:
        versions = event_store.versions_in(pool)
        assert versions([long_stream, short_stream, absent]) == {long_stream: 20000, short_stream: 3}
        with pool.connection() as conn:
            conn.execute("SET plan_cache_mode = force_custom_plan")
            [[explained]] = conn.execute(
                "EXPLAIN (ANALYZE, FORMAT JSON) " + event_store.VERSIONS, ([long_stream, short_stream, absent],),
            ).fetchone()
        plan = explained["Plan"]
        assert _rows_read(plan) <= 3, f"the check read a stream: {json.dumps(plan)[:2000]}"
        assert event_store.recorded_at_in(pool)(long_stream) is not None
    finally:
        pool.close()
        app.close()
