"""The rule runner on a Ticker: read the due and pending rules, run each under its advisory lock.

The lock (session level, on a connection held for the run) keeps two runner processes from doing
the same run at once; it is not what makes a run happen once — the derived command ids are
(processors/automation/runner.py). A runner killed mid-run drops its connection and with it the
lock; the next tick of any runner finishes the run."""

from __future__ import annotations

import logging
import zlib
from datetime import UTC, datetime

from psycopg_pool import ConnectionPool

from domain.automation.schedule import Schedule
from herald.runtime import metrics
from herald.runtime.ticker import Ticker
from processors.automation.runner import RuleDue, RuleRunner
from projections import automation_rules

log = logging.getLogger(__name__)

LOCK_NAMESPACE = 0x5255  # first key of the two-int advisory lock form: automation rule runs


def _rule(row: dict) -> RuleDue:
    d = row["definition"]
    return RuleDue(workspace_id=row["workspace_id"], rule_id=row["rule_id"],
                   schedule=Schedule(d["schedule_kind"], d["schedule"], datetime.fromisoformat(d["anchor"]),
                                     d["timezone"]),
                   cursor=row["cursor_at"], next_run_at=row["next_run_at"], pending_occurrence=row["run_occurrence_at"])


def run_once(pool: ConnectionPool, runner: RuleRunner, *, limit: int, name: str = "rule-runner") -> int:
    with pool.connection() as conn:
        rows = automation_rules.due_rules(conn, datetime.now(UTC), limit)
    done = 0
    for row in rows:
        key = zlib.crc32(f"{row['workspace_id']}/{row['rule_id']}".encode()) - 2**31
        with pool.connection() as lock:
            if not lock.execute("SELECT pg_try_advisory_lock(%s, %s)", (LOCK_NAMESPACE, key)).fetchone()[0]:
                continue  # another runner has it
            try:
                outcome = runner.run(_rule(row))
                log.info("automation rule %s/%s: %s", row["workspace_id"], row["rule_id"], outcome)
                done += 1
            finally:
                lock.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_NAMESPACE, key))
        metrics.beat(name)  # a tick of slow provider calls is still a live loop
    return done


def rule_ticker(pool: ConnectionPool, runner: RuleRunner, *, interval_s: float, limit: int,
                name: str = "rule-runner") -> Ticker:
    return Ticker(name, interval_s, lambda: run_once(pool, runner, limit=limit, name=name), full=limit)
