"""Rebuilding every read model from the event store equals the live read models: after a random
workload (hypothesis), with the live consumer running meanwhile, and after a crash midway."""

from __future__ import annotations

import psycopg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from domain.tiers import LIMITS
from domain.workspace.tier_catalogue import ADMIN_WORKSPACE
from herald.replay import store
from schemas import commands as cmd
from herald.replay.rebuild import SCHEMA, Rebuild
from tests.support import envelope, running, role_loops, wait_until
from projections import catalogue
from schemas import events as ev
from tests.support.workloads import EVERYTHING, Clock, apply_live, run_workload, snapshot, steps

pytestmark = pytest.mark.integration


# Event types the workloads do not make: the bulk paths for them are checked in
# tests/integration/test_bulk_paths.py.
_NOT_MADE_YET = {ev.GenerationCounted.type}


def test_a_rebuild_after_a_random_workload_equals_the_live_read_models(herald, monkeypatch):
    url = herald.settings.database_url
    state = {"applied": 0, "n": 0}
    monkeypatch.setattr(herald.app, "clock", Clock())  # workloads move time: expiries, renewals
    # An admin's tier of its own (the tiers read model), with few monthly credits (low-credit
    # notices) and a carryover cap (credits carried over at a renewal).
    starter = {**LIMITS["pro"], "queue_size": 7, "monthly_credits": 4, "carryover_cap": 2}
    decision = herald.app.handle(envelope(cmd.DefineTier(tier="starter", limits=starter), workspace_id=ADMIN_WORKSPACE,
                                          command_id="define-starter"))
    assert decision.accepted, decision

    @settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @example(workloads=[EVERYTHING, EVERYTHING])
    @given(workloads=st.lists(steps, min_size=1, max_size=3))
    def check(workloads):
        for workload in workloads:
            state["n"] += 1
            n = state["n"]
            run_workload(herald.app, f"w{n}", workload, tier=("starter", "pro")[n % 2],
                         timezone=("Europe/Berlin", "UTC", "Pacific/Auckland")[n % 3])
        state["applied"] = apply_live(herald, state["applied"])
        live = snapshot(url)
        outcome = Rebuild(herald.app, url, page=7).run()
        assert outcome.swapped and outcome.equal, [c for c in outcome.checksums if not c.equal]
        assert snapshot(url) == live, "the swapped-in tables hold what the live ones held"
        # The swapped-in tables are the live ones from now on: the consumer goes on applying to them.

    check()
    empty = [table for table, rows in snapshot(url).items() if not rows]
    assert not empty, f"every read model got rows; empty: {empty}"
    with psycopg.connect(url) as conn:
        stored = {t for (t,) in conn.execute("SELECT DISTINCT convert_from(state, 'UTF8')::jsonb->>'type'"
                                             f" FROM {herald.app.recorder.events_table_name}")}
    applied = set().union(*(p.handles for p in catalogue.PROJECTIONS))
    assert applied - _NOT_MADE_YET <= stored, f"event types the workloads never made: {applied - stored}"


def test_a_rebuild_follows_the_live_consumer_and_swaps_without_stopping_it(herald):
    """With the relay and the projections role running, a rebuild catches up with the consumer's
    per-partition positions; the consumer applies to the new tables afterwards."""
    url = herald.settings.database_url
    with running(role_loops(herald, "relay", "projections")):
        for n in range(4):
            run_workload(herald.app, f"live{n}", [("schedule", p, "a", "failed") for p in range(3)]
                         + [("start", 0, "a", ""), ("outcome", 0, "a", "failed"), ("cancel", 1, "a", "")])
        with psycopg.connect(url) as conn:
            head = store.head(conn, herald.app)
        wait_until(lambda: _applied(url) >= head, "the consumer applied the first workload", timeout=60)
        rebuild = Rebuild(herald.app, url, topic=herald.settings.events_topic,
                          partitions=herald.settings.topic_partitions, page=5)
        rebuild.prepare()
        rebuild.round()
        run_workload(herald.app, "late", [("schedule", 0, "b", "")])  # comes while the rebuild runs
        outcome = rebuild.finish()
        assert outcome.swapped and outcome.equal, [c for c in outcome.checksums if not c.equal]
        assert rebuild.partitions == herald.settings.topic_partitions, "it followed the consumer's partitions"
        run_workload(herald.app, "after", [("schedule", 0, "a", "")])
        with psycopg.connect(url) as conn:
            head = store.head(conn, herald.app)
        wait_until(lambda: _applied(url) >= head, "the consumer applies to the new tables", timeout=30)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM posts WHERE workspace_id = 'after'").fetchone()[0] == 1
        assert conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (SCHEMA,)).fetchone() is None


