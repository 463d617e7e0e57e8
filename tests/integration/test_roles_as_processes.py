"""Roles scale out as processes: two handler processes and two projection processes in the
same consumer groups give the results one of each would — every command decided once, and a
queue read model equal to one rebuilt from the event store from scratch. (Which process got
which partitions is up to the group coordinator; this test does not assert the split.)"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from domain.wallet import Wallet
from tests.support import (
    assert_queue_equals_rebuilt, numbered, queue_rows, role_processes, running, sandbox_workspace, wait_until,
)

pytestmark = pytest.mark.integration

WORKSPACES = [f"ws-{i}" for i in range(6)]
POSTS_PER_WORKSPACE = 15


def test_two_handlers_and_two_projections_share_the_work_without_doubling_it(herald, settings, pg_url, tmp_path):
    later = datetime.now(UTC) + timedelta(days=1)  # nothing becomes due: only handler and projections work
    commands = [command for ws in WORKSPACES for command in numbered(ws, sandbox_workspace(
        ws, accounts=("a", "b"), credits=100, posts=POSTS_PER_WORKSPACE, publish_at=later))]
    with (running(herald.loops("relay")),
          role_processes(["handler", "handler", "projections", "projections"], settings, tmp_path) as processes):
        for command in commands:
            herald.producer.send(settings.commands_topic, key=command.workspace_id.encode(),
                                 value=command.model_dump_json().encode())
        herald.producer.flush()
        expected_rows = len(WORKSPACES) * POSTS_PER_WORKSPACE * 2
        wait_until(lambda: len(queue_rows(settings.database_url)) >= expected_rows, "every destination projected",
                   timeout=120, interval=0.5)
        time.sleep(2)  # anything doubled would show up by now
        rows = queue_rows(settings.database_url)
        assert len(rows) == expected_rows
        for ws in WORKSPACES:
            wallet = herald.app.find(Wallet, ws)
            assert wallet.held == POSTS_PER_WORKSPACE * 2 and wallet.available == 100 - POSTS_PER_WORKSPACE * 2
        assert_queue_equals_rebuilt(herald, pg_url)
    assert [p.returncode for p in processes] == [0, 0, 0, 0], [p.log_tail() for p in processes]
