"""The credit read models fed CloudEvents built here: usage per local day (the workspace's time
zone) with destinations counted under their platform, notices one per cause per day, the clock's
items coming and going with the wallet's events."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import psycopg
import pytest

from projections import notifications, usage
from schemas import events as ev
from tests.integration.test_read_model_projections import T0, Stream, _connect, apply

pytestmark = pytest.mark.integration


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    with _connect(database_url) as connection:
        yield connection


def _published(s: Stream, post_id: str, at_offset_h: float) -> list:
    s.clock = T0 + timedelta(hours=at_offset_h) - timedelta(seconds=1)
    return [s.scheduled(post_id, ["a"], s.clock),
            s(ev.DestinationPublished(post_id=post_id, destination_id="a", attempt=1, hold_id=f"hold-{post_id}-a",
                                      platform_post_id="r", url=None), post_id)]


def test_usage_counts_per_local_day_and_platform(conn):
    s = Stream()
    apply(conn, s.opened())  # Europe/Berlin
    apply(conn, [s(ev.CreditPeriodStarted(period_start=T0, renews_at=T0 + timedelta(days=31), timezone="Europe/Berlin",
                                          renewal_day=7, tier="pro", monthly_credits=500, carryover_cap=0,
                                          low_credit_threshold=100))])
    apply(conn, [s(ev.CreditsGranted(grant_id="g", amount=5, source="purchase", expires_at=None))])
    # T0 is 09:00 UTC on 7 January: 14:30 UTC is still 7 January in Berlin, 23:30 UTC is 8 January there.
    apply(conn, _published(s, "p1", 5.5) + _published(s, "p2", 14.5))
    apply(conn, [s(ev.HoldConsumed(hold_id="hold-p1-a", amount=1, burned=[ev.Burn(grant_id="g", amount=1)])),
                 s(ev.GrantExpired(grant_id="g", amount=2, reserved=0, reason="expired"))])
    found = usage.read_usage(conn, s.ws, date(2030, 1, 7), date(2030, 1, 8))
    days = {d["day"]: d for d in found["days"]}
    assert days["2030-01-07"]["posts_published"] == {"sandbox": 1}
    assert days["2030-01-08"]["posts_published"] == {"sandbox": 1}
    assert found["totals"]["posts_published"] == {"sandbox": 2}
    assert found["totals"]["credits_granted"] == 5 and found["totals"]["credits_consumed"] == 1
    assert found["totals"]["credits_expired"] == 2
    assert found["period"]["monthly_credits"] == 500
    again = usage.read_usage(conn, s.ws, date(2030, 1, 7), date(2030, 1, 8))
    apply(conn, s.events)  # redelivered: counted once
    assert usage.read_usage(conn, s.ws, date(2030, 1, 7), date(2030, 1, 8)) == again


def test_notices_come_once_per_cause_per_local_day(conn):
    s = Stream()
    apply(conn, s.opened())

    def skipped(post_id: str, hours: float):
        s.clock = T0 + timedelta(hours=hours) - timedelta(seconds=1)
        return s(ev.DestinationSkipped(post_id=post_id, destination_id="a", hold_id="h", reason="insufficient_credits"),
                 post_id)

    apply(conn, [skipped("p1", 1), skipped("p2", 2), skipped("p3", 24)])
    apply(conn, [s(ev.CreditsLow(available=1, threshold=2, period_start=T0)),
                 s(ev.CreditsLow(available=0, threshold=2, period_start=T0 + timedelta(days=31)))])
    inbox = notifications.read_notifications(conn, s.ws)
    by_id = {n["notice_id"]: n for n in inbox["notices"]}
    assert by_id["post_skipped:2030-01-07"]["count"] == 2 and by_id["post_skipped:2030-01-08"]["count"] == 1
    assert len([n for n in inbox["notices"] if n["cause"] == "low_credits"]) == 2, "one per credit period"
    assert inbox["unread"] == 4
    apply(conn, [s(ev.NoticesRead(notice_ids=["post_skipped:2030-01-07"]))])
    assert notifications.read_notifications(conn, s.ws, unread_only=True)["unread"] == 3


def test_an_account_needing_reconnect_is_one_inbox_notice_per_credential_version(conn):
    s = Stream()
    apply(conn, s.opened())

    def refused(version: str):
        return s(ev.SocialAccountNeedsReconnect(social_account_id="a", reason="invalid_grant",
                                                credential_version=version, detail="token revoked"), "a")

    apply(conn, [refused("v1"), refused("v1"), refused("v2")])
    notices = [n for n in notifications.read_notifications(conn, s.ws)["notices"]
               if n["cause"] == "account_needs_reconnect"]
    assert sorted((n["notice_id"], n["count"]) for n in notices) == [
        ("account_needs_reconnect:a:v1", 2), ("account_needs_reconnect:a:v2", 1)]
    assert notices[0]["detail"]["social_account_id"] == "a"
