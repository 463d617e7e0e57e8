"""The rule runner killed mid-run (SIGKILL of the `herald processors` process it runs in, on real
PostgreSQL and the broker, the read models fed by the relay and the projections role): first while
the provider call of a claimed occurrence hangs (claimed, nothing generated, nothing scheduled),
then six times at a random moment just after a claim (the phase each kill hit is printed). After the restarts every fired occurrence ended once with one
post; none fired twice; a generation that fails (HTTP 500) is recorded as the run's failure and the
next occurrence fires and posts."""

from __future__ import annotations

import random
import time
from collections import Counter
from datetime import datetime

import pytest

from domain.automation.aggregate import run_post_id
from schemas import commands as cmd
from tests.fakes.openai_server import FakeOpenAI
from tests.support import decide, query_one, role_loops, role_processes, running, stored_notifications, wait_until

pytestmark = pytest.mark.integration

WS = "ws-rules"
RULES = ("r1", "r2")


def _events(herald, *types: str) -> list[tuple[str, dict]]:
    decoded = (herald.app.mapper.to_domain_event(n) for n in stored_notifications(herald.app))
    return [(e.type.split(".")[-2], e.data) for e in decoded if e.type in types]


def _of(herald, kind: str) -> list[dict]:
    return [d for _, d in _events(herald, f"herald.automation_rule.{kind}.v1")]


def _ended(herald) -> list[dict]:
    return _of(herald, "run_succeeded") + _of(herald, "run_failed")


def _fired_count(herald) -> int:
    """Claims so far, in one cheap query (polled to kill the runner right after one)."""
    return query_one(herald, "SELECT count(*) FROM herald_events WHERE convert_from(state, 'UTF8')::jsonb->>'type'"
                             " = 'herald.automation_rule.fired.v1'")


def _phase(herald) -> str:
    """Where the runner was at the kill: the run of a fired occurrence that has not ended."""
    ended = {(d["rule_id"], d["occurrence_at"]) for d in _ended(herald)}
    open_runs = [d for d in _of(herald, "fired") if (d["rule_id"], d["occurrence_at"]) not in ended]
    if not open_runs:
        return "between runs"
    run = open_runs[0]
    generated = {d["generation_id"] for _, d in _events(herald, "herald.generation.succeeded.v1",
                                                        "herald.generation.failed.v1")}
    scheduled = {d["post_id"] for _, d in _events(herald, "herald.post.scheduled.v1")}
    if run["post_id"] in scheduled:
        return "post scheduled, run not ended"
    return "generated, not scheduled" if run["generation_id"] in generated else "claimed, not generated"


