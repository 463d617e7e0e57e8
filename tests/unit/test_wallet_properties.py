"""Stateful property test of the credit ledger, driven through HeraldApplication commands.

A simple model tracks grants and holds; after every step the wallet, its event history and
the model must agree, the balance must never go negative, every hold must end at most once,
and a replayed command id must change nothing.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from domain.application import Decision, HeraldApplication
from domain.post import hold_id_for
from domain.wallet import Wallet
from schemas import commands as cmd
from tests.unit.stores import AppFactory, make_app  # noqa: F401 - the fixture

T0 = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
WS = "ws-props"
ACCOUNTS = ("acc-1", "acc-2", "acc-3")
EXPIRIES = (None, timedelta(days=1), timedelta(days=2), timedelta(days=5))
HOLD_ENDS = {"herald.wallet.hold_consumed.v1": "consumed", "herald.wallet.hold_released.v1": "released"}


@dataclass
class ModelGrant:
    seq: int
    remaining: int
    expires_at: datetime | None
    reserved: int = 0


@dataclass
class Model:
    grants: dict[str, ModelGrant] = field(default_factory=dict)
    holds: dict[str, str] = field(default_factory=dict)  # hold id → pending | consumed | released
    reservations: dict[str, list[tuple[str, int]]] = field(default_factory=dict)  # hold id → grants it reserved
    consumed_amount: int = 0

    @property
    def pending(self) -> int:
        return sum(1 for status in self.holds.values() if status == "pending")

    @property
    def available(self) -> int:
        return sum(g.remaining for g in self.grants.values()) - self.pending

    def reserve(self, hold_id: str, amount: int) -> None:
        """A hold reserves from the earliest-expiring grant first (no expiry last; ties in grant order)."""
        order = sorted(
            self.grants.items(),
            key=lambda item: (item[1].expires_at is None, item[1].expires_at or T0, item[1].seq),
        )
        reserved = []
        for grant_id, grant in order:
            take = min(grant.remaining - grant.reserved, amount)
            if take > 0:
                grant.reserved += take
                amount -= take
                reserved.append((grant_id, take))
        assert amount == 0
        self.reservations[hold_id] = reserved

    def end(self, hold_id: str, consumed: bool) -> list[tuple[str, int]]:
        """The hold's reservation ends; a consumption burns exactly what it reserved."""
        reserved = self.reservations.pop(hold_id)
        for grant_id, amount in reserved:
            self.grants[grant_id].reserved -= amount
            if consumed:
                self.grants[grant_id].remaining -= amount
        return reserved


