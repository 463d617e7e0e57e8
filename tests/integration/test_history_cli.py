"""`herald rebuild` and `herald replay` as an operator runs them (typer's runner, real database and broker)."""

from __future__ import annotations

import psycopg
import pytest
from typer.testing import CliRunner

from herald.cli import cli
from herald.replay import store
from schemas.events import position_of
from tests.support.workloads import apply_live, run_workload, snapshot
from tests.support import read_topic, relay_everything

pytestmark = pytest.mark.integration


@pytest.fixture
def env(herald, monkeypatch):
    for name, value in herald.settings.environment().items():
        monkeypatch.setenv(name, value)


def test_herald_rebuild_checks_then_swaps(herald, env):
    run_workload(herald.app, "cli", [("schedule", p, "a", "") for p in range(3)] + [("cancel", 0, "a", "")])
    apply_live(herald, 0)
    live = snapshot(herald.settings.database_url)

    checked = CliRunner().invoke(cli, ["rebuild", "--check"])
    assert checked.exit_code == 0, checked.output
    assert "differs" not in checked.output and "live tables kept" in checked.output and "events/s" in checked.output

    with psycopg.connect(herald.settings.database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM posts")  # a damaged read model
    rebuilt = CliRunner().invoke(cli, ["rebuild", "posts", "queue"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "differs" in rebuilt.output and "swapped in" in rebuilt.output
    said = " ".join(rebuilt.output.split())
    assert "also rebuilt, as the chosen read models read or write their tables: workspaces, tiers" in said
    assert snapshot(herald.settings.database_url) == live, "the damage is repaired from the event store"

    unknown = CliRunner().invoke(cli, ["rebuild", "nonsense"])
    assert unknown.exit_code != 0 and "unknown read models" in unknown.output


def test_herald_replay_republishes_a_range_and_resumes(herald, env):
    run_workload(herald.app, "rp", [("schedule", p, "a", "") for p in range(2)])
    relay_everything(herald.relay())
    with psycopg.connect(herald.settings.database_url) as conn:
        head = store.head(conn, herald.app)
    topic = herald.settings.events_topic
    before = len(read_topic(herald.kafka_bootstrap, topic))
    assert before == head

    done = CliRunner().invoke(cli, ["replay", "--from", "3", "--to", "8"])
    assert done.exit_code == 0, done.output
    assert "republished 6 events (3..8)" in done.output
    records = read_topic(herald.kafka_bootstrap, topic)
    assert sorted(position_of(r.value) for r in records[before:]) == [3, 4, 5, 6, 7, 8]

    # A replay that crashed after position 5 was acknowledged goes on from 6.
    with psycopg.connect(herald.settings.database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO replay_progress (name, position) VALUES ('1-10', 5)")
    resumed = CliRunner().invoke(cli, ["replay", "--to", "10"])
    assert resumed.exit_code == 0 and "republished 5 events (1..10)" in resumed.output, resumed.output
    records_after = read_topic(herald.kafka_bootstrap, topic)
    assert sorted(position_of(r.value) for r in records_after[len(records):]) == [6, 7, 8, 9, 10]
