"""Optimistic concurrency on PostgreSQL: when the HTTP path changes a wallet while the
handler is deciding a batch that touches it, the batch is decided again, nothing is lost
and nothing is applied twice."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from domain.application import HeraldApplication
from domain.wallet import Wallet
from herald.storage.db import connection_pool, eventsourcing_env
from herald.storage.event_store import versions_in
from schemas import commands as cmd
from tests.support import envelope

pytestmark = pytest.mark.integration
WS = "ws-contended"

Envelope = Callable[[str, cmd.Payload], cmd.CommandEnvelope]


def _commands_of(ws: str) -> Envelope:
    """(command id, payload) -> an envelope for workspace ``ws``."""
    return lambda command_id, payload: envelope(payload, workspace_id=ws, command_id=command_id)


@pytest.fixture
def warm_handler(database_url) -> Iterator[HeraldApplication]:
    """A handler's application that keeps the aggregates of a batch warm for the next one."""
    pool = connection_pool(database_url, max_size=2)
    yield HeraldApplication(eventsourcing_env(database_url), versions=versions_in(pool))
    pool.close()


def _stored_wallet(database_url: str, ws: str) -> Wallet:
    return HeraldApplication(eventsourcing_env(database_url)).find(Wallet, ws)


def test_a_batch_that_loses_a_race_is_decided_again(database_url):
    command = _commands_of(WS)
    gateway = HeraldApplication(eventsourcing_env(database_url))
    for c in [
        command("open", cmd.OpenWorkspace(name="C", tier="business")),
        command("connect", cmd.ConnectSocialAccount(social_account_id="acc", platform="sandbox", handle="c")),
        command("grant-1", cmd.GrantCredits(amount=3)),
    ]:
        assert gateway.handle(c).accepted

    interleaved, ticks = [], []

    def clock_that_lets_the_gateway_in() -> datetime:
        # By the second decision the batch holds the wallet in memory; that is when the HTTP
        # path grants credits on it. Without a re-decision posts 3 and 4 would find 3 credits.
        ticks.append(1)
        if len(ticks) == 2:
            interleaved.append(gateway.handle(command("grant-2", cmd.GrantCredits(amount=2))))
        return datetime.now(UTC)

    handler = HeraldApplication(eventsourcing_env(database_url), clock=clock_that_lets_the_gateway_in)
    batch = [command(f"post-{i}", cmd.SchedulePost(post_id=f"p{i}", text="x", destinations=["acc"])) for i in range(5)]
    decisions = handler.handle_batch(batch)

    assert interleaved and interleaved[0].accepted
    assert [d.accepted for d in decisions] == [True] * 5, "re-decided after the conflict with the new credits"
    wallet = _stored_wallet(database_url, WS)
    assert wallet.granted == 5 and wallet.held == 5 and wallet.available == 0
    assert len(wallet.holds) == 5
    assert handler.handle_batch(batch) == decisions, "a replayed batch changes nothing"
    assert _stored_wallet(database_url, WS).version == wallet.version


def test_a_warm_aggregate_changed_by_another_writer_between_batches_is_not_trusted(database_url, warm_handler):
    """Batches keep the aggregates they saved in memory for the next batch. When another writer
    changes one in between, the next batch's save fails on the version and it is decided again
    from the store: the credits granted meanwhile count, and nothing is lost."""
    ws = "ws-warm"
    command = _commands_of(ws)
    gateway = HeraldApplication(eventsourcing_env(database_url))
    setup = [
        command("open", cmd.OpenWorkspace(name="W", tier="business")),
        command("connect", cmd.ConnectSocialAccount(social_account_id="acc-w", platform="sandbox", handle="w")),
        command("grant-1", cmd.GrantCredits(amount=1)),
        command("post-0", cmd.SchedulePost(post_id="w0", text="x", destinations=["acc-w"])),
    ]
    assert all(d.accepted for d in warm_handler.handle_batch(setup))  # the wallet is now warm, with 0 available

    assert gateway.handle(command("grant-2", cmd.GrantCredits(amount=2))).accepted

    later = [command(f"post-{i}", cmd.SchedulePost(post_id=f"w{i}", text="x", destinations=["acc-w"]))
             for i in (1, 2, 3)]
    decisions = warm_handler.handle_batch(later)

    assert [d.accepted for d in decisions] == [True, True, False], "the warm wallet knew of no credits"
    assert decisions[2].reason_code == "insufficient_credits"
    wallet = _stored_wallet(database_url, ws)
    assert wallet.granted == 3 and wallet.held == 3 and wallet.available == 0


