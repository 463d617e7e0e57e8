"""Automation rules in the domain and the rule runner, on both event stores: schedules in the
workspace's zone, the tier limit, a downgrade pausing the newest rules (never deleting), resume
refused over the limit, each occurrence fired once (also when a run is cut short and finished
again), a failing generation recorded and the next occurrence fired, the catch-up policy, and a
hypothesis state machine over ticks, clock advances, pauses, resumes and cut runs."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from domain.application import HeraldApplication
from domain.automation import schedule as schedules
from domain.automation.aggregate import AutomationRule, run_post_id
from domain.post import Post
from domain.wallet import Wallet
from domain.workspace import Workspace
from domain.base import derived_id
from processors.automation.runner import RuleDue, RuleRunner, command_id, occurrence_to_fire
from processors.generation import prompt
from processors.generation.calls import ConfiguredProvider, outcome_of, voice_of
from processors.generation.errors import FailureKind, ProviderError
from processors.generation.offline import OfflineTemplate
from processors.generation.providers import Completion, Generator, Turn
from schemas import commands as cmd
from tests.unit.stores import AppFactory, make_app  # noqa: F401 - the fixture
from tests.unit.test_domain import WS, Herald

BERLIN = ZoneInfo("Europe/Berlin")
T0 = datetime(2030, 3, 25, 6, 0, tzinfo=UTC)  # 07:00 in Berlin


class FlakyProvider:
    """The AI provider: the offline templates, failing (transient) while ``failing`` is set."""

    name, model = "offline", "template-v1"

    def __init__(self) -> None:
        self.inner = OfflineTemplate()
        self.failing = False
        self.calls = 0

    def complete(self, turn: Turn) -> Completion:
        self.calls += 1
        if self.failing:
            raise ProviderError(FailureKind.transient, "HTTP 503 from the provider")
        return self.inner.complete(turn)


class Rig(Herald):
    def __init__(self, make_app: AppFactory, tier: str = "pro", **overrides: int) -> None:
        super().__init__(make_app)
        self.now = T0
        self.provider = FlakyProvider()
        self.runner = RuleRunner(self.app, ConfiguredProvider(lambda: Generator(self.provider, attempts=1)),
                                 clock=lambda: self.now)
        self.ok(cmd.OpenWorkspace(name=WS, tier=tier, timezone="Europe/Berlin", limit_overrides=overrides))
        for account, platform in (("acc-m", "mastodon"), ("acc-s", "sandbox")):
            self.ok(cmd.ConnectSocialAccount(social_account_id=account, platform=platform, handle=f"@{account}",
                                             instance_url="https://mastodon.example" if platform == "mastodon"
                                             else None))
        self.ok(cmd.GrantCredits(amount=10_000))

    def create(self, rule_id: str, schedule: str = "FREQ=DAILY;BYHOUR=9;BYMINUTE=0;BYSECOND=0", kind: str = "rrule",
               **fields: object) -> dict:
        return self.ok(self.rule_payload(rule_id, schedule, kind, **fields))

    def rule_payload(self, rule_id: str, schedule: str = "FREQ=DAILY;BYHOUR=9;BYMINUTE=0;BYSECOND=0",
                     kind: str = "rrule", **fields: object) -> cmd.CreateAutomationRule:
        return cmd.CreateAutomationRule(**{"rule_id": rule_id, "name": rule_id, "schedule_kind": kind,
                                           "schedule": schedule, "topic": "spring sale",
                                           "destinations": ["acc-m", "acc-s"], **fields})

    def rule(self, rule_id: str) -> AutomationRule:
        found = self.app.find(AutomationRule, AutomationRule.key(WS, rule_id))
        assert found is not None
        return found

    def due(self, rule_id: str) -> RuleDue:
        r = self.rule(rule_id)
        return RuleDue(WS, rule_id, r.schedule, r.cursor, r.next_run_at,
                       r.run["occurrence_at"] if r.run else None)

    def tick(self, rule_id: str) -> str:
        return self.runner.run(self.due(rule_id))


@pytest.fixture
def rig(make_app: AppFactory) -> Rig:
    return Rig(make_app)


def berlin(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=BERLIN).astimezone(UTC)


# Schedules -------------------------------------------------------------------------------


def test_schedules_follow_local_wall_time_across_daylight_saving() -> None:
    tz = "America/Los_Angeles"
    daily = schedules.parse("rrule", "FREQ=DAILY;BYHOUR=2;BYMINUTE=30;BYSECOND=0", datetime(2026, 3, 1), tz)
    got = list(itertools.islice(daily.after(datetime(2026, 3, 7, 12, tzinfo=UTC)), 3))
    local = [g.astimezone(ZoneInfo(tz)).isoformat() for g in got]
    # 02:30 does not exist on 8 March: the first instant after the gap; local 02:30 again after it
    assert local == ["2026-03-08T03:00:00-07:00", "2026-03-09T02:30:00-07:00", "2026-03-10T02:30:00-07:00"]
    cron = schedules.parse("cron", "30 1 * * *", datetime(2026, 10, 1), tz)
    got = list(itertools.islice(cron.after(datetime(2026, 10, 31, 12, tzinfo=UTC)), 2))
    # 01:30 happens twice on 1 November: fired once, at its first pass (still daylight time)
    assert [g.astimezone(ZoneInfo(tz)).isoformat() for g in got] == ["2026-11-01T01:30:00-07:00",
                                                                       "2026-11-02T01:30:00-08:00"]
    kolkata = schedules.parse("cron", "0 9 * * 1", datetime(2026, 1, 1), "Asia/Kolkata")
    assert kolkata.next_after(datetime(2026, 1, 1, tzinfo=UTC)) == datetime(2026, 1, 5, 3, 30, tzinfo=UTC)


@settings(max_examples=200, deadline=None)
@given(expression=st.sampled_from(["FREQ=MINUTELY;INTERVAL=7;BYSECOND=5", "FREQ=HOURLY;INTERVAL=5;BYMINUTE=15,45",
                                   "FREQ=SECONDLY;INTERVAL=13", "FREQ=HOURLY;INTERVAL=3;BYDAY=MO,WE",
                                   "FREQ=MINUTELY;INTERVAL=11;UNTIL=20300105T000000", "FREQ=MINUTELY;COUNT=5000"]),
       seconds=st.integers(0, 90 * 86400))
def test_a_frequent_rule_evaluated_from_near_now_has_the_occurrences_walked_from_its_anchor(expression: str,
                                                                                          seconds: int) -> None:
    anchor = datetime(2029, 10, 20, 3, 7, 41)
    wall = anchor + timedelta(seconds=seconds)
    plain = schedules._rrule(expression, anchor)
    near = schedules._from_near(plain, anchor, wall)
    assert list(itertools.islice(near.xafter(wall, inc=False), 30)) == \
        list(itertools.islice(plain.xafter(wall, inc=False), 30))


@pytest.mark.parametrize(("kind", "expression"), [("rrule", "FREQ=FORTNIGHTLY"), ("rrule", "BYHOUR=9"),
                                                  ("rrule", "DTSTART:20300101T000000\nRRULE:FREQ=DAILY"),
                                                  ("rrule", "FREQ=DAILY;INTERVAL=0"),
                                                  ("rrule", "FREQ=HOURLY;BYMONTH=4;BYMONTHDAY=31"),
                                                  ("rrule", "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"),
                                                  ("rrule", "FREQ=YEARLY;BYMONTH=2;BYYEARDAY=200"),
                                                  ("rrule", "FREQ=DAILY;UNTIL=19990101T000000"),
                                                  ("cron", "61 * * * *"), ("cron", "* * *"),
                                                  ("cron", "0 0 * * * *"), ("cron", "0 0 31 2 *")])
def test_a_bad_schedule_is_refused_with_its_reason(rig: Rig, kind: str, expression: str) -> None:
    refused = rig.rejected(rig.rule_payload("bad", expression, kind), "invalid_schedule")
    assert refused.detail
    assert rig.workspace().automation_rules == 0


def test_a_rule_fires_at_local_time_and_names_only_its_workspaces_accounts(rig: Rig) -> None:
    created = rig.create("daily")
    assert created["next_run_at"] == berlin(2030, 3, 25, 9, 0).isoformat()
    assert created["destination_platforms"] == {"acc-m": "mastodon", "acc-s": "sandbox"}
    rig.rejected(rig.rule_payload("other", destinations=["acc-elsewhere"]), "unknown_social_account")
    rig.rejected(rig.rule_payload("daily"), "automation_rule_exists")


# Tier limit and downgrade ----------------------------------------------------------------


def test_the_free_tier_has_no_rules(make_app: AppFactory) -> None:
    free = Rig(make_app, tier="free")
    refused = free.rejected(free.rule_payload("r1"), "automation_rule_limit_reached")
    assert refused.limit == {"limit": "automation_rules", "tier": "free", "current": 0, "allowed": 0}


def test_pro_has_five_rules(make_app: AppFactory) -> None:
    pro = Rig(make_app, tier="pro")
    for n in range(5):
        pro.create(f"r{n}")
    refused = pro.rejected(pro.rule_payload("r5"), "automation_rule_limit_reached")
    assert refused.limit == {"limit": "automation_rules", "tier": "pro", "current": 5, "allowed": 5}
    pro.ok(cmd.DeleteAutomationRule(rule_id="r0"))
    pro.create("r5")  # a deleted rule no longer counts


def test_a_lower_limit_pauses_the_newest_rules_and_resume_is_refused_over_it(make_app: AppFactory) -> None:
    h = Rig(make_app, tier="pro")
    for n in range(4):
        h.create(f"r{n}")
    h.advance(60)
    changed = h.ok(cmd.SetLimitOverrides(limit_overrides={"automation_rules": 1}))
    assert changed["rules_paused"] == ["r3", "r2", "r1"], "newest first"
    paused = h.events_of("herald.automation_rule.paused.v1")
    assert [(e["rule_id"], e["reason"]) for e in paused] == [("r3", "tier_limit"), ("r2", "tier_limit"),
                                                            ("r1", "tier_limit")]
    assert h.rule("r0").status == "active"
    assert h.workspace().automation_rules == 4, "paused, not deleted"
    refused = h.rejected(cmd.ResumeAutomationRule(rule_id="r1"), "automation_rule_limit_reached")
    assert refused.limit["allowed"] == 1
    h.rejected(h.rule_payload("r4"), "automation_rule_limit_reached")
    h.ok(cmd.PauseAutomationRule(rule_id="r0"))
    assert h.ok(cmd.ResumeAutomationRule(rule_id="r1"))["status"] == "active"  # under the limit again
    h.rejected(cmd.ResumeAutomationRule(rule_id="r0"), "automation_rule_limit_reached")


def test_a_downgrade_at_the_renewal_pauses_every_rule_over_the_new_tier(make_app: AppFactory) -> None:
    h = Rig(make_app, tier="pro")
    h.ok(cmd.StartCreditPeriod())
    for n in range(3):
        h.create(f"r{n}")
    scheduled = h.ok(cmd.ChangeTier(tier="free"))
    renews_at = datetime.fromisoformat(scheduled["effective_at"])
    assert all(h.rule(f"r{n}").status == "active" for n in range(3)), "until the renewal"
    h.now = renews_at
    renewed = h.ok(cmd.RenewCreditPeriod(renews_at=renews_at))
    assert renewed["tier"] == "free" and renewed["rules_paused"] == ["r2", "r1", "r0"]
    assert [h.rule(f"r{n}").status for n in range(3)] == ["paused"] * 3
    h.rejected(cmd.ResumeAutomationRule(rule_id="r0"), "automation_rule_limit_reached")
    # The paused rule fires nothing, however long it waits.
    h.advance(3 * 86400)
    assert h.tick("r0") == "not_due", "a paused rule has no next run"
    h.rejected(cmd.FireRuleOccurrence(rule_id="r0", occurrence_at=berlin(2030, 3, 26, 9, 0)), "rule_not_active")
    assert h.events_of("herald.automation_rule.fired.v1") == []


# The runner ---------------------------------------------------------------------------------


def test_each_occurrence_fires_once_and_schedules_one_post_with_held_credits(rig: Rig) -> None:
    rig.create("daily")
    assert rig.tick("daily") == "not_due"
    rig.now = berlin(2030, 3, 25, 9, 0, 5)
    assert rig.tick("daily") == "succeeded"
    assert rig.tick("daily") == "not_due"
    occurrence = berlin(2030, 3, 25, 9, 0)
    assert rig.runner.fire(WS, "daily", occurrence) == "succeeded", "the same decisions repeated, nothing new"
    rig.rejected(cmd.FireRuleOccurrence(rule_id="daily", occurrence_at=occurrence), "occurrence_already_fired")
    post = rig.app.find(Post, run_post_id(WS, "daily", occurrence))
    assert post is not None and sorted(post.destinations) == ["acc-m", "acc-s"]
    wallet = rig.app.find(Wallet, WS)
    assert len(wallet.holds) == 2, "one credit held per destination, as any scheduled post"
    assert len(rig.events_of("herald.post.scheduled.v1")) == 1
    [done] = rig.events_of("herald.automation_rule.run_succeeded.v1")
    assert done["post_id"] == run_post_id(WS, "daily", occurrence)
    assert rig.rule("daily").next_run_at == berlin(2030, 3, 26, 9, 0)


def test_a_run_cut_short_anywhere_is_finished_once(rig: Rig) -> None:
    rig.create("daily")
    occurrence = berlin(2030, 3, 25, 9, 0)
    rig.now = occurrence + timedelta(seconds=1)
    # cut after the claim: only the fire decision was made
    fire_id = command_id("fire", WS, "daily", occurrence)
    rig.send(cmd.FireRuleOccurrence(rule_id="daily", occurrence_at=occurrence), command_id=fire_id)
    assert rig.rule("daily").run is not None
    rig.rejected(cmd.FireRuleOccurrence(rule_id="daily", occurrence_at=berlin(2030, 3, 26, 9, 0)), "rule_run_pending")
    assert rig.tick("daily") == "finished succeeded; not_due"
    calls = rig.provider.calls
    # the same run again (a second runner, a stale read model): no second post, no provider call
    assert rig.runner.finish(WS, "daily", occurrence) == "succeeded"  # the repeated decisions, nothing new
    assert rig.runner.fire(WS, "daily", occurrence) == "succeeded"  # the repeated decisions, nothing new
    assert rig.provider.calls == calls
    assert len(rig.events_of("herald.post.scheduled.v1")) == 1
    assert len(rig.events_of("herald.automation_rule.run_succeeded.v1")) == 1


def test_a_failing_generation_is_recorded_and_the_next_occurrence_fires(rig: Rig) -> None:
    rig.create("daily")
    rig.provider.failing = True
    rig.now = berlin(2030, 3, 25, 9, 0, 1)
    assert rig.tick("daily") == "failed:generation_transient"
    [failed] = rig.events_of("herald.automation_rule.run_failed.v1")
    assert failed["reason"] == "generation_transient" and "503" in failed["detail"]
    assert rig.events_of("herald.post.scheduled.v1") == []
    assert rig.tick("daily") == "not_due", "the failed occurrence is not fired again"
    rig.provider.failing = False
    rig.now = berlin(2030, 3, 26, 9, 0, 1)
    assert rig.tick("daily") == "succeeded"
    assert len(rig.events_of("herald.post.scheduled.v1")) == 1


def test_a_post_the_domain_refuses_is_a_recorded_failure(make_app: AppFactory) -> None:
    h = Rig(make_app, tier="pro", daily_generations=1)
    h.create("hourly", "FREQ=HOURLY;BYMINUTE=0;BYSECOND=0")
    h.now = berlin(2030, 3, 25, 9, 0, 1)
    assert h.tick("hourly") == "succeeded"
    h.now = berlin(2030, 3, 25, 10, 0, 1)
    assert h.tick("hourly") == "failed:daily_generation_limit_reached"
    h.ok(cmd.SetLimitOverrides(limit_overrides={"daily_generations": 10, "queue_size": 1}))
    h.now = berlin(2030, 3, 25, 11, 0, 1)
    assert h.tick("hourly") == "failed:queue_full"
    reasons = [e["reason"] for e in h.events_of("herald.automation_rule.run_failed.v1")]
    assert reasons == ["daily_generation_limit_reached", "queue_full"]


def test_after_downtime_the_latest_missed_occurrence_fires_and_older_ones_are_counted(rig: Rig) -> None:
    rig.create("hourly", "FREQ=HOURLY;BYMINUTE=0;BYSECOND=0", catch_up_window_s=1800)
    rig.now = berlin(2030, 3, 25, 12, 10)  # 08:00 … 12:00 passed while nothing ran
    assert rig.tick("hourly") == "succeeded"
    [fired] = rig.events_of("herald.automation_rule.fired.v1")
    assert fired["occurrence_at"] == berlin(2030, 3, 25, 12, 0).isoformat().replace("+00:00", "Z")
    assert fired["skipped_before"] == 4
    rig.now = berlin(2030, 3, 25, 15, 45)  # 13:00, 14:00, 15:00: even 15:00 is older than the window
    assert rig.tick("hourly") == "skipped"
    [skipped] = rig.events_of("herald.automation_rule.occurrences_skipped.v1")
    assert (skipped["count"], skipped["reason"]) == (3, "missed_catch_up_window")
    assert len(rig.events_of("herald.post.scheduled.v1")) == 1
    rig.now = berlin(2030, 3, 25, 16, 0, 2)
    assert rig.tick("hourly") == "succeeded"


def test_a_long_downtime_of_a_frequent_rule_fires_only_the_latest(rig: Rig) -> None:
    rig.create("minutely", "* * * * *", kind="cron")
    rig.now = T0 + timedelta(days=10, seconds=30)  # 14,400 occurrences passed
    assert rig.tick("minutely") == "succeeded"
    [fired] = rig.events_of("herald.automation_rule.fired.v1")
    assert datetime.fromisoformat(fired["occurrence_at"]) == T0 + timedelta(days=10)
    assert fired["skipped_before"] == schedules.COUNT_CAP - 1, "counted up to the cap"
    assert rig.rule("minutely").cursor == T0 + timedelta(days=10)
    assert rig.tick("minutely") == "not_due"
    assert len(rig.events_of("herald.post.scheduled.v1")) == 1, "no burst of stale posts"


def test_draft_for_approval_makes_a_draft_submitted_where_approval_is_required(rig: Rig) -> None:
    rig.create("drafts", approval_mode="draft_for_approval")
    rig.now = berlin(2030, 3, 25, 9, 0, 1)
    assert rig.tick("drafts") == "succeeded"
    post = rig.app.find(Post, run_post_id(WS, "drafts", berlin(2030, 3, 25, 9, 0)))
    assert post is not None and post.status == "draft"
    assert rig.events_of("herald.post.scheduled.v1") == [] and not rig.app.find(Wallet, WS).holds
    rig.ok(cmd.SetContentPolicy(requires_approval=True))
    rig.now = berlin(2030, 3, 26, 9, 0, 1)
    assert rig.tick("drafts") == "succeeded"
    post = rig.app.find(Post, run_post_id(WS, "drafts", berlin(2030, 3, 26, 9, 0)))
    assert post is not None and post.status == "needs_approval"


# The property -------------------------------------------------------------------------------


class RuleRunnerMachine(RuleBasedStateMachine):
    """Any sequence of clock advances, runner ticks, pauses, resumes and runs cut short (after the
    claim, or after the generation): each occurrence fires at most once with at most one post, and
    every occurrence due while the rule was active at a tick is fired or counted as missed."""

    make_app: AppFactory

    @initialize()
    def start(self) -> None:
        self.h = Rig(type(self).make_app, tier="pro", daily_generations=100_000, queue_size=100_000,
                     daily_posts_per_platform=100_000)
        self.h.ok(cmd.GrantCredits(amount=1_000_000))
        self.h.create("r", "FREQ=MINUTELY;INTERVAL=7;BYSECOND=0", catch_up_window_s=7 * 86400)
        self.schedule = self.h.rule("r").schedule
        self.active = True
        self.armed = self.h.now  # occurrences after it belong to the current active interval
        self.windows: list[tuple[datetime, datetime]] = []  # (armed, last tick while active)
        self.last_tick: datetime | None = None

    @rule(seconds=st.integers(1, 3600))
    def advance(self, seconds: int) -> None:
        self.h.advance(seconds)

    @rule()
    def tick(self) -> None:
        self.h.tick("r")
        if self.active:
            self.last_tick = self.h.now

    @precondition(lambda self: self.active)
    @rule(after_generation=st.booleans())
    def cut_a_run_short(self, after_generation: bool) -> None:
        due = self.h.due("r")
        if due.pending_occurrence is not None:
            return
        occurrence = occurrence_to_fire(due, self.h.now)
        if occurrence is None:
            return
        fire_id = command_id("fire", WS, "r", occurrence)
        fired = self.h.send(cmd.FireRuleOccurrence(rule_id="r", occurrence_at=occurrence), command_id=fire_id)
        if fired.accepted and after_generation and fired.result["run"] == "pending":
            # what the runner would do next, then the "crash": the generation recorded, no post
            d = fired.result["definition"]
            request = prompt.GenerationRequest(topic=d["topic"], platforms=d["platforms"], tone=d["tone"],
                                               language=d["language"], context=d["context"], media_description="",
                                               voice=voice_of(None))
            gid = fired.result["generation_id"]
            self.h.send(outcome_of(self.h.runner.generator, gid, request),
                        command_id=derived_id("record_generation_outcome", WS, gid))
        self.last_tick = self.h.now  # the claim was a tick's work

    @precondition(lambda self: self.active)
    @rule()
    def pause(self) -> None:
        self.h.ok(cmd.PauseAutomationRule(rule_id="r"))
        self._close_window()
        self.active = False

    @precondition(lambda self: not self.active)
    @rule()
    def resume(self) -> None:
        self.h.ok(cmd.ResumeAutomationRule(rule_id="r"))
        self.active, self.armed = True, self.h.now

    def _close_window(self) -> None:
        if self.last_tick is not None and self.last_tick > self.armed:
            self.windows.append((self.armed, self.last_tick))
        self.last_tick = None

    def _fired(self) -> list[datetime]:
        return [datetime.fromisoformat(e["occurrence_at"]) for e in self.h.events_of("herald.automation_rule.fired.v1")]

    @invariant()
    def each_occurrence_fires_at_most_once_with_at_most_one_post(self) -> None:
        if not hasattr(self, "h"):
            return
        fired = self._fired()
        assert fired == sorted(set(fired)), "strictly increasing: none twice"
        assert all(self.schedule.is_occurrence(f) for f in fired)
        posts = [e["post_id"] for e in self.h.events_of("herald.post.scheduled.v1")]
        assert len(posts) == len(set(posts))
        assert set(posts) <= {run_post_id(WS, "r", f) for f in fired}

    def teardown(self) -> None:
        if not hasattr(self, "h"):
            return
        self.tick()  # a run cut short is finished by the next tick, whatever the rule's state
        assert self.h.rule("r").run is None
        fired = self._fired()
        successes = self.h.events_of("herald.automation_rule.run_succeeded.v1")
        assert len(successes) == len(fired), "every fired occurrence ended with its post"
        assert len(self.h.events_of("herald.post.scheduled.v1")) == len(fired)
        if self.active:
            self._close_window()
        # None lost: every occurrence due at a tick while active was fired or counted as missed.
        due = [o for start, end in self.windows for o in self.schedule.between(start, end)[0]]
        counted = sum(e["skipped_before"] for e in self.h.events_of("herald.automation_rule.fired.v1"))
        counted += sum(e["count"] for e in self.h.events_of("herald.automation_rule.occurrences_skipped.v1"))
        assert len(fired) + counted == len(due), (len(fired), counted, len(due))
        for start, end in self.windows:
            latest = self.schedule.between(start, end)[0]
            if latest:
                assert latest[-1] in fired, "the latest occurrence due at a tick always fires"


def _in_memory(clock, **kwargs):  # type: ignore[no-untyped-def]
    # A fresh store per example (the PostgreSQL store's runs are the example tests above).
    return HeraldApplication({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock, **kwargs)


def test_rule_runner_state_machine() -> None:
    RuleRunnerMachine.make_app = staticmethod(_in_memory)
    machine = RuleRunnerMachine.TestCase
    machine.settings = settings(max_examples=60, stateful_step_count=30, deadline=None,
                                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    machine().runTest()


def test_rules_stay_bounded(rig: Rig) -> None:
    """However many runs, a rule keeps its cursor and at most one run; the workspace its rule ids."""
    rig.create("minutely", "FREQ=MINUTELY;BYSECOND=0")
    for _ in range(30):
        rig.advance(60)
        rig.tick("minutely")
    state = rig.rule("minutely").__dict__
    assert set(state) <= {"_id", "_version", "_created_on", "_modified_on", "_pending_events", "workspace_id",
                          "rule_id", "definition", "status", "cursor", "last_fired", "run", "next_run_at"}
    assert rig.workspace().rule_ids == ["minutely"]
    assert isinstance(rig.app, HeraldApplication) and isinstance(rig.workspace(), Workspace)
