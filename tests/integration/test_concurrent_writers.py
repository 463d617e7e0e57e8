"""Optimistic concurrency on PostgreSQL: when the HTTP path changes a wallet while the
handler is deciding a batch that touches it, the batch is decided again, nothing is lost
and nothing is applied twice."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.application import HeraldApplication
from domain.wallet import Wallet
from herald.db import eventsourcing_env
from schemas import commands as cmd

pytestmark = pytest.mark.integration
WS = "ws-contended"


def _envelope(command_id: str, payload: cmd.Payload) -> cmd.CommandEnvelope:
    return cmd.CommandEnvelope.wrap(payload, command_id=command_id, workspace_id=WS, issued_by="t",
                                    issued_at=datetime.now(UTC))


def test_a_batch_that_loses_a_race_is_decided_again(database_url):
    gateway = HeraldApplication(eventsourcing_env(database_url))
    for c in [
        _envelope("open", cmd.OpenWorkspace(name="C", tier="business")),
        _envelope("connect", cmd.ConnectSocialAccount(social_account_id="acc", platform="sandbox", handle="c")),
        _envelope("grant-1", cmd.GrantCredits(amount=3)),
    ]:
        assert gateway.handle(c).accepted

    interleaved, ticks = [], []

    def clock_that_lets_the_gateway_in() -> datetime:
        # By the second decision the batch holds the wallet in memory; that is when the HTTP
        # path grants credits on it. Without a re-decision posts 3 and 4 would find 3 credits.
        ticks.append(1)
        if len(ticks) == 2:
            interleaved.append(gateway.handle(_envelope("grant-2", cmd.GrantCredits(amount=2))))
        return datetime.now(UTC)

    handler = HeraldApplication(eventsourcing_env(database_url), clock=clock_that_lets_the_gateway_in)
    batch = [_envelope(f"post-{i}", cmd.SchedulePost(post_id=f"p{i}", text="x", destinations=["acc"]))
             for i in range(5)]
    decisions = handler.handle_batch(batch)

    assert interleaved and interleaved[0].accepted
    assert [d.accepted for d in decisions] == [True] * 5, "re-decided after the conflict with the new credits"
    wallet = HeraldApplication(eventsourcing_env(database_url)).find(Wallet, WS)
    assert wallet.granted == 5 and wallet.held == 5 and wallet.available == 0
    assert len(wallet.holds) == 5
    assert handler.handle_batch(batch) == decisions, "a replayed batch changes nothing"
    assert HeraldApplication(eventsourcing_env(database_url)).find(Wallet, WS).version == wallet.version
