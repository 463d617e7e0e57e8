"""Example-based tests of HeraldApplication on in-memory persistence with a controllable clock."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from domain.application import Decision, HeraldApplication
from domain.post import Post, PublishPolicy, hold_id_for
from domain.account import SocialAccount
from domain.wallet import Wallet
from domain.workspace import Workspace
from schemas import commands as cmd
from tests.unit.stores import AppFactory, make_app  # noqa: F401 - the fixture

T0 = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
WS = "ws-1"
OTHER_WS = "ws-2"


class Herald:
    """One HeraldApplication on the test's event store, with a clock the test moves."""

    def __init__(self, make_app: AppFactory) -> None:
        self.now = T0
        self.app = make_app(lambda: self.now)
        self._ids = itertools.count(1)

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def envelope(self, payload: cmd.Payload, *, command_id: str | None = None, workspace: str = WS,
                 issued_by: str = "tests") -> cmd.CommandEnvelope:
        return cmd.CommandEnvelope.wrap(
            payload,
            command_id=command_id or f"cmd-{next(self._ids)}",
            workspace_id=workspace,
            issued_by=issued_by,
            issued_at=self.now,
        )

    def send(self, payload: cmd.Payload, *, command_id: str | None = None, workspace: str = WS,
             issued_by: str = "tests") -> Decision:
        return self.app.handle(self.envelope(payload, command_id=command_id, workspace=workspace, issued_by=issued_by))

    def send_raw(self, command_type: str, payload: dict[str, Any], *, command_id: str, workspace: str = WS) -> Decision:
        envelope = cmd.CommandEnvelope(
            command_id=command_id,
            type=command_type,
            workspace_id=workspace,
            issued_at=self.now,
            issued_by="tests",
            payload=payload,
        )
        return self.app.handle(envelope)

    def ok(self, payload: cmd.Payload, **kwargs: Any) -> dict[str, Any]:
        decision = self.send(payload, **kwargs)
        assert decision.accepted, decision
        return decision.result

    def rejected(self, payload: cmd.Payload, reason: str, **kwargs: Any) -> Decision:
        decision = self.send(payload, **kwargs)
        assert not decision.accepted and decision.reason_code == reason, decision
        return decision

    # Reading -------------------------------------------------------------------------

    def events(self) -> list[tuple[str, dict[str, Any], str]]:
        """(type, data, causation id) of every stored event, in notification order."""
        notifications = self.app.recorder.select_notifications(start=1, limit=1_000_000)
        decoded = [self.app.mapper.to_domain_event(n) for n in notifications]
        return [(e.type, e.data, e.causation_id) for e in decoded]

    def events_of(self, type_name: str) -> list[dict[str, Any]]:
        return [data for kind, data, _ in self.events() if kind == type_name]

    def workspace(self, workspace: str = WS) -> Workspace:
        found = self.app.find(Workspace, workspace)
        assert found is not None
        return found

    def wallet(self, workspace: str = WS) -> Wallet:
        found = self.app.find(Wallet, workspace)
        assert found is not None
        return found

    def post(self, post_id: str) -> Post:
        found = self.app.find(Post, post_id)
        assert found is not None
        return found

    # Setting up ----------------------------------------------------------------------

    def open(self, workspace: str = WS, tier: str = "free", **overrides: int) -> None:
        self.ok(cmd.OpenWorkspace(name=workspace, tier=cmd.Tier(tier), limit_overrides=overrides), workspace=workspace)

    def connect(self, account_id: str, platform: str = "sandbox", workspace: str = WS) -> str:
        payload = cmd.ConnectSocialAccount(social_account_id=account_id, platform=platform, handle=f"@{account_id}")
        return self.ok(payload, workspace=workspace)["social_account_id"]

    def grant(self, amount: int, expires_in: timedelta | None = None, grant_id: str | None = None, workspace: str = WS) -> str:
        expires_at = self.now + expires_in if expires_in is not None else None
        payload = cmd.GrantCredits(grant_id=grant_id, amount=amount, expires_at=expires_at)
        return self.ok(payload, workspace=workspace)["grant_id"]

    def schedule(self, post_id: str, *destinations: str, publish_in_s: float = 0, **extra: Any) -> dict[str, Any]:
        payload = cmd.SchedulePost(
            post_id=post_id,
            text="hello",
            destinations=list(destinations),
            publish_at=self.now + timedelta(seconds=publish_in_s),
            **extra,
        )
        return self.ok(payload)

    def start(self, post_id: str, destination: str, attempt: int = 1, **kwargs: Any) -> Decision:
        return self.send(cmd.StartPublishAttempt(post_id=post_id, destination_id=destination, attempt=attempt), **kwargs)

    def outcome(self, post_id: str, destination: str, attempt: int, outcome: str, **fields: Any) -> Decision:
        if outcome == "published":
            fields.setdefault("platform_post_id", f"remote-{destination}-{attempt}")
        payload = cmd.RecordPublishOutcome(
            post_id=post_id, destination_id=destination, attempt=attempt, outcome=cmd.Outcome(outcome), **fields
        )
        return self.send(payload)


@pytest.fixture
def h(make_app: AppFactory) -> Herald:
    return Herald(make_app)


@pytest.fixture
def ready(h: Herald) -> Herald:
    """A pro workspace with two sandbox accounts and 10 credits."""
    h.open(tier="pro")
    h.connect("acc-a")
    h.connect("acc-b")
    h.grant(10)
    return h


def _accepted(decision: Decision) -> dict[str, Any]:
    assert decision.accepted, decision
    return decision.result


# Workspace ------------------------------------------------------------------------------


