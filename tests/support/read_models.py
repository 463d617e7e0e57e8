"""Read models checked against ones rebuilt from the event store from scratch."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

import psycopg

from herald.messaging.relay import to_cloud_event
from herald.runtime.wiring import Herald
from herald.storage import db
from projections import queue
from tests.support.database import stored_notifications


def apply_store(conn: psycopg.Connection, app: Any, apply: Callable[[psycopg.Connection, object], Any]) -> None:
    """Apply every stored event, oldest first, with a projection's ``apply`` (what its role does)."""
    for notification in stored_notifications(app):
        apply(conn, to_cloud_event(app, notification))


def queue_rows(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT post_id, destination_id, workspace_id, due_at, status, attempt, platform_post_id FROM"
            " queue_destinations ORDER BY post_id, destination_id"
        ).fetchall()


def rebuilt_queue(herald: Herald, pg_url: str) -> list[tuple]:
    """The queue read model built afresh, in a scratch database, from every stored event."""
    name = f"herald_t_{secrets.token_hex(6)}"
    db.create_database(pg_url, name)
    try:
        url = db.with_database(pg_url, name)
        db.apply_ddl(url, queue.DDL)
        with psycopg.connect(url) as conn:
            apply_store(conn, herald.app, queue.apply)
        return queue_rows(url)
    finally:
        db.drop_database(pg_url, name)


def assert_queue_equals_rebuilt(herald: Herald, pg_url: str, timeout_s: float = 30) -> None:
    """Waits for the live projection to catch up with the store, then compares it row by row."""
    expected = rebuilt_queue(herald, pg_url)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and queue_rows(herald.settings.database_url) != expected:
        time.sleep(0.2)
    assert queue_rows(herald.settings.database_url) == expected, "the read model equals one rebuilt from scratch"
