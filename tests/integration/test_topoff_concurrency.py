"""Top-off from two OS processes at once against one PostgreSQL: every slot is planned once.

Each process runs its own HeraldApplication (as two handler or gateway processes would) and sends
top-offs for the same workspace in a loop, some with the same command id, most with their own.
With the workspace locks they queue; without them (``serialise`` off) the event store's version
check on each account's slot plan makes the loser decide again. Either way no (account, instant)
is planned twice, and the total is what the schedules make."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from domain.application import HeraldApplication
from domain.planning import wall_time
from herald.storage import db, event_store
from herald.storage.locks import workspace_locks
from schemas import commands as cmd
from tests.support.commands import envelope

pytestmark = pytest.mark.integration

WS = "planning"
ACCOUNTS = [f"acc-{i}" for i in range(12)]
ROUNDS = 15
BASE = datetime(2030, 3, 1, 12, 0, tzinfo=UTC)  # LA springs forward on 10 March 2030, inside the window
WEEKLY = wall_time.spread(10, ["09:00", "17:30"])


def _app(url: str, locks: bool, create_tables: bool = False) -> tuple[HeraldApplication, object]:
    pool = db.connection_pool(url, max_size=4)
    # The test's own process made the tables (as `prepare` does under its schema lock in Herald).
    env = {**db.eventsourcing_env(url), "APPLICATION_RECORDER_TOPIC": event_store.RECORDER_TOPIC,
           "CREATE_TABLE": "y" if create_tables else "n"}
    app = HeraldApplication(env, versions=event_store.versions_in(pool),
                            serialise=workspace_locks(pool) if locks else None,
                            recorded_at=event_store.recorded_at_in(pool))
    return app, pool


def _top_off_repeatedly(url: str, locks: bool, name: str, start, results) -> None:
    try:
        _run(url, locks, name, start, results)
    except BaseException as error:  # reported to the test, which fails with it
        import traceback
        results.put((name, None, "".join(traceback.format_exception(error))))


def _run(url: str, locks: bool, name: str, start, results) -> None:
    app, pool = _app(url, locks)
    start.wait(60)  # both processes ready: their rounds run side by side
    created: dict[str, int] = {}
    for n in range(ROUNDS):
        # Round n is day n for both processes: each round has a new day of slots to plan, so the two
        # contend for the same slot plans round after round.
        app.clock = lambda n=n: BASE + timedelta(days=n)
        command_id = f"shared-{n}" if n % 5 == 0 else f"{name}-{n}"  # every fifth id is sent by both
        decision = app.handle(envelope(cmd.TopOffSlots(), workspace_id=WS, command_id=command_id))
        assert decision.accepted, decision
        created[command_id] = decision.result["slots_created"]  # a repeated id answers its first outcome
    results.put((name, created, app.conflicts))
    app.close()
    pool.close()


@pytest.mark.parametrize("locks", [True, False], ids=["workspace-locks", "version-check-only"])
def test_two_processes_topping_off_at_once_plan_each_slot_once(database_url: str, locks: bool) -> None:
    app, pool = _app(database_url, locks=True, create_tables=True)
    app.clock = lambda: BASE
    app.handle(envelope(cmd.OpenWorkspace(name=WS, tier="business", timezone="America/Los_Angeles",
                                          limit_overrides={"accounts_per_platform": 100}),
                        workspace_id=WS, command_id="open"))
    for account in ACCOUNTS:
        for payload in (cmd.ConnectSocialAccount(social_account_id=account, platform="sandbox", handle=account),
                        cmd.SetPostingSchedule(social_account_id=account, posts_per_week=10, times=["09:00", "17:30"])):
            decision = app.handle(envelope(payload, workspace_id=WS, command_id=f"{account}-{type(payload).__name__}"))
            assert decision.accepted, decision

    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(2), context.Queue()
    workers = [context.Process(target=_top_off_repeatedly, args=(database_url, locks, name, start, results))
               for name in ("one", "two")]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for name, created, detail in outcomes:
        assert created is not None, f"process {name} failed:\n{detail}"
    for worker in workers:
        worker.join(30)
        assert worker.exitcode == 0

    notifications = app.recorder.select_notifications(start=1, limit=1_000_000)
    events = [app.mapper.to_domain_event(n) for n in notifications]
    planned = [(e.data["social_account_id"], s["at"]) for e in events
               if e.type == "herald.posting_schedule.slots_planned.v1" for s in e.data["slots"]]
    slot_ids = [s["slot_id"] for e in events if e.type == "herald.posting_schedule.slots_planned.v1"
                for s in e.data["slots"]]
    assert len(planned) == len(set(planned)) and len(slot_ids) == len(set(slot_ids)), "a slot planned twice"
    # Exactly the slots the schedules make over the union of the windows: (BASE, last round + 28 days].
    expected = list(wall_time.occurrences(WEEKLY, ZoneInfo("America/Los_Angeles"), BASE,
                                          BASE + timedelta(days=ROUNDS - 1 + 28)))
    assert len(planned) == len(expected) * len(ACCOUNTS)
    by_command = {command_id: n for _name, created, _conflicts in outcomes for command_id, n in created.items()}
    assert sum(by_command.values()) == len(planned)
    accepted = [e for e in events if e.type == "herald.command.accepted.v1"
                and e.data["command_type"] == "top_off_slots.v1"]
    assert len(accepted) == ROUNDS * 2 - ROUNDS // 5  # the shared ids were decided once
    app.clock = lambda: BASE + timedelta(days=ROUNDS - 1)
    again = app.handle(envelope(cmd.TopOffSlots(), workspace_id=WS, command_id="after"))
    assert again.result["slots_created"] == 0
    print("saves that conflicted and were decided again, per process:", [c for _n, _c, c in outcomes])
    app.close()
    pool.close()