def test_opening_a_workspace_records_its_limits_and_an_empty_wallet(h: Herald) -> None:
    h.open(tier="pro", queue_size=7)
    workspace = h.workspace()
    assert (workspace.tier, workspace.limit("queue_size"), workspace.limit("accounts_per_platform")) == ("pro", 7, 3)
    (opened,) = h.events_of("herald.workspace.opened.v1")
    assert opened["limits"]["queue_size"] == 7 and opened["limits"]["monthly_credits"] == 500
    assert h.wallet().available == 0


def test_opening_a_workspace_twice_is_rejected(h: Herald) -> None:
    h.open()
    h.rejected(cmd.OpenWorkspace(name="again", tier=cmd.Tier.business), "workspace_exists")
    assert h.workspace().tier == "free"
    assert len(h.events_of("herald.workspace.opened.v1")) == 1


def test_commands_for_an_unknown_workspace_are_rejected(h: Herald) -> None:
    h.rejected(cmd.GrantCredits(amount=5), "unknown_workspace")
    h.rejected(cmd.ConnectSocialAccount(platform=cmd.Platform.sandbox, handle="@x"), "unknown_workspace")


# Social accounts ------------------------------------------------------------------------


@pytest.mark.parametrize(("tier", "allowed"), [("free", 1), ("pro", 3), ("business", 10)])
def test_accounts_per_platform_follow_the_tier(h: Herald, tier: str, allowed: int) -> None:
    h.open(tier=tier)
    for n in range(allowed):
        h.connect(f"acc-{n}")
    rejected = h.rejected(
        cmd.ConnectSocialAccount(social_account_id="one-too-many", platform=cmd.Platform.sandbox, handle="@x"),
        "account_limit_reached",
    )
    assert tier in rejected.detail
    h.connect("on-another-platform", platform="mastodon")  # the limit is per platform
    assert len(h.workspace().accounts) == allowed + 1
    assert h.app.find(SocialAccount, "one-too-many") is None


def test_limit_overrides_win_over_the_tier(h: Herald) -> None:
    h.open(tier="free", accounts_per_platform=2)
    h.connect("acc-1")
    h.connect("acc-2")
    h.rejected(
        cmd.ConnectSocialAccount(social_account_id="acc-3", platform=cmd.Platform.sandbox, handle="@x"),
        "account_limit_reached",
    )


def test_an_account_id_can_be_connected_only_once(h: Herald) -> None:
    h.open(tier="pro")
    h.connect("acc-1")
    h.rejected(
        cmd.ConnectSocialAccount(social_account_id="acc-1", platform=cmd.Platform.sandbox, handle="@x"),
        "account_exists",
    )


# Credits --------------------------------------------------------------------------------


def test_granting_credits_adds_to_the_available_balance(h: Herald) -> None:
    h.open()
    h.grant(3)
    result = h.ok(cmd.GrantCredits(grant_id="promo", amount=4, source="promotion"))
    assert result == {"grant_id": "promo", "available": 7}
    h.rejected(cmd.GrantCredits(grant_id="promo", amount=4), "grant_exists")
    assert h.wallet().available == 7


# Scheduling -----------------------------------------------------------------------------


def test_scheduling_reserves_one_credit_per_destination_and_queues_the_post(ready: Herald) -> None:
    result = ready.schedule("p1", "acc-a", "acc-b", publish_in_s=600)
    assert result == {"post_id": "p1", "publish_at": (T0 + timedelta(seconds=600)).isoformat(), "status": "scheduled"}
    wallet = ready.wallet()
    assert wallet.available == 8 and wallet.held == 2
    assert {h.destination_id for h in wallet.holds.values()} == {"acc-a", "acc-b"}
    assert ready.workspace().waiting_posts == {"p1"}
    post = ready.post("p1")
    assert post.status == "scheduled"
    assert {d: s.hold_id for d, s in post.destinations.items()} == {d: hold_id_for("p1", d) for d in ("acc-a", "acc-b")}


def test_scheduling_without_enough_credits_is_rejected_and_changes_nothing(h: Herald) -> None:
    h.open(tier="pro")
    h.connect("acc-a")
    h.connect("acc-b")
    h.grant(1)
    before = len(h.events())
    h.rejected(cmd.SchedulePost(post_id="p1", text="hi", destinations=["acc-a", "acc-b"]), "insufficient_credits")
    assert h.wallet().available == 1 and h.wallet().holds == {}
    assert h.workspace().waiting_posts == set()
    assert h.app.find(Post, "p1") is None
    assert [kind for kind, _, _ in h.events()[before:]] == ["herald.command.rejected.v1"]


def test_scheduling_is_rejected_when_the_queue_is_full(h: Herald) -> None:
    h.open(tier="free", queue_size=2)
    h.connect("acc-a")
    h.grant(10)
    h.schedule("p1", "acc-a")
    h.schedule("p2", "acc-a")
    h.rejected(cmd.SchedulePost(post_id="p3", text="hi", destinations=["acc-a"]), "queue_full")
    assert h.workspace().waiting_posts == {"p1", "p2"}
    assert h.wallet().available == 8


def test_the_free_tier_queue_holds_five_posts(h: Herald) -> None:
    h.open(tier="free", daily_posts_per_platform=10)  # the queue limit alone
    h.connect("acc-a")
    h.grant(10)
    for n in range(5):
        h.schedule(f"p{n}", "acc-a")
    h.rejected(cmd.SchedulePost(post_id="p5", text="hi", destinations=["acc-a"]), "queue_full")


def test_scheduling_to_an_unknown_account_is_rejected(ready: Herald) -> None:
    ready.rejected(cmd.SchedulePost(post_id="p1", text="hi", destinations=["acc-a", "nope"]), "unknown_social_account")
    assert ready.wallet().held == 0


