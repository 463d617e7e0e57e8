"""The default queue read and the wallet read use their partial indexes, so their cost does not
grow with a workspace's settled history. Checked with EXPLAIN on tables holding thousands of
settled rows (ANALYZEd), where a sequential scan would be what history costs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg import sql

from herald.storage import db
from projections import catalogue, queue, wallet

T0 = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
WS = "ws-busy"


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    db.apply_ddl(database_url, *catalogue.DDL)
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


def _plan(conn: psycopg.Connection, query: sql.Composable | str, params=None) -> dict:
    explain = sql.SQL("EXPLAIN (FORMAT JSON) {}").format(sql.SQL(query) if isinstance(query, str) else query)
    return conn.execute(explain, params).fetchone()[0][0]["Plan"]


def _nodes(plan: dict) -> Iterator[dict]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _scans(plan: dict, table: str) -> list[str]:
    """The node types that read the table (an Index Scan, a Bitmap Heap Scan, a Seq Scan …)."""
    return [n["Node Type"] for n in _nodes(plan) if n.get("Relation Name") == table]


def _indexes(plan: dict) -> set[str]:
    return {n["Index Name"] for n in _nodes(plan) if "Index Name" in n}


def test_default_queue_read_is_an_index_scan_whatever_the_history(conn):
    # 6,000 settled destinations in the workspace, 40 active ones, and 6,000 rows of other workspaces.
    conn.execute(
        """
        INSERT INTO queue_destinations (post_id, destination_id, workspace_id, social_account_id, platform, handle,
                                        due_at, status, updated_at, text, ordinal)
        SELECT 'p' || n, 'd', %(ws)s, 'a', 'sandbox', '@a', %(t0)s + n * interval '1 minute',
               (ARRAY['published', 'failed', 'skipped', 'cancelled'])[1 + n %% 4], %(t0)s, 't', 0
          FROM generate_series(1, 6000) n
        UNION ALL
        SELECT 'active' || n, 'd', %(ws)s, 'a', 'sandbox', '@a', %(t0)s + n * interval '1 minute',
               (ARRAY['pending', 'retry_scheduled', 'attempting', 'outcome_unknown'])[1 + n %% 4], %(t0)s, 't', 0
          FROM generate_series(1, 40) n
        UNION ALL
        SELECT 'o' || n, 'd', 'ws-' || (n %% 30), 'a', 'sandbox', '@a', %(t0)s + n * interval '1 minute',
               (ARRAY['published', 'pending', 'failed', 'cancelled'])[1 + n %% 4], %(t0)s, 't', 0
          FROM generate_series(1, 6000) n
        """,
        {"ws": WS, "t0": T0},
    )
    conn.execute("INSERT INTO queue_workspaces VALUES (%s, 'pro', 50)", (WS,))
    conn.execute("ANALYZE queue_destinations")
    conn.execute("ANALYZE queue_workspaces")

    first = queue.read_queue(conn, WS, limit=10)
    assert len(first["destinations"]) == 10 and first["waiting"] == 40
    for cursor in (None, first["next_cursor"]):
        query, params = queue.page_query(WS, cursor=cursor, limit=10)
        plan = _plan(conn, query, params)
        scans = _scans(plan, "queue_destinations")
        assert scans and "Seq Scan" not in scans, json.dumps(plan)
        assert _indexes(plan) == {"queue_destinations_active"}, json.dumps(plan)
    query, params = queue.page_query(WS, statuses=["attempting"], limit=10)
    plan = _plan(conn, query, params)
    assert "Seq Scan" not in _scans(plan, "queue_destinations") and _indexes(plan) == {"queue_destinations_active"}

    summary = _plan(conn, "SELECT tier, queue_size, waiting FROM queue_workspace_summary WHERE workspace_id = %s", (WS,))
    scans = _scans(summary, "queue_destinations")
    assert scans and "Seq Scan" not in scans and "queue_destinations_active" in _indexes(summary), json.dumps(summary)


def test_wallet_read_uses_the_live_grant_and_pending_hold_indexes(conn):
    conn.execute("INSERT INTO wallets VALUES (%s, %s)", (WS, T0))
    conn.execute(
        """
        INSERT INTO wallet_grants (workspace_id, grant_id, amount, remaining, source, expires_at, granted_at, position)
        SELECT 'ws-' || (n %% 10), 'g' || n, 1, 0, 's', NULL::timestamptz, %(t0)s, n FROM generate_series(1, 3000) n
        UNION ALL
        SELECT %(ws)s, 'used' || n, 1, 0, 's', NULL::timestamptz, %(t0)s, n FROM generate_series(1, 3000) n
        UNION ALL
        SELECT %(ws)s, 'live' || n, 5, 5, 's', NULL::timestamptz, %(t0)s, 10000 + n FROM generate_series(1, 3) n
        """,
        {"ws": WS, "t0": T0},
    )
    conn.execute(
        """
        INSERT INTO wallet_holds (workspace_id, hold_id, post_id, destination_id, amount, status, placed_at, position)
        SELECT %(ws)s, 'h' || n, 'p' || n, 'd', 1, CASE WHEN n %% 2 = 0 THEN 'consumed' ELSE 'released' END,
               %(t0)s, n FROM generate_series(1, 6000) n
        UNION ALL
        SELECT %(ws)s, 'pending' || n, 'p' || n, 'd', 1, 'pending', %(t0)s, 10000 + n FROM generate_series(1, 4) n
        """,
        {"ws": WS, "t0": T0},
    )
    for table in ("wallets", "wallet_grants", "wallet_holds"):
        conn.execute(f"ANALYZE {table}")

    view = wallet.read_wallet(conn, WS)
    assert (view["granted"], view["held"], len(view["grants"]), len(view["holds"])) == (15, 4, 3, 4)
    plan = _plan(conn, wallet._READ, (WS,))
    grants, holds = _scans(plan, "wallet_grants"), _scans(plan, "wallet_holds")
    assert grants and holds and "Seq Scan" not in grants + holds, json.dumps(plan)
    assert {"wallet_grants_live", "wallet_holds_pending"} <= _indexes(plan), json.dumps(plan)
