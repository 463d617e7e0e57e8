"""Roles scale out as processes: two handler processes and two projection processes in the
same consumer groups give the results one of each would — every command decided once, and a
queue read model equal to one rebuilt from the event store from scratch. (Which process got
which partitions is up to the group coordinator; this test does not assert the split.)"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from domain.wallet import Wallet
from herald.runtime.wiring import Herald, run_loops
from tests.conftest import role_env
from tests.read_models import assert_queue_equals_rebuilt, queue_rows
from schemas import commands as cmd

pytestmark = pytest.mark.integration

WORKSPACES = [f"ws-{i}" for i in range(6)]
POSTS_PER_WORKSPACE = 15


def test_two_handlers_and_two_projections_share_the_work_without_doubling_it(settings, pg_url, tmp_path):
    herald = Herald(settings, settings.database_url, settings.kafka_bootstrap)
    herald.resume_relays(herald.prepare())
    later = datetime.now(UTC) + timedelta(days=1)  # nothing becomes due: only handler and projections work
    commands = []
    for ws in WORKSPACES:
        for c in [
            cmd.OpenWorkspace(name=ws, tier="business"),
            cmd.ConnectSocialAccount(social_account_id=f"{ws}-a", platform="sandbox", handle="a"),
            cmd.ConnectSocialAccount(social_account_id=f"{ws}-b", platform="sandbox", handle="b"),
            cmd.GrantCredits(amount=100),
            *[cmd.SchedulePost(post_id=f"{ws}-p{i}", text="x", destinations=[f"{ws}-a", f"{ws}-b"], publish_at=later)
              for i in range(POSTS_PER_WORKSPACE)],
        ]:
            commands.append(cmd.CommandEnvelope.wrap(c, command_id=f"{ws}-{len(commands)}", workspace_id=ws,
                                                     issued_by="t", issued_at=datetime.now(UTC)))
    stop = threading.Event()
    relay_threads = run_loops(herald.loops("relay"), stop)
    env = role_env(settings)
    logs = [tmp_path / f"{n}-{role}.log" for n, role in enumerate(("handler", "handler", "projections", "projections"))]
    processes = [subprocess.Popen([sys.executable, "-m", "herald.cli", log.stem.split("-", 1)[1]], env=env,
                                  stdout=subprocess.DEVNULL, stderr=log.open("wb"))  # a file: a pipe could fill up
                 for log in logs]
    try:
        for command in commands:
            herald.producer.send(settings.commands_topic, key=command.workspace_id.encode(),
                                 value=command.model_dump_json().encode())
        herald.producer.flush()
        expected_rows = len(WORKSPACES) * POSTS_PER_WORKSPACE * 2
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(queue_rows(settings.database_url)) < expected_rows:
            time.sleep(0.5)
        time.sleep(2)  # anything doubled would show up by now
        rows = queue_rows(settings.database_url)
        assert len(rows) == expected_rows
        for ws in WORKSPACES:
            wallet = herald.app.find(Wallet, ws)
            assert wallet.held == POSTS_PER_WORKSPACE * 2 and wallet.available == 100 - POSTS_PER_WORKSPACE * 2
        assert_queue_equals_rebuilt(herald, pg_url)
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(timeout=30) for process in processes]
        stop.set()
        for thread in relay_threads:
            thread.join(timeout=20)
        herald.close()
    assert codes == [0, 0, 0, 0], [log.read_text()[-2000:] for log in logs]