def test_scheduling_to_another_workspaces_account_is_rejected(ready: Herald) -> None:
    ready.open(OTHER_WS, tier="pro")
    ready.connect("theirs", workspace=OTHER_WS)
    decision = ready.rejected(cmd.SchedulePost(post_id="p1", text="hi", destinations=["theirs"]), "unknown_social_account")
    assert "theirs" in decision.detail


def test_scheduling_in_the_past_is_rejected_beyond_the_clock_skew(ready: Herald) -> None:
    ready.rejected(
        cmd.SchedulePost(post_id="p1", text="hi", destinations=["acc-a"], publish_at=T0 - timedelta(minutes=5)),
        "publish_at_in_past",
    )
    # A client clock slightly behind ours is tolerated.
    ready.ok(cmd.SchedulePost(post_id="p2", text="hi", destinations=["acc-a"], publish_at=T0 - timedelta(seconds=30)))


def test_omitted_publish_at_means_now(ready: Herald) -> None:
    result = ready.ok(cmd.SchedulePost(post_id="p1", text="hi", destinations=["acc-a"]))
    assert result["publish_at"] == T0.isoformat()


def test_a_post_id_can_be_scheduled_only_once(ready: Herald) -> None:
    ready.schedule("p1", "acc-a")
    ready.rejected(cmd.SchedulePost(post_id="p1", text="again", destinations=["acc-b"]), "post_exists")


@pytest.mark.parametrize(
    "payload",
    [
        {"text": "", "destinations": ["acc-a"]},
        {"text": "hi", "destinations": []},
        {"text": "hi", "destinations": ["acc-a", "acc-a"]},
        {"text": "hi", "destinations": ["acc-a"], "destination_text": {"acc-b": "stray"}},
        {"text": "hi", "destinations": ["acc-a"], "publish_at": "2030-01-07T10:00:00"},  # naive
        {"text": "hi", "destinations": ["acc-a"], "colour": "red"},
    ],
)
def test_a_bad_payload_is_rejected_as_invalid(ready: Herald, payload: dict[str, Any]) -> None:
    decision = ready.send_raw("schedule_post.v1", payload, command_id="bad-1")
    assert (decision.accepted, decision.reason_code) == (False, "invalid_payload")
    assert decision.detail
    assert ready.workspace().waiting_posts == set()


def test_an_unknown_command_type_is_rejected(ready: Herald) -> None:
    decision = ready.send_raw("launch_rockets.v1", {"count": 3}, command_id="weird-1")
    assert (decision.accepted, decision.reason_code, decision.command_type) == (False, "unknown_command_type", "launch_rockets.v1")


def test_per_destination_text_overrides_the_post_text(ready: Herald) -> None:
    ready.schedule("p1", "acc-a", "acc-b", destination_text={"acc-b": "short version"})
    post = ready.post("p1")
    assert (post.destinations["acc-a"].text, post.destinations["acc-b"].text) == ("hello", "short version")
    _accepted(ready.start("p1", "acc-a"))
    _accepted(ready.start("p1", "acc-b"))
    started = {e["destination_id"]: e["text"] for e in ready.events_of("herald.post.attempt_started.v1")}
    assert started == {"acc-a": "hello", "acc-b": "short version"}


# Idempotency and recorded rejections ----------------------------------------------------


def test_a_repeated_command_id_returns_the_first_decision_and_has_one_effect(ready: Herald) -> None:
    payload = cmd.SchedulePost(post_id="p1", text="hi", destinations=["acc-a", "acc-b"])
    first = ready.send(payload, command_id="sched-1")
    events_after_first = ready.events()
    second = ready.send(payload, command_id="sched-1")
    assert second == first and first.accepted
    assert ready.events() == events_after_first
    caused = [kind for kind, _, causation in events_after_first if causation == "sched-1"]
    assert sorted(caused) == sorted(
        [
            "herald.command.accepted.v1",
            "herald.workspace.post_queued.v1",
            "herald.wallet.hold_placed.v1",
            "herald.wallet.hold_placed.v1",
            "herald.wallet.credits_low.v1",  # 8 left of a pro tier's 500 a month: once this period
            "herald.post.scheduled.v1",
        ]
    )
    assert ready.wallet().available == 8


def test_a_repeated_command_id_with_a_different_payload_changes_nothing(ready: Herald) -> None:
    first = ready.send(cmd.GrantCredits(amount=5), command_id="grant-x")
    before = ready.events()
    again = ready.send(cmd.GrantCredits(amount=500), command_id="grant-x")
    assert again == first and ready.events() == before and ready.wallet().available == 15


def test_a_replayed_rejection_stays_rejected_even_when_it_would_now_succeed(h: Herald) -> None:
    h.open()
    h.connect("acc-a")
    payload = cmd.SchedulePost(post_id="p1", text="hi", destinations=["acc-a"])
    first = h.send(payload, command_id="sched-1")
    assert first.reason_code == "insufficient_credits"
    h.grant(5)
    assert h.send(payload, command_id="sched-1") == first
    assert h.app.find(Post, "p1") is None


def test_rejections_are_recorded_as_events(ready: Herald) -> None:
    ready.send_raw("launch_rockets.v1", {}, command_id="weird-1")
    ready.send(cmd.GrantCredits(grant_id="g", amount=1), command_id="g-1")
    ready.send(cmd.GrantCredits(grant_id="g", amount=1), command_id="g-2")
    rejected = ready.events_of("herald.command.rejected.v1")
    assert [(r["command_id"], r["command_type"], r["reason_code"]) for r in rejected] == [
        ("weird-1", "launch_rockets.v1", "unknown_command_type"),
        ("g-2", "grant_credits.v1", "grant_exists"),
    ]
    assert all(r["detail"] for r in rejected)
    assert [kind for kind, _, causation in ready.events() if causation == "g-2"] == ["herald.command.rejected.v1"]