def test_a_killed_rule_runner_fires_each_occurrence_once(herald, settings, tmp_path):
    decide(herald.app, WS, "open", cmd.OpenWorkspace(name=WS, tier="pro", limit_overrides={
        "daily_generations": 100_000, "queue_size": 100_000, "daily_posts_per_platform": 100_000}))
    decide(herald.app, WS, "connect", cmd.ConnectSocialAccount(social_account_id="acc", platform="sandbox",
                                                               handle="acme"))
    decide(herald.app, WS, "grant", cmd.GrantCredits(amount=100_000))
    with FakeOpenAI() as fake:
        fake.fail_next("chat", 200, hang_s=20)  # the first call hangs: the runner is killed during it
        env = {"HERALD_GENERATION_PROVIDER": "openai", "HERALD_GENERATION_BASE_URL": fake.base_url + "/v1",
               "HERALD_GENERATION_MODEL": "gpt-test", "HERALD_GENERATION_API_KEY": "fake-key",
               "HERALD_GENERATION_TIMEOUT_S": "60", "HERALD_GENERATION_ATTEMPTS": "1",
               "HERALD_RULE_INTERVAL_S": "0.2"}
        with running(role_loops(herald, "relay", "projections")):
            for rule_id in RULES:
                decide(herald.app, WS, f"create-{rule_id}", cmd.CreateAutomationRule(
                    rule_id=rule_id, name=rule_id, schedule_kind="rrule", schedule="FREQ=SECONDLY;INTERVAL=3",
                    topic="fresh bread", destinations=["acc"]))
            (tmp_path / "0").mkdir()
            with role_processes(["processors"], settings, tmp_path / "0", **env) as [runner]:
                wait_until(lambda: fake.bodies and _of(herald, "fired"), "an occurrence claimed, its provider call "
                           "hanging", timeout=90, interval=0.05)
                runner.process.kill()  # SIGKILL: no clean shutdown
                runner.process.wait(timeout=10)
            assert _phase(herald) == "claimed, not generated"
            [first] = _of(herald, "fired")
            assert _events(herald, "herald.post.scheduled.v1") == []
            time.sleep(4)  # occurrences pass while no runner runs

            phases = []
            rng = random.Random(15)
            for n in range(1, 7):  # busy runs, each killed a random moment after a claim
                (tmp_path / str(n)).mkdir()
                with role_processes(["processors"], settings, tmp_path / str(n), **env) as [runner]:
                    before = len(_ended(herald))
                    wait_until(lambda: len(_ended(herald)) > before, "the runner at work", timeout=90, interval=0.05)
                    claimed = _fired_count(herald)
                    wait_until(lambda: _fired_count(herald) > claimed, "the next claim", timeout=30, interval=0.002)
                    time.sleep(rng.uniform(0, 0.12))
                    runner.process.kill()
                    runner.process.wait(timeout=10)
                phases.append(_phase(herald))

            (tmp_path / "last").mkdir()
            with role_processes(["processors"], settings, tmp_path / "last", **env) as [runner]:
                ended = len(_ended(herald))
                wait_until(lambda: len(_ended(herald)) > ended, "the runner back", timeout=90, interval=0.05)
                fake.fail_next("chat", 500)  # the next generation fails
                failed = wait_until(lambda: _of(herald, "run_failed"), "a failed generation recorded", timeout=60)
                failed_at = datetime.fromisoformat(failed[0]["occurrence_at"])
                wait_until(lambda: [d for d in _of(herald, "run_succeeded") if d["rule_id"] == failed[0]["rule_id"]
                                    and datetime.fromisoformat(d["occurrence_at"]) > failed_at],
                           "the rule's next occurrence posted", timeout=60)
                runner.stop()  # SIGTERM: ends cleanly, possibly mid-run ...
            (tmp_path / "drain").mkdir()
            with role_processes(["processors"], settings, tmp_path / "drain", **env):
                # ... so one more start finishes whatever was left open
                wait_until(lambda: _phase(herald) == "between runs", "every fired occurrence ended", timeout=60)

    print(f"kill phases: claimed, not generated (deterministic), then {phases}")
    fired = _of(herald, "fired")
    keys = [(d["rule_id"], d["occurrence_at"]) for d in fired]
    assert len(keys) == len(set(keys)), "no occurrence fired twice"
    for rule_id in RULES:
        times = [datetime.fromisoformat(at) for r, at in keys if r == rule_id]
        assert times == sorted(times), "a rule's occurrences fire in order"
    ended = Counter((d["rule_id"], d["occurrence_at"]) for d in _ended(herald))
    assert ended == Counter(keys), "every fired occurrence ended exactly once"
    posts = Counter(d["post_id"] for _, d in _events(herald, "herald.post.scheduled.v1"))
    succeeded = _of(herald, "run_succeeded")
    assert posts == Counter(run_post_id(WS, d["rule_id"], datetime.fromisoformat(d["occurrence_at"]))
                            for d in succeeded), "exactly one post per succeeded occurrence, no other"
    assert posts[first["post_id"]] == 1, "the occurrence claimed before the kill posted once"
    [failure] = _of(herald, "run_failed")
    assert failure["reason"] == "generation_transient" and "500" in failure["detail"]
    assert len(succeeded) >= 6