class WalletMachine(RuleBasedStateMachine):
    app: HeraldApplication  # set per store by the test below; each example has a workspace of its own

    @initialize(initial_credits=st.integers(0, 6))
    def open_workspace(self, initial_credits: int) -> None:
        self.ws = f"{WS}-{uuid.uuid4().hex[:8]}"
        self.first_position = (self.app.recorder.max_notification_id() or 0) + 1
        self.model = Model()
        self.ids = itertools.count(1)
        self.sent: dict[str, tuple[cmd.CommandEnvelope, Decision]] = {}
        self.posts = itertools.count(1)
        self.ok(cmd.OpenWorkspace(name="props", tier=cmd.Tier.business))
        for account in ACCOUNTS:
            self.ok(cmd.ConnectSocialAccount(social_account_id=f"{self.ws}-{account}", platform=cmd.Platform.sandbox, handle=account))
        if initial_credits:
            self.grant(initial_credits, None)

    # Sending -------------------------------------------------------------------------

    def send(self, payload: cmd.Payload) -> Decision:
        command_id = f"cmd-{next(self.ids)}"
        envelope = cmd.CommandEnvelope.wrap(payload, command_id=command_id, workspace_id=self.ws, issued_by="props",
                                            issued_at=T0)
        decision = self.app.handle(envelope)
        self.sent[command_id] = (envelope, decision)
        return decision

    def ok(self, payload: cmd.Payload) -> Decision:
        decision = self.send(payload)
        assert decision.accepted, decision
        return decision

    def events(self) -> list[tuple[str, dict[str, Any]]]:
        notifications = self.app.recorder.select_notifications(start=self.first_position, limit=1_000_000)
        events = map(self.app.mapper.to_domain_event, notifications)
        return [(e.type, e.data) for e in events if e.workspace_id == self.ws]

    def wallet(self) -> Wallet:
        wallet = self.app.find(Wallet, self.ws)
        assert wallet is not None
        return wallet

    # Rules ---------------------------------------------------------------------------

    @rule(amount=st.integers(1, 5), expires_in=st.sampled_from(EXPIRIES))
    def grant(self, amount: int, expires_in: timedelta | None) -> None:
        expires_at = T0 + expires_in if expires_in is not None else None
        grant_id = self.ok(cmd.GrantCredits(amount=amount, expires_at=expires_at)).result["grant_id"]
        self.model.grants[grant_id] = ModelGrant(len(self.model.grants), amount, expires_at)

    @rule(destinations=st.lists(st.sampled_from(ACCOUNTS), min_size=1, max_size=3, unique=True))
    def schedule(self, destinations: list[str]) -> None:
        post_id = f"{self.ws}-post-{next(self.posts)}"
        destinations = [f"{self.ws}-{account}" for account in destinations]
        decision = self.send(cmd.SchedulePost(post_id=post_id, text="hi", destinations=destinations))
        if self.model.available >= len(destinations):
            assert decision.accepted, decision
            for destination in destinations:
                self.model.holds[hold_id_for(post_id, destination)] = "pending"
                self.model.reserve(hold_id_for(post_id, destination), 1)
        else:
            assert decision.reason_code == "insufficient_credits", decision

    @precondition(lambda self: self.model.holds)
    @rule(data=st.data())
    def consume(self, data: st.DataObject) -> None:
        self._settle(self._any_hold(data), consume=True)

    @precondition(lambda self: self.model.holds)
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        self._settle(self._any_hold(data), consume=False)

    @precondition(lambda self: any(status != "pending" for status in self.model.holds.values()))
    @rule(data=st.data(), consume=st.booleans())
    def settle_again(self, data: st.DataObject, consume: bool) -> None:
        """Consume after release, release after consume, or the same end twice: all refused."""
        settled = [h for h, status in self.model.holds.items() if status != "pending"]  # step order: ids differ per run
        self._settle(data.draw(st.sampled_from(settled), label="settled hold"), consume=consume)

    @rule(consume=st.booleans())
    def settle_unknown_hold(self, consume: bool) -> None:
        self._settle("no-such-hold", consume=consume)

    def _any_hold(self, data: st.DataObject) -> str:
        return data.draw(st.sampled_from(list(self.model.holds)), label="hold")

    def _settle(self, hold_id: str, *, consume: bool) -> None:
        payload = cmd.ConsumeHold(hold_id=hold_id) if consume else cmd.ReleaseHold(hold_id=hold_id)
        decision = self.send(payload)
        if self.model.holds.get(hold_id) != "pending":  # never placed, or ended already
            assert decision.reason_code == "hold_not_pending", decision
            return
        assert decision.accepted, decision
        if consume:
            self.model.holds[hold_id] = "consumed"
            self.model.consumed_amount += 1
            expected_burn = self.model.end(hold_id, consumed=True)
            last = [data for kind, data in self.events() if kind == "herald.wallet.hold_consumed.v1"][-1]
            assert [(b["grant_id"], b["amount"]) for b in last["burned"]] == expected_burn
        else:
            self.model.holds[hold_id] = "released"
            self.model.end(hold_id, consumed=False)

    @precondition(lambda self: self.sent)
    @rule(data=st.data(), different_payload=st.booleans())
    def replay(self, data: st.DataObject, different_payload: bool) -> None:
        """A command id seen before returns its first decision and changes nothing."""
        command_id = data.draw(st.sampled_from(sorted(self.sent)), label="replayed command id")
        envelope, first = self.sent[command_id]
        if different_payload:
            envelope = cmd.CommandEnvelope.wrap(
                cmd.GrantCredits(amount=1_000), command_id=command_id, workspace_id=self.ws, issued_by="props",
                issued_at=T0,
            )
        before = self.events()
        assert self.app.handle(envelope) == first
        assert self.events() == before

    # Invariants ----------------------------------------------------------------------

    @invariant()
    def wallet_agrees_with_the_model(self) -> None:
        wallet = self.wallet()
        assert wallet.available >= 0
        assert wallet.available == wallet.granted - wallet.held == self.model.available
        # Bounded state: only grants with credits left and only pending holds.
        assert {g_id: g.remaining for g_id, g in wallet.grants.items()} == {
            g_id: g.remaining for g_id, g in self.model.grants.items() if g.remaining > 0
        }
        assert set(wallet.holds) == {h_id for h_id, status in self.model.holds.items() if status == "pending"}

    @invariant()
    def history_agrees_with_the_model(self) -> None:
        granted = burned = 0
        amounts: dict[str, int] = {}
        ends: dict[str, list[str]] = {}
        for kind, data in self.events():
            if kind == "herald.wallet.credits_granted.v1":
                granted += data["amount"]
            elif kind == "herald.wallet.hold_placed.v1":
                amounts[data["hold_id"]] = data["amount"]
                ends.setdefault(data["hold_id"], [])
            elif kind in HOLD_ENDS:
                ends[data["hold_id"]].append(HOLD_ENDS[kind])
                if kind == "herald.wallet.hold_consumed.v1":
                    assert sum(b["amount"] for b in data["burned"]) == data["amount"]
                    burned += data["amount"]
        assert all(len(end) <= 1 for end in ends.values()), ends
        assert {h: end[0] if end else "pending" for h, end in ends.items()} == self.model.holds
        pending = sum(amount for hold_id, amount in amounts.items() if not ends[hold_id])
        assert burned == self.model.consumed_amount
        assert granted - burned - pending == self.model.available


def test_the_wallet_keeps_its_invariants(make_app: AppFactory) -> None:
    WalletMachine.app = make_app(lambda: T0)
    run_state_machine_as_test(WalletMachine, settings=settings(
        max_examples=50, stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    ))