# Publishing -----------------------------------------------------------------------------


def test_only_the_expected_attempt_can_start(ready: Herald) -> None:
    ready.schedule("p1", "acc-a", "acc-b")
    assert ready.start("p1", "acc-a", attempt=2).reason_code == "attempt_fenced"
    started = _accepted(ready.start("p1", "acc-a", attempt=1))
    assert started["status"] == "attempting"
    assert ready.start("p1", "acc-a", attempt=1).reason_code == "attempt_fenced"  # a second start of the same attempt
    assert ready.start("p1", "acc-a", attempt=2).reason_code == "attempt_fenced"  # still running
    assert ready.start("p1", "nope").reason_code == "unknown_destination"
    assert ready.start("no-such-post", "acc-a").reason_code == "unknown_post"
    (event,) = ready.events_of("herald.post.attempt_started.v1")
    assert (event["attempt"], event["platform"], event["handle"]) == (1, "sandbox", "@acc-a")
    assert ready.post("p1").status == "publishing"


def test_another_workspace_cannot_touch_the_post(ready: Herald) -> None:
    ready.schedule("p1", "acc-a")
    ready.open(OTHER_WS)
    assert ready.start("p1", "acc-a", workspace=OTHER_WS).reason_code == "unknown_post"
    assert ready.send(cmd.CancelPost(post_id="p1"), workspace=OTHER_WS).reason_code == "unknown_post"


def test_a_published_outcome_settles_the_destination_and_the_post(ready: Herald) -> None:
    ready.schedule("p1", "acc-a", "acc-b")
    for destination in ("acc-a", "acc-b"):
        _accepted(ready.start("p1", destination))
        result = _accepted(ready.outcome("p1", destination, 1, "published", url=f"https://x/{destination}"))
        assert result["status"] == "published"
    post = ready.post("p1")
    assert post.status == "published" and post.destinations["acc-a"].platform_post_id == "remote-acc-a-1"
    published = ready.events_of("herald.post.destination_published.v1")
    assert [(e["destination_id"], e["hold_id"]) for e in published] == [
        ("acc-a", hold_id_for("p1", "acc-a")),
        ("acc-b", hold_id_for("p1", "acc-b")),
    ]
    assert ready.outcome("p1", "acc-a", 1, "published").reason_code == "outcome_fenced"
    assert ready.start("p1", "acc-a", attempt=2).reason_code == "attempt_fenced"


def test_an_outcome_must_belong_to_the_running_attempt(ready: Herald) -> None:
    ready.schedule("p1", "acc-a")
    assert ready.outcome("p1", "acc-a", 1, "published").reason_code == "outcome_fenced"  # nothing running
    ready.start("p1", "acc-a")
    assert ready.outcome("p1", "acc-a", 2, "failed").reason_code == "outcome_fenced"
    assert ready.post("p1").destinations["acc-a"].status == "attempting"


@pytest.mark.parametrize(("retry_after_s", "least_s", "most_s"), [(None, 48, 72), (10, 48, 72), (120, 120, 120)])
def test_a_first_retry_waits_a_minute_jittered_or_what_the_platform_asks(
    ready: Herald, retry_after_s: float | None, least_s: float, most_s: float
) -> None:
    ready.schedule("p1", "acc-a")
    ready.start("p1", "acc-a")
    ready.advance(5)
    result = _accepted(ready.outcome("p1", "acc-a", 1, "retry", error_kind="transient", retry_after_s=retry_after_s,
                                     status_code=503))
    assert result["status"] == "retry_scheduled"
    (retry,) = ready.events_of("herald.post.retry_scheduled.v1")
    delay = (datetime.fromisoformat(retry["retry_at"]) - ready.now).total_seconds()
    assert least_s <= delay <= most_s
    assert retry["error_kind"] == "transient" and retry["status_code"] == 503
    assert ready.workspace().waiting_posts == {"p1"}


def test_retry_jitter_spreads_destinations_that_failed_together() -> None:
    policy = PublishPolicy()
    delays = {policy.retry_delay_s(1, f"attempt-{i}") for i in range(50)}
    assert len(delays) > 40, "different attempts get different delays"
    assert all(48 <= d <= 72 for d in delays)
    assert policy.retry_delay_s(2, "attempt-1") == policy.retry_delay_s(2, "attempt-1"), "deterministic per attempt"


def test_a_throttled_attempt_waits_without_using_up_a_retry(ready: Herald) -> None:
    ready.schedule("p1", "acc-a")
    for attempt in (1, 2, 3, 4, 5):  # more throttles than there are retries
        _accepted(ready.start("p1", "acc-a", attempt=attempt))
        result = _accepted(ready.outcome("p1", "acc-a", attempt, "throttled", error_kind="rate_limited",
                                         retry_after_s=30, status_code=429))
        assert result["status"] == "retry_scheduled"
        throttled = ready.events_of("herald.post.destination_throttled.v1")[-1]
        assert datetime.fromisoformat(throttled["until"]) == ready.now + timedelta(seconds=30)
        ready.now = datetime.fromisoformat(throttled["until"])
    assert ready.post("p1").destinations["acc-a"].failures == 0
    _accepted(ready.start("p1", "acc-a", attempt=6))
    assert _accepted(ready.outcome("p1", "acc-a", 6, "retry", detail="503"))["status"] == "retry_scheduled"


