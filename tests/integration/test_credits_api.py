"""The credit and tier endpoints on a real PostgreSQL: tier-limit rejections with the breach,
the notifications inbox (one notice per cause per day, mark read), usage per local day, the
side-effect-free limit check, tiers as data and tier changes (admin only)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.integration.test_gateway import ADMIN, Gateway, assert_problem

pytestmark = pytest.mark.integration

TOKYO = ZoneInfo("Asia/Tokyo")
STARTER = {"accounts_per_platform": 2, "queue_size": 7, "daily_generations": 3, "daily_posts_per_platform": 4,
           "automation_rules": 1, "monthly_credits": 50, "scheduling_horizon_days": 14, "carryover_cap": 10}


@pytest.fixture
def gw(database_url):
    gateway = Gateway(database_url)
    yield gateway
    gateway.close()


def test_a_tier_limit_rejection_names_the_limit_and_raises_one_notice_a_day(gw):
    ws, key = gw.api.open_workspace("free-ws")
    gw.api.connect(ws, key, "first")
    second = gw.http.post(f"/v1/workspaces/{ws}/social-accounts", json={"platform": "sandbox", "handle": "second"},
                          headers=key)
    body = assert_problem(second, 409, "account_limit_reached")
    assert body["limit"] == {"limit": "accounts_per_platform", "tier": "free", "current": 1, "allowed": 1}
    inbox = gw.get(f"/v1/workspaces/{ws}/notifications", headers=key).json()
    assert inbox["unread"] == 1
    [notice] = inbox["notices"]
    assert notice["cause"] == "tier_limit_reached" and notice["count"] == 1
    assert notice["detail"]["limit"] == "accounts_per_platform"

    read = gw.http.post(f"/v1/workspaces/{ws}/notifications/read", json={"notice_ids": [notice["notice_id"]]},
                        headers=key)
    assert read.status_code == 200, read.text
    assert gw.get(f"/v1/workspaces/{ws}/notifications", headers=key).json()["unread"] == 0

    again = gw.http.post(f"/v1/workspaces/{ws}/social-accounts", json={"platform": "sandbox", "handle": "third"},
                         headers=key)
    assert_problem(again, 409, "account_limit_reached")
    inbox = gw.get(f"/v1/workspaces/{ws}/notifications", headers=key).json()
    assert [(n["notice_id"], n["count"], n["read_at"]) for n in inbox["notices"]] == [
        (notice["notice_id"], 2, None)], "the same cause the same day: one notice, counted twice, unread again"


def test_usage_per_local_day_and_the_limit_check(gw):
    ws, key = gw.api.open_workspace("usage-ws", timezone="Asia/Tokyo")
    account = gw.api.connect(ws, key)
    gw.api.grant(ws, key, 5)
    due = datetime.now(UTC) + timedelta(days=2)
    for _ in range(2):
        assert gw.api.schedule(ws, key, [account], publish_at=due).status_code == 201
    day = due.astimezone(TOKYO).date().isoformat()
    usage = gw.get(f"/v1/workspaces/{ws}/usage", headers=key,
                   params={"from": datetime.now(UTC).date().isoformat(), "to": day}).json()
    assert usage["totals"]["posts_scheduled"] == {"sandbox": 2}
    assert usage["totals"]["credits_granted"] == 5
    assert [d for d in usage["days"] if d["day"] == day][0]["posts_scheduled"] == {"sandbox": 2}
    assert usage["period"]["tier"] == "free" and usage["period"]["monthly_credits"] == 10

    position = gw.app.recorder.max_notification_id()
    check = gw.get(f"/v1/workspaces/{ws}/limits/check", headers=key,
                   params={"action": "schedule", "platform": "sandbox", "day": day}).json()
    daily = [c for c in check["checks"] if c["limit"] == "daily_posts_per_platform"][0]
    assert check["allowed"] is False and (daily["current"], daily["allowed"], daily["ok"]) == (2, 2, False)
    other_day = (due + timedelta(days=1)).astimezone(TOKYO).date()
    assert gw.get(f"/v1/workspaces/{ws}/limits/check", headers=key, params={
        "action": "schedule", "platform": "sandbox", "day": other_day.isoformat()}).json()["allowed"] is True
    far = gw.get(f"/v1/workspaces/{ws}/limits/check", headers=key, params={
        "action": "schedule", "platform": "sandbox", "day": (other_day + timedelta(days=30)).isoformat()}).json()
    assert far["allowed"] is False, "beyond the free tier's 7-day horizon"
    connect = gw.get(f"/v1/workspaces/{ws}/limits/check", headers=key,
                     params={"action": "connect", "platform": "sandbox"}).json()
    assert connect["allowed"] is False and connect["checks"][0]["current"] == 1
    assert gw.get(f"/v1/workspaces/{ws}/limits/check", headers=key,
                  params={"action": "generate"}).json()["allowed"] is True
    assert gw.app.recorder.max_notification_id() == position, "checking changed nothing"


def test_tiers_are_defined_and_changed_by_the_admin_only(gw):
    ws, key = gw.api.open_workspace("tiered")
    assert_problem(gw.http.post("/v1/admin/tiers", json={"tier": "starter", "limits": STARTER}, headers=key),
                   403, "forbidden")
    defined = gw.http.post("/v1/admin/tiers", json={"tier": "starter", "limits": STARTER}, headers=ADMIN)
    assert defined.status_code == 201 and defined.json()["version"] == 1, defined.text
    incomplete = gw.http.post("/v1/admin/tiers", json={"tier": "tiny", "limits": {"queue_size": 1}}, headers=ADMIN)
    assert_problem(incomplete, 422, "validation_error")
    tiers = {t["tier"]: t for t in gw.get("/v1/tiers", headers=key).json()["tiers"]}
    assert tiers["starter"]["version"] == 1 and tiers["free"]["version"] == 0

    assert_problem(gw.http.post(f"/v1/workspaces/{ws}/tier", json={"tier": "starter"}, headers=key), 403, "forbidden")
    upgraded = gw.http.post(f"/v1/workspaces/{ws}/tier", json={"tier": "starter"}, headers=ADMIN)
    assert upgraded.status_code == 200 and upgraded.json()["monthly_top_up"] == 40, upgraded.text
    shown = gw.get(f"/v1/workspaces/{ws}", headers=key).json()
    assert shown["tier"] == "starter" and shown["limits"]["queue_size"] == 7
    assert gw.get(f"/v1/workspaces/{ws}/queue", headers=key).json()["queue_size"] == 7

    downgraded = gw.http.post(f"/v1/workspaces/{ws}/tier", json={"tier": "free"}, headers=ADMIN).json()
    scheduled = gw.get(f"/v1/workspaces/{ws}/tier-change", headers=key).json()["scheduled"]
    assert scheduled["to_tier"] == "free"
    assert datetime.fromisoformat(downgraded["effective_at"]) == datetime.fromisoformat(
        scheduled["effective_at"].replace("Z", "+00:00"))
    assert_problem(gw.http.post(f"/v1/workspaces/{ws}/tier", json={"tier": "gold"}, headers=ADMIN), 422,
                   "unknown_tier")
