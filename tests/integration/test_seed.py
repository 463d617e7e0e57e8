"""`herald seed`: the six test workspaces of seed 000, idempotent, with keys that work."""

from __future__ import annotations

import re

import psycopg
import pytest
from typer.testing import CliRunner

from gateway import auth
from herald.cli import cli
from tests.support.workloads import apply_live

pytestmark = pytest.mark.integration

WORKSPACES = ["test-free", "test-pro", "test-business", "test-admin", "test-lowcredit", "test-zerocredit"]


@pytest.fixture
def env(herald, monkeypatch):
    for name, value in herald.settings.environment().items():
        monkeypatch.setenv(name, value)


def count_events(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM herald_events").fetchone()[0]


def test_seed_creates_the_test_workspaces_once_and_prints_their_keys(herald, env):
    url = herald.settings.database_url
    first = CliRunner().invoke(cli, ["seed"], env={"COLUMNS": "250"})
    assert first.exit_code == 0, first.output
    keys = re.findall(r"hk_[A-Za-z0-9_-]+", first.output)
    assert len(keys) == 6
    owners = {auth.authenticate(herald.pool, herald.admin_api_key, k).workspace_id for k in keys}
    assert owners == set(WORKSPACES), "each key opens its own workspace"

    apply_live(herald, 0)
    with psycopg.connect(url) as conn:
        tiers = dict(conn.execute("SELECT workspace_id, tier FROM workspaces").fetchall())
        balances = dict(conn.execute("SELECT workspace_id, available + held FROM wallet_balances").fetchall())
        waiting = dict(conn.execute("SELECT workspace_id, waiting FROM queue_workspace_summary").fetchall())
        accounts = dict(conn.execute("SELECT workspace_id, count(*) FROM social_accounts GROUP BY 1").fetchall())
        rejected = conn.execute("SELECT reason_code, count(*) FROM command_rejections"
                                " WHERE workspace_id = 'test-zerocredit' GROUP BY 1").fetchall()
    assert tiers == {"test-free": "free", "test-pro": "pro", "test-business": "business", "test-admin": "business",
                     "test-lowcredit": "pro", "test-zerocredit": "pro"}
    assert balances == {"test-free": 10, "test-pro": 500, "test-business": 2000, "test-admin": 2000,
                        "test-lowcredit": 2, "test-zerocredit": 0}
    assert (waiting["test-free"], waiting["test-pro"], waiting["test-business"], waiting["test-zerocredit"]) == (3, 25, 100, 0)
    assert (accounts["test-free"], accounts["test-pro"], accounts["test-business"]) == (1, 3, 10), "as the tiers allow"
    assert rejected == [("insufficient_credits", 5)]
    with psycopg.connect(url) as conn:
        rules = dict(conn.execute("SELECT workspace_id, count(*) FROM automation_rules WHERE status = 'active'"
                                  " GROUP BY 1").fetchall())
    assert rules == {"test-pro": 3, "test-business": 10}, "the plan's automation rules"

    events = count_events(url)
    again = CliRunner().invoke(cli, ["seed"], env={"COLUMNS": "250"})
    assert again.exit_code == 0, again.output
    assert not re.findall(r"hk_[A-Za-z0-9_-]+", again.output) and "issued before" in again.output
    assert count_events(url) == events, "a second run changes nothing"

    rotated = CliRunner().invoke(cli, ["seed", "--rotate-keys"], env={"COLUMNS": "250"})
    new_keys = re.findall(r"hk_[A-Za-z0-9_-]+", rotated.output)
    assert len(new_keys) == 6 and not set(new_keys) & set(keys)
    assert all(auth.authenticate(herald.pool, herald.admin_api_key, k) is None for k in keys), "old keys revoked"
    assert all(auth.authenticate(herald.pool, herald.admin_api_key, k) is not None for k in new_keys)