@pytest.mark.parametrize("resolution", ["published", "not_published"])
def test_an_unknown_outcome_is_resolved_and_its_hold_follows(ready: Herald, resolution: str) -> None:
    ready.schedule("p1", "acc-a")
    ready.start("p1", "acc-a")
    _accepted(ready.outcome("p1", "acc-a", 1, "unknown", detail="timeout"))
    assert ready.post("p1").destinations["acc-a"].status == "outcome_unknown"
    fields = {"platform_post_id": "123", "url": "https://example/123"} if resolution == "published" else {"note": "checked"}
    payload = cmd.ResolvePublishOutcome(post_id="p1", destination_id="acc-a", attempt=1,
                                        resolution=cmd.Resolution(resolution), **fields)
    result = _accepted(ready.send(payload, issued_by="admin"))
    if resolution == "published":
        assert result["status"] == "published"
        (published,) = ready.events_of("herald.post.destination_published.v1")
        assert published["resolved_by"] == "admin" and published["platform_post_id"] == "123"
    else:
        assert result["status"] == "failed"
        (failed,) = ready.events_of("herald.post.destination_failed.v1")
        assert failed["error_kind"] == "not_published" and "admin" in failed["detail"]
    assert ready.workspace().waiting_posts == set()
    again = ready.send(payload, issued_by="admin")
    assert again.reason_code == "outcome_fenced", "a destination is resolved once"


def test_retries_back_off_and_give_up_after_the_fourth_attempt(ready: Herald) -> None:
    ready.schedule("p1", "acc-a")
    delays = []
    for attempt in (1, 2, 3):
        _accepted(ready.start("p1", "acc-a", attempt=attempt))
        _accepted(ready.outcome("p1", "acc-a", attempt, "retry", detail="503"))
        retry_at = datetime.fromisoformat(ready.events_of("herald.post.retry_scheduled.v1")[-1]["retry_at"])
        delays.append((retry_at - ready.now).total_seconds())
        ready.now = retry_at
    assert all(0.8 * base <= d <= 1.2 * base for d, base in zip(delays, (60, 300, 900), strict=True))
    _accepted(ready.start("p1", "acc-a", attempt=4))
    result = _accepted(ready.outcome("p1", "acc-a", 4, "retry", detail="503"))
    assert result["status"] == "failed"
    (failed,) = ready.events_of("herald.post.destination_failed.v1")
    assert failed["attempt"] == 4 and "gave up after 4 failed attempts" in failed["detail"]
    assert ready.post("p1").status == "failed"
    assert ready.workspace().waiting_posts == set()


def test_failed_skipped_and_unknown_outcomes(ready: Herald) -> None:
    ready.schedule("p1", "acc-a", "acc-b")
    ready.schedule("p2", "acc-a")
    for post, destination in (("p1", "acc-a"), ("p1", "acc-b"), ("p2", "acc-a")):
        _accepted(ready.start(post, destination))
    _accepted(ready.outcome("p1", "acc-a", 1, "failed", error_kind="invalid_content", detail="too long"))
    _accepted(ready.outcome("p1", "acc-b", 1, "skipped", detail="no_credits"))
    _accepted(ready.outcome("p2", "acc-a", 1, "unknown", detail="timeout after send"))

    (failed,) = ready.events_of("herald.post.destination_failed.v1")
    assert (failed["error_kind"], failed["detail"], failed["hold_id"]) == ("invalid_content", "too long", hold_id_for("p1", "acc-a"))
    (skipped,) = ready.events_of("herald.post.destination_skipped.v1")
    assert (skipped["reason"], skipped["hold_id"]) == ("no_credits", hold_id_for("p1", "acc-b"))
    assert ready.post("p1").status == "failed"

    # An unknown outcome is never blindly retried: it waits for reconciliation.
    (unknown,) = ready.events_of("herald.post.outcome_unknown.v1")
    assert unknown["detail"] == "timeout after send"
    p2 = ready.post("p2")
    assert (p2.destinations["acc-a"].status, p2.status, p2.settled) == ("outcome_unknown", "publishing", False)
    assert ready.start("p2", "acc-a", attempt=2).reason_code == "attempt_fenced"
    assert ready.workspace().waiting_posts == {"p2"}


def test_a_destination_far_past_its_due_time_is_skipped_as_missed(ready: Herald) -> None:
    ready.schedule("p1", "acc-a", "acc-b", publish_in_s=60)
    ready.advance(60 + 3600 + 1)
    result = _accepted(ready.start("p1", "acc-a"))
    assert result["status"] == "skipped"
    (skipped,) = ready.events_of("herald.post.destination_skipped.v1")
    assert skipped["reason"] == "missed"
    assert ready.events_of("herald.post.attempt_started.v1") == []
    assert ready.start("p1", "acc-a", attempt=1).reason_code == "attempt_fenced"


def test_a_destination_just_inside_the_window_still_starts(ready: Herald) -> None:
    ready.schedule("p1", "acc-a")
    ready.advance(3600)
    assert _accepted(ready.start("p1", "acc-a"))["status"] == "attempting"


def test_the_missed_window_counts_from_the_retry_time(ready: Herald) -> None:
    ready.schedule("p1", "acc-a")
    ready.start("p1", "acc-a")
    ready.outcome("p1", "acc-a", 1, "retry")
    ready.advance(60 + 3600 + 1)
    assert _accepted(ready.start("p1", "acc-a", attempt=2))["status"] == "skipped"


# Cancelling -----------------------------------------------------------------------------