def test_warm_aggregates_spare_the_loads_of_the_next_batch(database_url, warm_handler):
    """What the warm set is for: a batch after a batch reads its workspace, wallet and
    accounts from memory (checked current in one query), not from the event store."""
    ws = "ws-warm-loads"
    command = _commands_of(ws)
    assert all(d.accepted for d in warm_handler.handle_batch([
        command("open", cmd.OpenWorkspace(name="L", tier="business")),
        command("connect", cmd.ConnectSocialAccount(social_account_id="acc-l", platform="sandbox", handle="l")),
        command("grant", cmd.GrantCredits(amount=5)),
    ]))
    loads: list[object] = []
    load = warm_handler._load
    warm_handler._load = lambda aggregate_id: loads.append(aggregate_id) or load(aggregate_id)
    decisions = warm_handler.handle_batch(
        [command(f"post-{i}", cmd.SchedulePost(post_id=f"l{i}", text="x", destinations=["acc-l"])) for i in range(3)]
    )
    assert all(d.accepted for d in decisions)
    assert loads == [], "workspace, wallet and account came warm; records and posts are known absent"
    wallet = _stored_wallet(database_url, ws)
    assert wallet.held == 3 and wallet.available == 2


def test_many_writers_on_one_workspace_queue_instead_of_conflicting(database_url):
    """Two "processes" (applications with caches of their own), four threads each, scheduling into
    one workspace at once: every command is decided, none fails on a conflict, and the wallet
    holds exactly what was accepted. (Without the cross-process locks this run saw 18 conflicts.)"""
    from concurrent.futures import ThreadPoolExecutor

    from herald.storage.event_store import recorded_at_in
    from herald.storage.locks import workspace_locks

    pools = [connection_pool(database_url, max_size=8) for _ in range(2)]
    apps = [HeraldApplication(eventsourcing_env(database_url), versions=versions_in(pool),
                              serialise=workspace_locks(pool), recorded_at=recorded_at_in(pool)) for pool in pools]
    try:
        command = _commands_of(WS)
        for c in [
            command("open", cmd.OpenWorkspace(name="C", tier="business", limit_overrides={
                "queue_size": 1000, "daily_posts_per_platform": 1000})),  # only credits may refuse
            command("connect-a", cmd.ConnectSocialAccount(social_account_id="acc-a", platform="sandbox", handle="a")),
            command("connect-b", cmd.ConnectSocialAccount(social_account_id="acc-b", platform="sandbox", handle="b")),
            command("grant", cmd.GrantCredits(amount=150)),  # 100 posts × 2 destinations: some must be refused
        ]:
            assert apps[0].handle(c).accepted

        def schedule(n: int):
            app = apps[n % 2]
            return app.handle(command(f"post-{n}", cmd.SchedulePost(text=f"#{n}", destinations=["acc-a", "acc-b"])))

        with ThreadPoolExecutor(max_workers=8) as threads:
            decisions = list(threads.map(schedule, range(100)))

        accepted = [d for d in decisions if d.accepted]
        assert len(accepted) == 75, "150 credits pay for 75 posts of two destinations"
        assert {d.reason_code for d in decisions if not d.accepted} == {"insufficient_credits"}
        assert all(d.position is not None for d in decisions)
        assert sum(app.conflicts for app in apps) == 0, "the workspace locks made the writers queue"
        wallet = _stored_wallet(database_url, WS)
        assert (wallet.available, wallet.held, len(wallet.holds)) == (0, 150, 150)
    finally:
        for app in apps:
            app.close()
        for pool in pools:
            pool.close()
