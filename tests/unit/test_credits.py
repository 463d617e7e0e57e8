"""The credit model on both event stores: grant expiry (with holds keeping their credits),
the expiring-soon warning, monthly renewal with carryover in the workspace's time zone, hold
expiry, zero credits at publish time, the low-credit notice, tiers as data and tier changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.workspace.tier_catalogue import ADMIN_WORKSPACE
from schemas import commands as cmd
from tests.unit.stores import AppFactory, make_app  # noqa: F401 - the fixture
from tests.unit.test_domain import WS, Herald

DAY = timedelta(days=1)


class Credits(Herald):
    def open_ws(self, tier: str = "free", timezone: str = "UTC", start: bool = False, **overrides: int) -> dict:
        return self.ok(cmd.OpenWorkspace(name=WS, tier=tier, timezone=timezone, limit_overrides=overrides,
                                         start_with_monthly_credits=start))

    def types(self, since: int = 0) -> list[str]:
        return [kind for kind, _, _ in self.events()[since:]]


@pytest.fixture
def c(make_app: AppFactory) -> Credits:
    return Credits(make_app)


def test_a_grant_expires_at_its_expiry_and_only_once(c: Credits) -> None:
    c.open_ws()
    c.grant(5, expires_in=DAY, grant_id="g1")
    c.rejected(cmd.ExpireGrant(grant_id="g1"), "not_due")
    c.advance(DAY.total_seconds())
    assert c.ok(cmd.ExpireGrant(grant_id="g1"))["expired"] == 5
    assert c.ok(cmd.ExpireGrant(grant_id="g1"))["expired"] == 0, "a second expiry of the same grant expires nothing"
    [expired] = c.events_of("herald.wallet.grant_expired.v1")
    assert expired == {"grant_id": "g1", "amount": 5, "reserved": 0, "reason": "expired"}
    assert c.wallet().available == 0 and not c.wallet().grants


def test_pending_holds_keep_their_credits_when_the_grant_expires(c: Credits) -> None:
    c.open_ws(daily_posts_per_platform=10)
    c.connect("acc-a")
    c.grant(5, expires_in=DAY, grant_id="g1")
    c.schedule("p1", "acc-a", publish_in_s=3 * 3600)
    c.schedule("p2", "acc-a", publish_in_s=3 * 3600)
    c.advance(DAY.total_seconds())
    assert c.ok(cmd.ExpireGrant(grant_id="g1"))["expired"] == 3, "the two held credits stay reserved"
    wallet = c.wallet()
    assert (wallet.granted, wallet.held, wallet.available) == (2, 2, 0)
    # Consuming p1's hold burns the reserved credit; releasing p2's expires the one left.
    c.ok(cmd.ConsumeHold(hold_id=c.post("p1").destinations["acc-a"].hold_id))
    c.ok(cmd.ReleaseHold(hold_id=c.post("p2").destinations["acc-a"].hold_id, reason="publish_failed"))
    assert [e["reason"] for e in c.events_of("herald.wallet.grant_expired.v1")] == ["expired", "hold_ended"]
    assert sum(e["amount"] for e in c.events_of("herald.wallet.grant_expired.v1")) == 4
    assert c.wallet().granted == 0 and c.wallet().available == 0


def test_a_grant_past_its_expiry_is_not_usable_before_the_clock_records_it(c: Credits) -> None:
    c.open_ws()
    c.connect("acc-a")
    c.grant(2, expires_in=DAY, grant_id="old")
    c.advance(DAY.total_seconds() + 1)
    c.rejected(cmd.SchedulePost(post_id="p", text="hi", destinations=["acc-a"]), "insufficient_credits")
    c.grant(1, grant_id="new")
    c.schedule("p", "acc-a")
    assert c.wallet().holds[c.post("p").destinations["acc-a"].hold_id].reserved == {"new": 1}
    consumed = c.ok(cmd.ConsumeHold(hold_id=c.post("p").destinations["acc-a"].hold_id))
    assert consumed["available"] == 0
    [burned] = c.events_of("herald.wallet.hold_consumed.v1")
    assert burned["burned"] == [{"grant_id": "new", "amount": 1}], "the dead grant paid nothing"
    assert c.ok(cmd.ExpireGrant(grant_id="old"))["expired"] == 2
    assert c.wallet().granted == 0


def test_consumption_burns_the_grant_that_expires_first_and_records_it(c: Credits) -> None:
    c.open_ws()
    c.connect("acc-a")
    c.grant(3, grant_id="forever")
    c.grant(3, expires_in=5 * DAY, grant_id="late")
    c.grant(3, expires_in=2 * DAY, grant_id="soon")
    c.schedule("p", "acc-a")
    c.ok(cmd.ConsumeHold(hold_id=c.post("p").destinations["acc-a"].hold_id))
    [consumed] = c.events_of("herald.wallet.hold_consumed.v1")
    assert consumed["burned"] == [{"grant_id": "soon", "amount": 1}]


def test_the_expiring_soon_warning_names_the_grant_once_it_is_due(c: Credits) -> None:
    c.open_ws()
    c.grant(4, expires_in=5 * DAY, grant_id="g")
    assert c.ok(cmd.WarnExpiringCredits(grant_id="g"))["warned"] is True
    [warning] = c.events_of("herald.wallet.credits_expiring_soon.v1")
    assert warning["grant_id"] == "g" and warning["amount"] == 4
    assert c.ok(cmd.WarnExpiringCredits(grant_id="missing"))["warned"] is False


def test_the_period_renews_at_local_midnight_across_a_dst_change(c: Credits) -> None:
    c.now = datetime(2030, 3, 15, 10, 0, tzinfo=UTC)  # Berlin is on CET (+01:00)
    c.open_ws(tier="free", timezone="Europe/Berlin", start=True)
    period = c.wallet().period
    # 15 April 00:00 CEST (+02:00) = 14 April 22:00 UTC: the month was an hour short in UTC.
    assert period.renews_at == datetime(2030, 4, 14, 22, 0, tzinfo=UTC)
    c.now = period.renews_at - timedelta(seconds=1)
    c.rejected(cmd.RenewCreditPeriod(renews_at=period.renews_at), "not_due")
    c.now = period.renews_at
    renewed = c.ok(cmd.RenewCreditPeriod(renews_at=period.renews_at))
    # 15 May 00:00 CEST, then back to CET in November.
    assert renewed["renews_at"] == "2030-05-14T22:00:00+00:00"
    for _ in range(6):
        at = c.wallet().period.renews_at
        c.now = at
        c.ok(cmd.RenewCreditPeriod(renews_at=at))
    assert c.wallet().period.renews_at == datetime(2030, 11, 14, 23, 0, tzinfo=UTC)


def test_the_31st_renews_on_the_last_day_of_a_shorter_month(c: Credits) -> None:
    c.now = datetime(2030, 1, 31, 12, 0, tzinfo=UTC)
    c.open_ws(timezone="America/New_York")
    assert c.wallet().period.renews_at == datetime(2030, 2, 28, 5, 0, tzinfo=UTC)  # EST midnight
    c.now = c.wallet().period.renews_at
    c.ok(cmd.RenewCreditPeriod(renews_at=c.now))
    assert c.wallet().period.renews_at == datetime(2030, 3, 31, 4, 0, tzinfo=UTC)  # EDT midnight


def test_renewal_grants_the_monthly_credits_carries_unused_up_to_the_cap_and_keeps_top_ups(c: Credits) -> None:
    c.open_ws(tier="free", start=True, carryover_cap=3, daily_posts_per_platform=10)
    c.connect("acc-a")
    c.grant(7, grant_id="purchase")  # a top-up: never reset
    assert c.wallet().available == 17
    for n in range(4):
        c.schedule(f"p{n}", "acc-a", publish_in_s=60)
        c.ok(cmd.ConsumeHold(hold_id=c.post(f"p{n}").destinations["acc-a"].hold_id))
    # The monthly grant expires first, so it paid: 6 monthly credits left, 7 purchased.
    renews_at = c.wallet().period.renews_at
    c.now = renews_at
    c.ok(cmd.RenewCreditPeriod(renews_at=renews_at))
    [carried] = c.events_of("herald.wallet.credits_carried_over.v1")
    assert carried["amount"] == 3
    reset = [e for e in c.events_of("herald.wallet.grant_expired.v1") if e["reason"] == "period_reset"]
    assert sum(e["amount"] for e in reset) == 3
    wallet = c.wallet()
    assert wallet.grants["purchase"].remaining == 7
    assert sorted(g.source for g in wallet.grants.values()) == ["carryover", "manual", "monthly"]
    assert wallet.available == 7 + 3 + 10
    again = c.send(cmd.RenewCreditPeriod(renews_at=renews_at))
    assert not again.accepted and again.reason_code == "not_due", "a period renews once"


def test_a_renewal_keeps_what_pending_holds_need_of_the_monthly_credits(c: Credits) -> None:
    c.open_ws(tier="free", start=True, daily_posts_per_platform=10, scheduling_horizon_days=60, queue_size=20)
    c.connect("acc-a")
    for n in range(10):
        c.schedule(f"p{n}", "acc-a", publish_in_s=40 * 86400)
    renews_at = c.wallet().period.renews_at
    c.now = renews_at
    c.ok(cmd.RenewCreditPeriod(renews_at=renews_at))
    reset = [e for e in c.events_of("herald.wallet.grant_expired.v1") if e["reason"] == "period_reset"]
    assert [(e["amount"], e["reserved"]) for e in reset] == [(0, 10)]
    wallet = c.wallet()
    assert (wallet.held, wallet.available) == (10, 10), "the new month's 10 are free, last month's back the holds"


def test_a_hold_past_due_plus_grace_is_released_and_its_destination_skipped(c: Credits) -> None:
    c.open_ws()
    c.connect("acc-a")
    c.grant(1)
    c.schedule("p", "acc-a", publish_in_s=3600)
    hold_id = c.post("p").destinations["acc-a"].hold_id
    c.advance(3600 + 23 * 3600)
    c.rejected(cmd.ExpireHold(hold_id=hold_id), "not_due")
    c.advance(3600)
    assert c.ok(cmd.ExpireHold(hold_id=hold_id))["released"] is True
    [released] = c.events_of("herald.wallet.hold_released.v1")
    assert released["reason"] == "hold_expired"
    assert c.ok(cmd.ExpireHold(hold_id=hold_id))["released"] is False
    assert c.wallet().available == 1


def test_an_attempt_without_its_hold_is_skipped_for_insufficient_credits(c: Credits) -> None:
    c.open_ws()
    c.connect("acc-a")
    c.connect("acc-b", platform="mastodon")
    c.grant(2)
    c.schedule("p", "acc-a", "acc-b")
    c.ok(cmd.ReleaseHold(hold_id=c.post("p").destinations["acc-a"].hold_id, reason="test"))
    started = c.start("p", "acc-a")
    assert started.accepted and started.result["status"] == "skipped"
    assert c.post("p").destinations["acc-a"].reason == "insufficient_credits"
    other = c.start("p", "acc-b")
    assert other.accepted and c.post("p").destinations["acc-b"].status == "attempting", "the rest goes on"
    assert not c.events_of("herald.post.attempt_started.v1")[0]["destination_id"] == "acc-a"


def test_the_low_credit_notice_comes_once_per_period(c: Credits) -> None:
    c.open_ws(tier="free", start=True, daily_posts_per_platform=20, queue_size=20)  # 10 a month: low at 2
    c.connect("acc-a")
    for n in range(7):
        c.schedule(f"p{n}", "acc-a")
    assert not c.events_of("herald.wallet.credits_low.v1")
    c.schedule("p7", "acc-a")
    c.schedule("p8", "acc-a")
    [low] = c.events_of("herald.wallet.credits_low.v1")
    assert (low["available"], low["threshold"]) == (2, 2)
    renews_at = c.wallet().period.renews_at
    c.now = renews_at
    c.ok(cmd.RenewCreditPeriod(renews_at=renews_at))
    for n in range(9, 18):
        c.schedule(f"p{n}", "acc-a", publish_in_s=60)
    assert len(c.events_of("herald.wallet.credits_low.v1")) == 2, "once more in the new period"


# Tiers as data -----------------------------------------------------------------------------

STARTER = {"accounts_per_platform": 2, "queue_size": 7, "daily_generations": 3, "daily_posts_per_platform": 4,
           "automation_rules": 1, "monthly_credits": 50, "scheduling_horizon_days": 14, "carryover_cap": 10}


def test_an_admin_defines_tiers_in_versions_and_workspaces_open_on_them(c: Credits) -> None:
    first = c.ok(cmd.DefineTier(tier="starter", limits=STARTER), workspace=ADMIN_WORKSPACE)
    assert first["version"] == 1
    opened = c.open_ws(tier="starter", start=True)
    assert opened["limits"] == STARTER and c.wallet().available == 50
    second = c.ok(cmd.DefineTier(tier="starter", limits={**STARTER, "monthly_credits": 60}), workspace=ADMIN_WORKSPACE)
    assert second["version"] == 2
    assert c.workspace().limit("monthly_credits") == 50, "a workspace stays on its version until it renews"
    renews_at = c.wallet().period.renews_at
    c.now = renews_at
    c.ok(cmd.RenewCreditPeriod(renews_at=renews_at))
    assert c.workspace().tier_version == 2 and c.workspace().limit("monthly_credits") == 60
    assert c.events_of("herald.workspace.tier_changed.v1")[-1]["reason"] == "new_version"
    c.rejected(cmd.OpenWorkspace(name="x", tier="platinum"), "unknown_tier", workspace="other")


def test_an_upgrade_is_immediate_and_tops_up_the_month(c: Credits) -> None:
    c.open_ws(tier="free", start=True)
    result = c.ok(cmd.ChangeTier(tier="pro"))
    assert result["monthly_top_up"] == 490
    assert c.workspace().tier == "pro" and c.workspace().limit("queue_size") == 50
    assert c.wallet().available == 500
    [changed] = c.events_of("herald.workspace.tier_changed.v1")
    assert (changed["from_tier"], changed["to_tier"], changed["reason"]) == ("free", "pro", "upgrade")


def test_a_downgrade_waits_for_the_renewal_and_queued_posts_stay(c: Credits) -> None:
    c.open_ws(tier="pro", start=True)
    c.connect("acc-a")
    for n in range(8):
        c.schedule(f"p{n}", "acc-a", publish_in_s=86400 * 3)
    result = c.ok(cmd.ChangeTier(tier="free"))
    renews_at = c.wallet().period.renews_at
    assert result["effective_at"] == renews_at.isoformat() and c.workspace().tier == "pro"
    [scheduled] = c.events_of("herald.workspace.tier_change_scheduled.v1")
    assert scheduled["to_tier"] == "free"
    c.now = renews_at
    c.ok(cmd.RenewCreditPeriod(renews_at=renews_at))
    assert c.workspace().tier == "free" and c.workspace().limit("queue_size") == 5
    assert len(c.workspace().waiting_posts) == 8, "queued posts over the new limit stay queued"
    c.rejected(cmd.SchedulePost(post_id="p9", text="hi", destinations=["acc-a"]), "queue_full")
    assert c.wallet().period.monthly_credits == 10
    monthly = [g for g in c.wallet().grants.values() if g.source == "monthly" and not g.expired]
    assert [g.amount for g in monthly] == [10]


def test_limit_overrides_replace_the_tier_limits_for_one_workspace(c: Credits) -> None:
    c.open_ws(tier="free")
    result = c.ok(cmd.SetLimitOverrides(limit_overrides={"queue_size": 9}))
    assert result["limits"]["queue_size"] == 9 and c.workspace().limit("queue_size") == 9
    c.ok(cmd.SetLimitOverrides(limit_overrides={}))
    assert c.workspace().limit("queue_size") == 5


def test_the_first_renewal_can_follow_the_subscription(c: Credits) -> None:
    c.now = datetime(2030, 1, 7, 15, 0, tzinfo=UTC)
    first = datetime(2030, 1, 20, 9, 30, tzinfo=UTC)
    c.ok(cmd.OpenWorkspace(name=WS, timezone="Asia/Tokyo", first_renewal_at=first))
    assert c.wallet().period.renews_at == first
    c.now = first
    c.ok(cmd.RenewCreditPeriod(renews_at=first))
    # Then on its local day (20 January in Tokyo) at local midnight: 20 February 00:00 JST.
    assert c.wallet().period.renews_at == datetime(2030, 2, 19, 15, 0, tzinfo=UTC)
    c.rejected(cmd.OpenWorkspace(name="x", first_renewal_at=c.now + timedelta(days=40)), "invalid_payload",
               workspace="other")


def test_workspaces_opened_before_periods_get_one_once_at_the_upgrade(c: Credits) -> None:
    from domain.base import Context
    from domain.wallet import Wallet
    from domain.wallet.upgrade_periods import start_missing_periods
    from domain.workspace import Workspace

    ctx = Context(command_id="old-open", correlation_id="old-open", workspace_id="old", issued_by="v1", now=c.now)
    c.app.save(Workspace.open(ctx, "old", "pro", "UTC", {}), Wallet.open(ctx))  # as the previous version opened it
    c.open_ws()  # a workspace of this version: it has its period already
    own_period = c.wallet().period
    assert c.wallet("old").period is None
    assert start_missing_periods(c.app) == 2
    period = c.wallet("old").period
    assert period is not None and period.monthly_credits == 500 and period.renews_at > c.now
    assert c.wallet().period == own_period, "a workspace with a period keeps it"
    before = len(c.events())
    start_missing_periods(c.app)
    assert len(c.events()) == before, "a second run changes nothing"
