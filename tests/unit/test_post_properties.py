"""Property test of a post's publishing state machine under arbitrary command sequences.

Whatever order start-attempt, record-outcome and cancel commands arrive in (stale, early,
duplicated, replayed under a used command id), a destination is published at most once,
nothing happens to it after it reaches a terminal state, attempts start strictly in
sequence, and the post holds its queue slot exactly until it settles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.application import Decision, HeraldApplication
from domain.post import TERMINAL, Post
from domain.workspace import Workspace
from schemas import commands as cmd
from tests.unit.stores import AppFactory, make_app  # noqa: F401 - the fixture

T0 = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
WS = "ws-post-props"
POST = "post-1"
DESTINATIONS = ("acc-a", "acc-b")
OUTCOMES = [o.value for o in cmd.Outcome]
OUTCOME_EVENTS = {
    "herald.post.destination_published.v1": "published",
    "herald.post.retry_scheduled.v1": "retry_scheduled",
    "herald.post.destination_throttled.v1": "retry_scheduled",
    "herald.post.destination_failed.v1": "failed",
    "herald.post.outcome_unknown.v1": "outcome_unknown",
}


def _outcome(destination: str, attempt: int, outcome: str, retry_after_s: float | None) -> cmd.RecordPublishOutcome:
    return cmd.RecordPublishOutcome(
        post_id=POST,
        destination_id=destination,
        attempt=attempt,
        outcome=cmd.Outcome(outcome),
        platform_post_id=f"remote-{destination}-{attempt}" if outcome == "published" else None,
        retry_after_s=retry_after_s,
    )


@dataclass(frozen=True)
class Next:
    """What a well-behaved dispatcher/publisher would send next for a destination."""

    destination: str
    outcome: str  # reported if an attempt is running; otherwise the next attempt starts


destination_st = st.sampled_from(DESTINATIONS)
attempt_st = st.integers(1, 5)
outcome_st = st.sampled_from(OUTCOMES)
start_st = st.builds(
    lambda d, a: cmd.StartPublishAttempt(post_id=POST, destination_id=d, attempt=a), destination_st, attempt_st
)
outcome_cmd_st = st.builds(
    _outcome, destination_st, attempt_st, outcome_st, st.none() | st.sampled_from([0.0, 30.0, 600.0])
)
resolve_st = st.builds(
    lambda d, a, published: cmd.ResolvePublishOutcome(
        post_id=POST, destination_id=d, attempt=a,
        resolution=cmd.Resolution.published if published else cmd.Resolution.not_published,
        platform_post_id=f"found-{d}-{a}" if published else None),
    destination_st, attempt_st, st.booleans())
cancel_st = st.builds(lambda reason: cmd.CancelPost(post_id=POST, reason=reason), st.sampled_from(["user", "typo"]))
# Retries weigh more so that retry chains run to exhaustion (a 4th attempt's retry fails).
guided_st = st.builds(Next, destination_st, st.sampled_from(["retry", "retry", "retry", *OUTCOMES]))


def _command(roll: int) -> st.SearchStrategy[cmd.Payload | Next]:
    """Mostly what a dispatcher would send next (to get deep), often arbitrary, rarely a cancel."""
    if roll < 12:
        return guided_st
    if roll < 14:
        return start_st
    if roll < 16:
        return resolve_st
    return outcome_cmd_st if roll < 19 else cancel_st


def _clock_step(roll: int) -> int:
    """Seconds the clock moves before a command: mostly none, sometimes enough for a retry to
    come due, rarely past the missed window (which would skip what is still waiting)."""
    if roll < 28:
        return 0
    if roll < 39:
        return (15, 60, 300)[roll % 3]
    return 4000


step_st = st.tuples(
    st.integers(0, 19).flatmap(_command),
    st.sampled_from([None, None, None, None, "reused-0", "reused-1"]),  # None: a fresh command id
    st.integers(0, 39).map(_clock_step),
)


class Clock:
    now: datetime = T0


@dataclass
class Run:
    """One example on a shared application: its workspace, post and accounts carry a prefix of
    their own in the store (the PostgreSQL store outlives examples), translated at the edges so
    the rules below speak of POST and DESTINATIONS."""

    app: HeraldApplication
    clock: Clock
    prefix: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    decisions: dict[str, Decision] = field(default_factory=dict)
    fresh: int = 0
    history: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    read_up_to: int = 0

    def __post_init__(self) -> None:
        self.clock.now = T0
        self.read_up_to = self.app.recorder.max_notification_id() or 0
        self.ws, self.post_id = f"{WS}-{self.prefix}", f"{self.prefix}-{POST}"

    @property
    def now(self) -> datetime:
        return self.clock.now

    @now.setter
    def now(self, value: datetime) -> None:
        self.clock.now = value

    def account(self, destination: str) -> str:
        return f"{self.prefix}-{destination}"

    def unprefixed(self, account: str) -> str:
        return account.removeprefix(f"{self.prefix}-")

    def send(self, payload: cmd.Payload, command_id: str | None = None) -> tuple[str, Decision]:
        if command_id is None:
            self.fresh += 1
            command_id = f"fresh-{self.fresh}"
        if isinstance(payload, (cmd.StartPublishAttempt, cmd.RecordPublishOutcome, cmd.ResolvePublishOutcome)):
            payload = payload.model_copy(update={"post_id": self.post_id,
                                                 "destination_id": self.account(payload.destination_id)})
        elif isinstance(payload, cmd.CancelPost):
            payload = payload.model_copy(update={"post_id": self.post_id})
        envelope = cmd.CommandEnvelope.wrap(payload, command_id=command_id, workspace_id=self.ws, issued_by="props",
                                            issued_at=self.now)
        return command_id, self.app.handle(envelope)

    def setup(self) -> None:
        accounts = [self.account(d) for d in DESTINATIONS]
        commands: list[cmd.Payload] = [
            cmd.OpenWorkspace(name="props", tier=cmd.Tier.pro),
            *(cmd.ConnectSocialAccount(social_account_id=a, platform=cmd.Platform.sandbox, handle=a) for a in accounts),
            cmd.GrantCredits(amount=5),
            cmd.SchedulePost(post_id=self.post_id, text="hello", destinations=accounts, publish_at=T0),
        ]
        for payload in commands:
            _, decision = self.send(payload)
            assert decision.accepted, decision

    def post(self) -> Post:
        post = self.app.find(Post, self.post_id)
        assert post is not None
        return post

    def statuses(self) -> dict[str, str]:
        return {self.unprefixed(d): s.status for d, s in self.post().destinations.items()}

    def workspace(self) -> Workspace:
        workspace = self.app.find(Workspace, self.ws)
        assert workspace is not None
        return workspace

    def resolve(self, command: cmd.Payload | Next) -> cmd.Payload:
        if not isinstance(command, Next):
            return command
        dest = self.post().destinations[self.account(command.destination)]
        if dest.status == "attempting":
            return _outcome(command.destination, dest.attempt, command.outcome, None)
        return cmd.StartPublishAttempt(post_id=POST, destination_id=command.destination, attempt=dest.attempt + 1)

    def events(self) -> list[tuple[str, dict[str, Any]]]:
        """(type, data) of this example's events in notification order, with its own ids; reads
        only what is new."""
        notifications = self.app.recorder.select_notifications(start=self.read_up_to + 1, limit=1_000_000)
        for notification in notifications:
            event = self.app.mapper.to_domain_event(notification)
            self.read_up_to = notification.id
            if event.workspace_id != self.ws:
                continue
            data = dict(event.data)
            if "destination_id" in data:
                data["destination_id"] = self.unprefixed(data["destination_id"])
            if "cancelled_destinations" in data:
                data["cancelled_destinations"] = [self.unprefixed(d) for d in data["cancelled_destinations"]]
            self.history.append((event.type, data))
        return list(self.history)


def check_history(events: list[tuple[str, dict[str, Any]]]) -> dict[str, str]:
    """Replay the post's events against the rules; return each destination's status."""
    status = {d: "pending" for d in DESTINATIONS}
    started = {d: 0 for d in DESTINATIONS}
    published = {d: 0 for d in DESTINATIONS}
    for kind, data in events:
        if kind == "herald.post.cancelled.v1":
            for d in data["cancelled_destinations"]:
                assert status[d] in {"pending", "retry_scheduled"}, (kind, d, status[d])
                status[d] = "cancelled"
            continue
        if not kind.startswith("herald.post.") or kind == "herald.post.scheduled.v1":
            continue
        d = data["destination_id"]
        assert status[d] not in TERMINAL, f"{kind} after {d} was {status[d]}"
        if kind == "herald.post.attempt_started.v1":
            assert status[d] in {"pending", "retry_scheduled"}, (kind, d, status[d])
            assert data["attempt"] == started[d] + 1, f"{d} started attempt {data['attempt']} after {started[d]}"
            started[d], status[d] = data["attempt"], "attempting"
        elif kind == "herald.post.destination_skipped.v1":
            # Either the running attempt's outcome, or a missed window when the next one was due.
            assert status[d] in {"attempting", "pending", "retry_scheduled"}, (kind, d, status[d])
            status[d] = "skipped"
        elif status[d] == "outcome_unknown":  # only a resolution ends it
            assert kind in {"herald.post.destination_published.v1", "herald.post.destination_failed.v1"}, kind
            assert data["attempt"] == started[d], (kind, data, started[d])
            status[d] = OUTCOME_EVENTS[kind]
            published[d] += kind == "herald.post.destination_published.v1"
        else:
            assert status[d] == "attempting" and data["attempt"] == started[d], (kind, data, status[d], started[d])
            status[d] = OUTCOME_EVENTS[kind]
            published[d] += kind == "herald.post.destination_published.v1"
    assert all(count <= 1 for count in published.values()), published
    return status


@pytest.fixture
def shared_app(make_app: AppFactory) -> tuple[HeraldApplication, Clock]:
    clock = Clock()
    return make_app(lambda: clock.now), clock


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(steps=st.integers(1, 60).flatmap(lambda n: st.lists(step_st, min_size=n, max_size=n)))
def test_any_command_sequence_keeps_the_post_consistent(shared_app: tuple[HeraldApplication, Clock],
                                                        steps: list[tuple[Any, str | None, int]]) -> None:
    run = Run(*shared_app)  # the fixture's app serves every example; each example has ids of its own
    run.setup()
    for command, command_id, advance_s in steps:
        run.now += timedelta(seconds=advance_s)
        replay = command_id in run.decisions
        before = run.events() if replay else []
        command_id, decision = run.send(run.resolve(command), command_id)
        if replay:
            assert decision == run.decisions[command_id], "a replayed command id must return its first decision"
            assert run.events() == before, "a replayed command id must change nothing"
        run.decisions.setdefault(command_id, decision)

        events = run.events()
        status = check_history(events)
        post = run.post()
        assert run.statuses() == status
        kinds = [kind for kind, _ in events]
        assert kinds.count("herald.workspace.post_queued.v1") == 1
        assert kinds.count("herald.workspace.post_left_queue.v1") == (1 if post.settled else 0)
        assert (run.post_id in run.workspace().waiting_posts) == (not post.settled)