def _applied(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT COALESCE(max(position), 0) FROM read_model_positions").fetchone()[0]


class Crash(Exception):
    pass


def test_a_crashed_rebuild_resumes_where_it_stopped(herald):
    url = herald.settings.database_url
    for n in range(3):
        run_workload(herald.app, f"crash{n}", [("schedule", p, "a", "") for p in range(3)])
    apply_live(herald, 0)
    live = snapshot(url)
    seen = []

    def crash_after_two_pages(progress):
        seen.append(progress.applied)
        if len(seen) == 2:
            raise Crash

    with pytest.raises(Crash):
        Rebuild(herald.app, url, page=10, on_progress=crash_after_two_pages).run()
    resumed = Rebuild(herald.app, url, page=10)
    resumed.prepare()
    assert resumed.progress.applied == seen[-1] > 0, "it resumes with what was applied before the crash"
    outcome = resumed.run()
    assert outcome.swapped and outcome.equal
    assert snapshot(url) == live
    clean = Rebuild(herald.app, url, page=10).run(swap=False)
    assert clean.equal and outcome.applied == clean.applied, "every event applied once, across the crash"


def test_a_read_model_without_a_bulk_path_is_rebuilt_event_by_event(herald, monkeypatch):
    """A read model without a usable bulk path (none, or one that folds other event types than the
    projection applies) still rebuilds, through its ``apply``, equal to the live one."""
    from projections import bulk

    run_workload(herald.app, "slow", [("schedule", p, "a", "") for p in range(3)]
                 + [("start", 0, "a", ""), ("outcome", 0, "a", "retry"), ("cancel", 1, "a", "")])
    apply_live(herald, 0)
    monkeypatch.setattr(bulk, "_FOLDS", {})
    outcome = Rebuild(herald.app, herald.settings.database_url, page=4).run(swap=False)
    assert outcome.equal and outcome.applied > 0, [c for c in outcome.checksums if not c.equal]


def test_a_bulk_path_is_used_only_while_it_folds_what_its_projection_applies():
    from projections import bulk
    from projections import catalogue

    usable = bulk.usable(list(catalogue.PROJECTIONS))
    assert list(usable) == [p.name for p in catalogue.PROJECTIONS], "every read model has its bulk path, in order"
    queue = next(p for p in catalogue.PROJECTIONS if p.name == "queue")
    learned = type(queue)(**{**queue.__dict__, "handles": queue.handles | {"herald.post.edited.v1"}})
    assert "queue" not in bulk.usable([learned]), "a projection that learns an event leaves its bulk path"


def test_one_rebuild_at_a_time(herald):
    from herald.replay.rebuild import RebuildRunning

    url = herald.settings.database_url
    first = Rebuild(herald.app, url)
    with first.exclusive(), pytest.raises(RebuildRunning):
        Rebuild(herald.app, url).run()
    assert Rebuild(herald.app, url).run().swapped, "free again once the first one ended"


def test_a_read_model_is_rebuilt_with_the_ones_it_reads_or_writes(herald, monkeypatch):
    """Usage reads the time zone (workspaces) and a destination's platform (queue); tier changes
    write workspaces and queue rows: rebuilding usage alone rebuilds those with it, equal to the live ones."""
    url = herald.settings.database_url
    monkeypatch.setattr(herald.app, "clock", Clock())
    run_workload(herald.app, "needs", EVERYTHING, timezone="Pacific/Auckland")
    apply_live(herald, 0)
    live = snapshot(url)
    usage = next(p for p in catalogue.PROJECTIONS if p.name == "usage")
    outcome = Rebuild(herald.app, url, projections=[usage], page=5).run()
    assert outcome.projections == ["queue", "workspaces", "usage", "tiers"]
    assert outcome.swapped and outcome.equal, [c for c in outcome.checksums if not c.equal]
    assert snapshot(url) == live
    clock = next(p for p in catalogue.PROJECTIONS if p.name == "credit_clock")
    assert [p.name for p in catalogue.with_needs([clock])] == ["wallet", "credit_clock"]