def test_cancel_lists_the_waiting_destinations_and_their_holds(ready: Herald) -> None:
    ready.schedule("p1", "acc-a", "acc-b")
    ready.start("p1", "acc-a")
    result = _accepted(ready.send(cmd.CancelPost(post_id="p1", reason="typo")))
    (cancelled,) = ready.events_of("herald.post.cancelled.v1")
    assert cancelled == {
        "post_id": "p1",
        "reason": "typo",
        "cancelled_destinations": ["acc-b"],
        "released_holds": [hold_id_for("p1", "acc-b")],
        "hold_settled": True,
        "actor": "tests",
        "slots_freed": False,
    }
    # In the same decision: acc-b's hold released, acc-a's still pending.
    (released,) = ready.events_of("herald.wallet.hold_released.v1")
    assert released["hold_id"] == hold_id_for("p1", "acc-b") and released["reason"] == "post_cancelled"
    assert set(ready.wallet().holds) == {hold_id_for("p1", "acc-a")}
    # acc-a is still attempting, so the post is not settled and keeps its queue slot.
    assert result["status"] == "publishing" and ready.workspace().waiting_posts == {"p1"}
    assert ready.start("p1", "acc-b").reason_code == "attempt_fenced"
    ready.send(cmd.CancelPost(post_id="p1"))
    assert ready.events_of("herald.post.cancelled.v1") == [cancelled]
    _accepted(ready.outcome("p1", "acc-a", 1, "published"))
    assert ready.post("p1").status == "partially_published"
    assert ready.workspace().waiting_posts == set()


def test_a_post_with_nothing_waiting_is_not_cancellable(ready: Herald) -> None:
    ready.schedule("p1", "acc-a")
    ready.start("p1", "acc-a")
    ready.outcome("p1", "acc-a", 1, "published")
    decision = ready.rejected(cmd.CancelPost(post_id="p1"), "post_not_cancellable")
    assert "published" in decision.detail
    ready.rejected(cmd.CancelPost(post_id="missing"), "unknown_post")


def test_cancelling_everything_settles_the_post_and_frees_its_queue_slot(ready: Herald) -> None:
    ready.schedule("p1", "acc-a", "acc-b", publish_in_s=3600)
    result = _accepted(ready.send(cmd.CancelPost(post_id="p1")))
    assert result["status"] == "cancelled" and ready.post("p1").cancelled
    assert ready.workspace().waiting_posts == set()
    assert len(ready.events_of("herald.workspace.post_left_queue.v1")) == 1
    ready.rejected(cmd.CancelPost(post_id="p1"), "post_not_cancellable")


def test_a_retry_scheduled_destination_can_be_cancelled(ready: Herald) -> None:
    ready.schedule("p1", "acc-a")
    ready.start("p1", "acc-a")
    ready.outcome("p1", "acc-a", 1, "retry")
    _accepted(ready.send(cmd.CancelPost(post_id="p1")))
    assert ready.post("p1").status == "cancelled"


# Status roll-up and the queue -----------------------------------------------------------


@pytest.mark.parametrize(
    ("outcomes", "status"),
    [
        (("published", "published"), "published"),
        (("published", "failed"), "partially_published"),
        (("published", "skipped"), "partially_published"),
        (("failed", "failed"), "failed"),
        (("failed", "skipped"), "failed"),
        (("skipped", "skipped"), "skipped"),
    ],
)
def test_the_post_status_rolls_up_from_its_destinations(ready: Herald, outcomes: tuple[str, str], status: str) -> None:
    ready.schedule("p1", "acc-a", "acc-b")
    for destination, outcome in zip(("acc-a", "acc-b"), outcomes):
        assert ready.post("p1").status in {"scheduled", "publishing"}
        _accepted(ready.start("p1", destination))
        _accepted(ready.outcome("p1", destination, 1, outcome))
    assert ready.post("p1").status == status


def test_a_settled_post_frees_its_queue_slot_for_the_next(h: Herald) -> None:
    h.open(queue_size=1)
    h.connect("acc-a")
    h.grant(5)
    h.schedule("p1", "acc-a")
    h.rejected(cmd.SchedulePost(post_id="p2", text="hi", destinations=["acc-a"]), "queue_full")
    h.start("p1", "acc-a")
    h.outcome("p1", "acc-a", 1, "retry")
    assert h.workspace().waiting_posts == {"p1"}  # a retry still waits
    h.start("p1", "acc-a", attempt=2)
    h.outcome("p1", "acc-a", 2, "published")
    assert h.workspace().waiting_posts == set()
    h.schedule("p2", "acc-a")
    assert h.workspace().waiting_posts == {"p2"}


# Wallet ---------------------------------------------------------------------------------


def test_consuming_burns_the_earliest_expiring_grant_first(h: Herald) -> None:
    h.open(tier="pro")
    for account in ("acc-a", "acc-b", "acc-c"):
        h.connect(account)
    forever = h.grant(1, grant_id="forever")
    later = h.grant(1, expires_in=timedelta(days=10), grant_id="later")
    soon = h.grant(1, expires_in=timedelta(days=3), grant_id="soon")
    h.schedule("p1", "acc-a", "acc-b", "acc-c")
    burned = []
    for destination in ("acc-a", "acc-b", "acc-c"):
        _accepted(h.send(cmd.ConsumeHold(hold_id=hold_id_for("p1", destination))))
        (burn,) = h.events_of("herald.wallet.hold_consumed.v1")[-1]["burned"]
        burned.append((burn["grant_id"], burn["amount"]))
    assert burned == [(soon, 1), (later, 1), (forever, 1)]
    wallet = h.wallet()
    assert wallet.available == 0 and all(g.remaining == 0 for g in wallet.grants.values())


def test_releasing_a_hold_returns_its_credit(ready: Herald) -> None:
    ready.schedule("p1", "acc-a")
    result = _accepted(ready.send(cmd.ReleaseHold(hold_id=hold_id_for("p1", "acc-a"), reason="cancelled")))
    assert result["available"] == 10
    (released,) = ready.events_of("herald.wallet.hold_released.v1")
    assert (released["amount"], released["reason"]) == (1, "cancelled")


