"""Rebuilding every read model from the event store equals the live read models: after a random
workload (hypothesis), with the live consumer running meanwhile, and after a crash midway."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.post.aggregate import hold_id_for
from herald.messaging.relay import to_cloud_event
from herald.replay import store
from herald.replay.rebuild import SCHEMA, Rebuild
from projections import catalogue
from projections import positions
from schemas import commands as cmd
from tests.support import envelope, running, role_loops, wait_until

pytestmark = pytest.mark.integration

ACCOUNTS = ("a", "b")


def snapshot(url: str) -> dict[str, list[str]]:
    with psycopg.connect(url) as conn:
        return {t: sorted(json.dumps(r[0], sort_keys=True, default=str)
                          for r in conn.execute(f"SELECT to_jsonb(t) FROM {t} t"))
                for p in catalogue.PROJECTIONS for t in p.tables}


def apply_live(herald, after: int) -> int:
    """What the live consumer does: every stored event after ``after``, applied to the live tables."""
    with herald.pool.connection() as conn:
        for page in store.notifications(conn, herald.app, after, store.head(conn, herald.app)):
            events = [to_cloud_event(herald.app, n) for n in page]  # validated, as the consumer reads them
            for event in events:
                catalogue.apply_all(conn, event)
            positions.record(conn, events)
            after = page[-1].id
    return after


# A workload: per workspace, steps on its posts; every command is decided (accepted or rejected).
steps = st.lists(st.tuples(
    st.sampled_from(["schedule", "start", "outcome", "cancel", "grant", "settle"]),
    st.integers(0, 3),  # post
    st.sampled_from(ACCOUNTS),
    st.sampled_from([o.value for o in cmd.Outcome]),
), min_size=1, max_size=25)

_ids = itertools.count()


def run_workload(app, ws: str, workload) -> None:
    attempts: dict[tuple[int, str], int] = {}
    commands = [cmd.OpenWorkspace(name=ws, tier="pro"), cmd.GrantCredits(amount=3),
                *[cmd.ConnectSocialAccount(social_account_id=f"{ws}-{a}", platform="sandbox", handle=a)
                  for a in ACCOUNTS]]
    for kind, post, account, outcome in workload:
        post_id, dest = f"{ws}-p{post}", f"{ws}-{account}"
        match kind:
            case "schedule":
                commands.append(cmd.SchedulePost(post_id=post_id, text=f"post {post}", destinations=[dest],
                                                 publish_at=datetime.now(UTC) + timedelta(hours=1)))
            case "start":
                attempts[post, account] = attempts.get((post, account), 0) + 1
                commands.append(cmd.StartPublishAttempt(post_id=post_id, destination_id=dest,
                                                        attempt=attempts[post, account]))
            case "outcome":
                commands.append(cmd.RecordPublishOutcome(
                    post_id=post_id, destination_id=dest, attempt=max(attempts.get((post, account), 1), 1),
                    outcome=outcome, platform_post_id="x" if outcome == "published" else None, detail="because"))
            case "cancel":
                commands.append(cmd.CancelPost(post_id=post_id))
            case "grant":
                commands.append(cmd.GrantCredits(amount=1))
            case "settle":
                hold = hold_id_for(post_id, dest)
                commands.append(cmd.ConsumeHold(hold_id=hold) if outcome == "published"
                                else cmd.ReleaseHold(hold_id=hold, reason="test"))
    for payload in commands:
        app.handle(envelope(payload, workspace_id=ws, command_id=f"c{next(_ids)}"))


def test_a_rebuild_after_a_random_workload_equals_the_live_read_models(herald):
    url = herald.settings.database_url
    state = {"applied": 0, "n": 0}

    @settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(workloads=st.lists(steps, min_size=1, max_size=3))
    def check(workloads):
        for workload in workloads:
            state["n"] += 1
            run_workload(herald.app, f"w{state['n']}", workload)
        state["applied"] = apply_live(herald, state["applied"])
        live = snapshot(url)
        outcome = Rebuild(herald.app, url, page=7).run()
        assert outcome.swapped and outcome.equal, [c for c in outcome.checksums if not c.equal]
        assert snapshot(url) == live, "the swapped-in tables hold what the live ones held"
        # The swapped-in tables are the live ones from now on: the consumer goes on applying to them.

    check()
    assert all(rows for rows in snapshot(url).values()), "every read model got rows"


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
    """A read model added without an entry in projections.bulk.BULK still rebuilds (through its
    ``apply``), equal to the live one."""
    from projections import bulk

    run_workload(herald.app, "slow", [("schedule", p, "a", "") for p in range(3)]
                 + [("start", 0, "a", ""), ("outcome", 0, "a", "retry"), ("cancel", 1, "a", "")])
    apply_live(herald, 0)
    monkeypatch.setattr(bulk, "BULK", {})
    outcome = Rebuild(herald.app, herald.settings.database_url, page=4).run(swap=False)
    assert outcome.equal and outcome.applied > 0, [c for c in outcome.checksums if not c.equal]
