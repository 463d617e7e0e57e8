"""topoff: planned slots for 1,000 accounts × 28 days, decided by the domain on PostgreSQL.

Setup (not timed): a database of its own; 100 workspaces of 10 sandbox accounts each, every account
with a posting schedule of two posts a day (09:00 and 17:30, America/Los_Angeles: the 28 days
cross nothing or a DST change depending on the date, as in production). Timed: one
``top_off_slots`` command per workspace, decided through ``HeraldApplication.handle_batch`` (as the
handler decides the daily ticker's commands), ``--topoff-batch`` commands per transaction, with the
workspace locks and the one-query version check as wired. Then the same again: a top-off that finds
every slot there (the daily re-run) creates none.

``topoff_slots_per_s`` = slots created / seconds of the first pass; ``topoff_noop_accounts_per_s``:
accounts checked per second by the second pass, which must create 0 slots.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from domain.application import HeraldApplication
from herald.storage import db, event_store
from herald.storage.locks import workspace_locks
from schemas import commands as cmd

ZONE = "America/Los_Angeles"


@dataclass(frozen=True)
class Options:
    accounts: int = 1_000
    per_workspace: int = 10
    batch: int = 10


def run(opts: Options, tag: str, server_url: str, say: Callable[[str], None]) -> dict:
    db_name = f"herald_bench_topoff_{tag}"
    db.create_database(server_url, db_name)
    try:
        return measure(opts, db.with_database(server_url, db_name), say)
    finally:
        db.drop_database(server_url, db_name)


def _envelope(payload: cmd.Payload, ws: str, command_id: str) -> cmd.CommandEnvelope:
    from datetime import UTC, datetime

    return cmd.CommandEnvelope.wrap(payload, command_id=command_id, workspace_id=ws, issued_by="bench",
                                    issued_at=datetime.now(UTC))


def measure(opts: Options, database_url: str, say: Callable[[str], None]) -> dict:
    pool = db.connection_pool(database_url, max_size=4)
    lock_pool = db.connection_pool(database_url, max_size=4)
    env = {**db.eventsourcing_env(database_url), "APPLICATION_RECORDER_TOPIC": event_store.RECORDER_TOPIC}
    app = HeraldApplication(env, versions=event_store.versions_in(pool), serialise=workspace_locks(lock_pool),
                            recorded_at=event_store.recorded_at_in(pool))
    try:
        workspaces = [f"ws-{n}" for n in range(-(-opts.accounts // opts.per_workspace))]
        started = time.perf_counter()
        setup = []
        made = 0
        for ws in workspaces:
            setup.append(_envelope(cmd.OpenWorkspace(name=ws, tier="business", timezone=ZONE,
                                                     limit_overrides={"accounts_per_platform": opts.per_workspace}),
                                   ws, f"{ws}-open"))
            for n in range(min(opts.per_workspace, opts.accounts - made)):
                account = f"{ws}-a{n}"
                setup.append(_envelope(cmd.ConnectSocialAccount(social_account_id=account, platform="sandbox",
                                                                handle=account), ws, f"{account}-connect"))
                setup.append(_envelope(cmd.SetPostingSchedule(social_account_id=account, posts_per_week=14,
                                                              times=["09:00", "17:30"]), ws, f"{account}-schedule"))
                made += 1
        for i in range(0, len(setup), 500):
            for decision in app.handle_batch(setup[i:i + 500]):
                assert decision.accepted, decision
        say(f"topoff setup: {made:,} accounts in {len(workspaces):,} workspaces, in {time.perf_counter() - started:.1f} s")

        def top_off(round_name: str) -> tuple[int, float]:
            commands = [_envelope(cmd.TopOffSlots(), ws, f"{ws}-{round_name}") for ws in workspaces]
            t0 = time.perf_counter()
            created = 0
            for i in range(0, len(commands), opts.batch):
                for decision in app.handle_batch(commands[i:i + opts.batch]):
                    assert decision.accepted, decision
                    created += decision.result["slots_created"]
            return created, time.perf_counter() - t0

        created, elapsed = top_off("first")
        say(f"topoff: {created:,} slots for {made:,} accounts × 28 days in {elapsed:.2f} s "
            f"({created / elapsed:,.0f} slots/s)")
        again, again_s = top_off("again")
        say(f"topoff again: {again} slots created, {made:,} accounts checked in {again_s:.2f} s")
        if again:
            raise AssertionError(f"the second top-off created {again} slots")
        return {"topoff_slots": created, "topoff_slots_per_s": round(created / elapsed, 1),
                "topoff_noop_accounts_per_s": round(made / again_s, 1)}
    finally:
        app.close()
        pool.close()
        lock_pool.close()