def test_a_hold_ends_exactly_once(ready: Herald) -> None:
    ready.schedule("p1", "acc-a", "acc-b")
    consumed, released = hold_id_for("p1", "acc-a"), hold_id_for("p1", "acc-b")
    _accepted(ready.send(cmd.ConsumeHold(hold_id=consumed)))
    _accepted(ready.send(cmd.ReleaseHold(hold_id=released)))
    for payload in (
        cmd.ConsumeHold(hold_id=consumed),
        cmd.ReleaseHold(hold_id=consumed),
        cmd.ConsumeHold(hold_id=released),
        cmd.ReleaseHold(hold_id=released),
    ):
        ready.rejected(payload, "hold_not_pending")
    ready.rejected(cmd.ConsumeHold(hold_id="nope"), "hold_not_pending")
    assert ready.wallet().available == 9
    assert len(ready.events_of("herald.wallet.hold_consumed.v1")) == 1
    assert len(ready.events_of("herald.wallet.hold_released.v1")) == 1


def test_the_wallet_never_goes_negative(h: Herald) -> None:
    h.open(tier="pro")
    h.connect("acc-a")
    h.connect("acc-b")
    h.grant(3)
    h.schedule("p1", "acc-a", "acc-b")
    h.rejected(cmd.SchedulePost(post_id="p2", text="hi", destinations=["acc-a", "acc-b"]), "insufficient_credits")
    h.schedule("p3", "acc-a")
    assert h.wallet().available == 0
    h.rejected(cmd.SchedulePost(post_id="p4", text="hi", destinations=["acc-b"]), "insufficient_credits")
    for destination in ("acc-a", "acc-b"):
        h.send(cmd.ConsumeHold(hold_id=hold_id_for("p1", destination)))
    assert (h.wallet().available, h.wallet().granted, h.wallet().held) == (0, 1, 1)


# Bounded state ---------------------------------------------------------------------------


def test_the_wallet_forgets_ended_holds_and_used_up_grants(ready: Herald) -> None:
    """However many posts a workspace has had, its wallet holds live grants and pending holds only."""
    for n in range(60):
        ready.grant(1, grant_id=f"topup-{n}")
        ready.schedule(f"p{n}", "acc-a", "acc-b")
        ready.send(cmd.ConsumeHold(hold_id=hold_id_for(f"p{n}", "acc-a")))
        ready.send(cmd.ReleaseHold(hold_id=hold_id_for(f"p{n}", "acc-b"), reason="test"))
        ready.send(cmd.CancelPost(post_id=f"p{n}"))  # frees the queue slot
    wallet = ready.wallet()
    assert wallet.holds == {}
    assert all(g.remaining > 0 for g in wallet.grants.values())
    assert (wallet.available, wallet.granted, wallet.held) == (10, 10, 0)
    assert len(wallet.grants) <= 10, "used-up grants left the state"
    assert wallet.version > 200, "the wallet's stream did grow"


