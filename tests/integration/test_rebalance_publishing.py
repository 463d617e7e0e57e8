"""A consumer-group rebalance while publishing is in flight: two `herald processors` processes
share the work, one leaves half-way, and still every destination is published exactly once
and every hold consumed exactly once."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from herald.runtime.wiring import Herald, run_loops
from schemas import commands as cmd
from tests.conftest import role_env
from tests.read_models import assert_queue_equals_rebuilt

pytestmark = pytest.mark.integration

WORKSPACES = [f"ws-{i}" for i in range(6)]
POSTS = 10  # per workspace, two destinations each


def _event_types(herald: Herald) -> Counter:
    notifications = herald.app.recorder.select_notifications(start=1, limit=1_000_000)
    return Counter(herald.app.mapper.to_domain_event(n).type for n in notifications)


def _published(herald: Herald) -> int:
    with herald.pool.connection() as conn:
        return conn.execute("SELECT count(*) FROM queue_destinations WHERE status = 'published'").fetchone()[0]


def _platform_posts(herald: Herald) -> int:
    with herald.pool.connection() as conn:
        return conn.execute("SELECT count(*) FROM sandbox_posts").fetchone()[0]


def test_one_of_two_publishing_processes_leaves_mid_stream(settings, pg_url, tmp_path):
    settings = settings.model_copy(update={"dispatch_interval_s": 0.2})
    herald = Herald(settings, settings.database_url, settings.kafka_bootstrap)
    herald.resume_relays(herald.prepare())
    stop = threading.Event()
    threads = run_loops([loop for role in ("relay", "handler", "projections") for loop in herald.loops(role)], stop)
    env = {**role_env(settings), "HERALD_DISPATCH_INTERVAL_S": "0.2"}
    logs = [tmp_path / f"processors-{n}.log" for n in range(2)]
    processes = [subprocess.Popen([sys.executable, "-m", "herald.cli", "processors"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=log.open("wb")) for log in logs]
    due = datetime.now(UTC) + timedelta(seconds=8)  # everything becomes due at once, after the set-up
    try:
        for ws in WORKSPACES:
            setup = [cmd.OpenWorkspace(name=ws, tier="business"),
                     cmd.ConnectSocialAccount(social_account_id=f"{ws}-a", platform="sandbox", handle="a"),
                     cmd.ConnectSocialAccount(social_account_id=f"{ws}-b", platform="sandbox", handle="b"),
                     cmd.GrantCredits(amount=100)]
            setup += [cmd.SchedulePost(post_id=f"{ws}-p{i}", text=f"post {i}", destinations=[f"{ws}-a", f"{ws}-b"],
                                       publish_at=due) for i in range(POSTS)]
            for n, payload in enumerate(setup):
                decision = herald.app.handle(cmd.CommandEnvelope.wrap(
                    payload, command_id=f"{ws}-{n}", workspace_id=ws, issued_by="t", issued_at=datetime.now(UTC)))
                assert decision.accepted, decision
        total = len(WORKSPACES) * POSTS * 2

        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and _platform_posts(herald) < 1:
            time.sleep(0.01)
        assert _platform_posts(herald) < total, "the rebalance should happen with work still in flight"
        processes[0].send_signal(signal.SIGTERM)  # leaves the groups; its partitions move to the other
        assert processes[0].wait(timeout=30) == 0, logs[0].read_text()[-2000:]

        while time.monotonic() < deadline and _published(herald) < total:
            time.sleep(0.2)
        assert _published(herald) == total
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _event_types(herald)["herald.wallet.hold_consumed.v1"] < total:
            time.sleep(0.2)
        time.sleep(2)  # a doubled effect would have arrived by now
        types = _event_types(herald)
        assert types["herald.post.destination_published.v1"] == total, "each destination published once"
        assert types["herald.post.attempt_started.v1"] == total, "no second attempt was needed or started"
        assert types["herald.wallet.hold_consumed.v1"] == total, "each hold consumed once"
        with herald.pool.connection() as conn:
            assert conn.execute("SELECT count(*) FROM sandbox_posts").fetchone()[0] == total
            assert conn.execute("SELECT count(*) FROM publish_journal WHERE state = 'done'").fetchone()[0] == total
        assert_queue_equals_rebuilt(herald, pg_url)
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=30)
        stop.set()
        for thread in threads:
            thread.join(timeout=20)
        herald.close()