def test_long_streams_load_from_a_snapshot(ready: Herald) -> None:
    # Every 100 events here (1,000 in production) so that a short test crosses the interval.
    ready.app.snapshotting_intervals = {Workspace: 100, Wallet: 100}
    for n in range(60):
        ready.schedule(f"p{n}", "acc-a")
        ready.send(cmd.ReleaseHold(hold_id=hold_id_for(f"p{n}", "acc-a"), reason="test"))
        ready.send(cmd.CancelPost(post_id=f"p{n}"))
    wallet = ready.wallet()
    assert wallet.version > 100
    snapshots = list(ready.app.snapshots.get(Wallet.aggregate_id(WS), desc=True, limit=1))
    assert snapshots and snapshots[0].originator_version == 100 * (wallet.version // 100)
    # A cold load (no warm copy) is the snapshot plus the events after it, and equals the full replay.
    from_snapshot = ready.app.repository.get(Wallet.aggregate_id(WS))
    replayed = None
    for event in ready.app.events.get(Wallet.aggregate_id(WS)):  # every event, no snapshot
        replayed = event.mutate(replayed)
    assert (from_snapshot.version, from_snapshot.grants, from_snapshot.holds) == (replayed.version, replayed.grants,
                                                                                   replayed.holds)
    workspace = ready.workspace()
    assert workspace.version > 100 and workspace.waiting_posts == set()


def test_a_grant_id_is_taken_for_good(ready: Herald) -> None:
    """Even once the grant is used up and gone from the wallet's state, its id cannot pay twice."""
    ready.grant(1, grant_id="invoice-7")
    ready.schedule("p1", "acc-a")
    ready.send(cmd.ConsumeHold(hold_id=hold_id_for("p1", "acc-a")))
    ready.rejected(cmd.GrantCredits(grant_id="invoice-7", amount=1), "grant_exists")


def test_grant_ids_recorded_before_claims_are_claimed_by_the_upgrade(ready: Herald) -> None:
    """A store from before grant claims: a grant made without its claim (as the old handler did).
    The upgrade claims it, so its id cannot pay again; a second run claims nothing."""
    from domain.base import Context
    from domain.wallet.upgrade import claim_earlier_grants

    wallet = ready.wallet()
    old = Context(command_id="old-grant", correlation_id="old-grant", workspace_id=WS, issued_by="old", now=ready.now)
    wallet.grant(old, "invoice-9", 1, "purchase", None)
    ready.app.save(wallet)
    assert claim_earlier_grants(ready.app) == 1  # invoice-9; the fixture's grant was claimed when it was made
    ready.rejected(cmd.GrantCredits(grant_id="invoice-9", amount=1), "grant_exists")
    assert claim_earlier_grants(ready.app) == 0


# The workspace's publishing policy and the daily limit at publish time ------------------------


def test_a_workspace_missed_window_replaces_the_default_for_its_destinations(ready: Herald) -> None:
    assert ready.ok(cmd.SetPublishingPolicy(missed_window_minutes=10))["effective_missed_window_s"] == 600
    ready.schedule("late", "acc-a")
    ready.schedule("in-time", "acc-b")
    ready.advance(9 * 60)
    assert _accepted(ready.start("in-time", "acc-b"))["status"] == "attempting"
    ready.advance(2 * 60)  # 11 minutes after the due time: past the workspace's 10, well within Herald's 60
    assert _accepted(ready.start("late", "acc-a"))["status"] == "skipped"
    assert ready.post("late").destination("acc-a").reason == "missed"
    assert hold_id_for("late", "acc-a") not in ready.wallet().holds, "released in the same decision"

    ready.ok(cmd.SetPublishingPolicy(missed_window_minutes=None))  # back to Herald's default
    ready.schedule("default", "acc-a")
    ready.advance(30 * 60)
    assert _accepted(ready.start("default", "acc-a"))["status"] == "attempting"


def test_a_publishing_policy_outside_its_bounds_is_refused() -> None:
    with pytest.raises(ValidationError):
        cmd.SetPublishingPolicy(missed_window_minutes=0)
    with pytest.raises(ValidationError):
        cmd.SetPublishingPolicy(missed_window_minutes=7 * 24 * 60 + 1)
    with pytest.raises(ValidationError):
        cmd.SetPublishingPolicy.model_validate({"missed_window_minutes": "10"})


def test_the_daily_post_limit_is_checked_again_at_publish(ready: Herald) -> None:
    """Three posts were scheduled for one day under a limit of 5; the limit is lowered to 1 before they
    are due: at their start, destinations are skipped until the day is within the limit, and the rest
    publish."""
    ready.ok(cmd.SetLimitOverrides(limit_overrides={"daily_posts_per_platform": 5}), issued_by="admin")
    for post_id in ("d1", "d2", "d3"):
        ready.schedule(post_id, "acc-a", publish_in_s=60)
    ready.ok(cmd.SetLimitOverrides(limit_overrides={"daily_posts_per_platform": 1}), issued_by="admin")
    ready.advance(61)
    statuses = [_accepted(ready.start(post_id, "acc-a"))["status"] for post_id in ("d1", "d2", "d3")]
    assert statuses == ["skipped", "skipped", "attempting"]
    assert [ready.post(p).destination("acc-a").reason for p in ("d1", "d2")] == ["daily_post_limit_reached"] * 2
    assert set(ready.wallet().holds) == {hold_id_for("d3", "acc-a")}, "the skipped destinations' holds released"
    day = ready.workspace().local_day(ready.now)
    assert ready.workspace().daily_posts_on(day, "sandbox") == 1


# An admin's retry of a failed destination -----------------------------------------------------


def test_an_admin_retries_a_failed_destination_with_a_new_hold_and_it_publishes(ready: Herald) -> None:
    ready.schedule("p1", "acc-a")
    ready.start("p1", "acc-a")
    assert _accepted(ready.outcome("p1", "acc-a", 1, "failed", error_kind="invalid_content", detail="422"))["status"] == "failed"
    available = ready.wallet().available
    assert ready.post("p1").destination("acc-a").hold_id not in ready.wallet().holds, "released when it failed"

    retried = _accepted(ready.send(cmd.RetryDestination(post_id="p1", destination_id="acc-a"), issued_by="api-key:admin"))
    new_hold = retried["hold_id"]
    assert retried["status"] == "retry_scheduled" and new_hold != hold_id_for("p1", "acc-a")
    assert new_hold in ready.wallet().holds and ready.wallet().available == available - 1
    assert ready.post("p1").destination("acc-a").hold_id == new_hold
    assert "p1" in ready.workspace().waiting_posts, "back in the queue"
    (event,) = ready.events_of("herald.post.retry_scheduled.v1")
    assert event["requested_by"] == "api-key:admin" and event["hold_id"] == new_hold

    assert _accepted(ready.start("p1", "acc-a", attempt=2))["status"] == "attempting"
    assert _accepted(ready.outcome("p1", "acc-a", 2, "published"))["status"] == "published"
    assert new_hold not in ready.wallet().holds and ready.wallet().available == available - 1, "the new hold consumed"
    assert "p1" not in ready.workspace().waiting_posts


def test_only_a_failed_or_skipped_destination_can_be_retried(ready: Herald) -> None:
    ready.schedule("p1", "acc-a")
    ready.rejected(cmd.RetryDestination(post_id="p1", destination_id="acc-a"), "destination_not_retryable")
    ready.start("p1", "acc-a")
    ready.outcome("p1", "acc-a", 1, "published")
    ready.rejected(cmd.RetryDestination(post_id="p1", destination_id="acc-a"), "destination_not_retryable")
    ready.rejected(cmd.RetryDestination(post_id="p1", destination_id="nope"), "unknown_destination")
    ready.rejected(cmd.RetryDestination(post_id="nope", destination_id="acc-a"), "unknown_post")


def test_a_retry_without_credits_is_refused_and_changes_nothing(ready: Herald) -> None:
    ready.schedule("p1", "acc-a")
    ready.advance(2 * 3600)  # past the missed window: skipped at its start
    assert _accepted(ready.start("p1", "acc-a"))["status"] == "skipped"
    ready.ok(cmd.SetLimitOverrides(limit_overrides={"daily_posts_per_platform": 100}), issued_by="admin")
    for i in range(ready.wallet().available):  # every credit held by other posts
        ready.schedule(f"filler-{i}", "acc-b", publish_in_s=3600)
    before = ready.post("p1").version
    ready.rejected(cmd.RetryDestination(post_id="p1", destination_id="acc-a"), "insufficient_credits")
    assert ready.post("p1").version == before and ready.post("p1").destination("acc-a").status == "skipped"
