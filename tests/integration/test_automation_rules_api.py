"""The automation-rule endpoints on a real PostgreSQL: create, list and read with stats, replace,
pause, resume, delete; problem+json for a bad RRULE or cron, an unknown account, the tier limit and
resume over it; and the stats after the rule runner ran (a post, a recorded failure, next run)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from domain.automation.schedule import Schedule
from processors.automation.runner import RuleDue, RuleRunner
from processors.generation.calls import ConfiguredProvider
from processors.generation.errors import FailureKind, ProviderError
from processors.generation.offline import OfflineTemplate
from processors.generation.providers import Generator
from projections import automation_rules
from tests.integration.test_gateway import ADMIN, assert_problem
from tests.integration.test_gateway import gw  # noqa: F401 - the fixture
from tests.support import wait_until

pytestmark = pytest.mark.integration

WEEKLY = {"name": "Monday tips", "schedule_kind": "rrule", "schedule": "FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0",
          "topic": "baking tips", "tone": "warm"}


def _workspace(gw, tier: str = "pro", timezone: str = "Europe/Berlin"):
    ws, key = gw.api.open_workspace(f"ws-{tier}", tier=tier, timezone=timezone)
    account = gw.api.connect(ws, key)
    gw.api.grant(ws, key, 20)
    return ws, key, account


def test_a_rule_is_created_read_replaced_paused_resumed_and_deleted(gw):
    ws, key, account = _workspace(gw)
    base = f"/v1/workspaces/{ws}/automation-rules"
    made = gw.http.post(base, json={**WEEKLY, "destinations": [account]}, headers=key)
    assert made.status_code == 201, made.text
    rule = made.json()
    assert made.headers["Location"] == f"{base}/{rule['rule_id']}"
    assert (rule["status"], rule["timezone"], rule["approval_mode"]) == ("active", "Europe/Berlin", "auto_schedule")
    next_run = datetime.fromisoformat(rule["next_run_at"])
    assert next_run.astimezone(ZoneInfo("Europe/Berlin")).strftime("%a %H:%M") == "Mon 09:00"

    listed = gw.get(base, headers=key)
    assert listed.status_code == 200, listed.text
    [row] = listed.json()["automation_rules"]
    assert (row["rule_id"], row["runs"], row["posts"], row["failures"], row["skipped"]) == (rule["rule_id"], 0, 0, 0, 0)
    assert row["next_run_at"] and row["definition"]["topic"] == "baking tips"

    replaced = gw.http.put(f"{base}/{rule['rule_id']}", headers=key,
                           json={**WEEKLY, "schedule_kind": "cron", "schedule": "30 18 * * 5", "destinations": [account],
                                 "approval_mode": "draft_for_approval"})
    assert replaced.status_code == 200, replaced.text
    one = gw.get(f"{base}/{rule['rule_id']}", headers=key).json()
    assert (one["definition"]["schedule"], one["definition"]["approval_mode"]) == ("30 18 * * 5", "draft_for_approval")

    paused = gw.http.post(f"{base}/{rule['rule_id']}/pause", headers=key)
    assert paused.status_code == 200 and paused.json()["status"] == "paused", paused.text
    assert_problem(gw.http.post(f"{base}/{rule['rule_id']}/pause", headers=key), 409, "rule_not_active")
    shown = gw.get(f"{base}/{rule['rule_id']}", headers=key).json()
    assert (shown["status"], shown["paused_reason"]) == ("paused", "paused_by_user")
    assert gw.http.post(f"{base}/{rule['rule_id']}/resume", headers=key).json()["status"] == "active"
    assert_problem(gw.http.post(f"{base}/{rule['rule_id']}/resume", headers=key), 409, "rule_not_paused")

    deleted = gw.http.delete(f"{base}/{rule['rule_id']}", headers=key)
    assert deleted.status_code == 200 and deleted.json()["status"] == "deleted", deleted.text
    assert_problem(gw.get(f"{base}/{rule['rule_id']}", headers=key), 404, "unknown_automation_rule")
    assert_problem(gw.http.post(f"{base}/{rule['rule_id']}/pause", headers=key), 404, "unknown_automation_rule")
    assert gw.get(base, headers=key).json()["automation_rules"] == []


@pytest.mark.parametrize(("kind", "schedule"), [("rrule", "FREQ=SOMETIMES"), ("rrule", "FREQ=DAILY;BYHOUR=25"),
                                                ("cron", "every monday"), ("cron", "0 9 * * 8")])
def test_a_bad_schedule_is_a_422_problem(gw, kind, schedule):
    ws, key, account = _workspace(gw)
    answer = gw.http.post(f"/v1/workspaces/{ws}/automation-rules", headers=key,
                          json={**WEEKLY, "schedule_kind": kind, "schedule": schedule, "destinations": [account]})
    body = assert_problem(answer, 422, "invalid_schedule")
    assert body["detail"]


def test_bad_rules_are_problems(gw):
    ws, key, account = _workspace(gw)
    base = f"/v1/workspaces/{ws}/automation-rules"
    assert_problem(gw.http.post(base, json={**WEEKLY, "destinations": ["nobody"]}, headers=key),
                   422, "unknown_social_account")
    assert_problem(gw.http.post(base, json={**WEEKLY, "destinations": [account, account]}, headers=key),
                   422, "validation_error")
    assert_problem(gw.http.post(base, json={**WEEKLY, "schedule_kind": "ical", "destinations": [account]},
                                headers=key), 422, "validation_error")
    assert_problem(gw.http.post(base, json={**WEEKLY, "destinations": [account], "catch_up_window_s": 5},
                                headers=key), 422, "validation_error")
    assert_problem(gw.http.post(f"{base}/nope/resume", headers=key), 404, "unknown_automation_rule")


def test_the_tier_limits_rules_and_a_lower_limit_pauses_the_newest(gw):
    free_ws, free_key, free_account = _workspace(gw, tier="free")
    refused = assert_problem(gw.http.post(f"/v1/workspaces/{free_ws}/automation-rules", headers=free_key,
                                          json={**WEEKLY, "destinations": [free_account]}),
                             409, "automation_rule_limit_reached")
    assert refused["limit"] == {"limit": "automation_rules", "tier": "free", "current": 0, "allowed": 0}

    ws, key, account = _workspace(gw, tier="pro")
    base = f"/v1/workspaces/{ws}/automation-rules"
    check = gw.get(f"/v1/workspaces/{ws}/limits/check?action=automate", headers=key).json()
    assert check["allowed"] and check["checks"][0]["allowed"] == 5
    ids = [gw.http.post(base, json={**WEEKLY, "name": f"r{n}", "destinations": [account]}, headers=key).json()["rule_id"]
           for n in range(5)]
    check = gw.get(f"/v1/workspaces/{ws}/limits/check?action=automate", headers=key).json()
    assert not check["allowed"] and (check["checks"][0]["current"], check["checks"][0]["limit"]) == (5, "automation_rules")
    over = assert_problem(gw.http.post(base, json={**WEEKLY, "destinations": [account]}, headers=key),
                          409, "automation_rule_limit_reached")
    assert over["limit"] == {"limit": "automation_rules", "tier": "pro", "current": 5, "allowed": 5}

    lowered = gw.http.put(f"/v1/workspaces/{ws}/limit-overrides", headers=ADMIN,
                          json={"limit_overrides": {"automation_rules": 2}})
    assert lowered.status_code == 200, lowered.text
    rows = {r["rule_id"]: r for r in gw.get(base, headers=key).json()["automation_rules"]}
    assert len(rows) == 5, "paused, never deleted"
    assert [rows[i]["status"] for i in ids] == ["active", "active", "paused", "paused", "paused"], "newest paused"
    assert {rows[i]["paused_reason"] for i in ids[2:]} == {"tier_limit"}
    resumed = assert_problem(gw.http.post(f"{base}/{ids[4]}/resume", headers=key), 409, "automation_rule_limit_reached")
    assert resumed["limit"]["allowed"] == 2
    assert gw.http.delete(f"{base}/{ids[0]}", headers=key).status_code == 200
    assert gw.http.delete(f"{base}/{ids[1]}", headers=key).status_code == 200
    assert gw.http.post(f"{base}/{ids[4]}/resume", headers=key).json()["status"] == "active"
    gw.project()
    assert_problem(gw.http.get("/v1/admin/automation-rules", headers=key), 403, "forbidden")
    overview = gw.http.get("/v1/admin/automation-rules", headers=ADMIN).json()
    assert {t["status"]: (t["rules"], t["workspaces"]) for t in overview["totals"]} == {"active": (1, 1),
                                                                                      "paused": (2, 1)}
    paused = gw.http.get("/v1/admin/automation-rules", params={"status": "paused"}, headers=ADMIN).json()["rules"]
    assert sorted(r["rule_id"] for r in paused) == sorted(ids[2:4])


class _Switch:
    """The AI provider: the offline templates, or a 503 while ``down``."""

    name, model = "offline", "template-v1"

    def __init__(self) -> None:
        self.inner, self.down = OfflineTemplate(), False

    def complete(self, turn):
        if self.down:
            raise ProviderError(FailureKind.transient, "HTTP 503")
        return self.inner.complete(turn)


def test_the_stats_show_runs_posts_failures_and_the_next_run(gw):
    ws, key, account = _workspace(gw, timezone="UTC")
    base = f"/v1/workspaces/{ws}/automation-rules"
    rule_id = gw.http.post(base, json={**WEEKLY, "schedule": "FREQ=SECONDLY;INTERVAL=2", "destinations": [account]},
                           headers=key).json()["rule_id"]
    provider = _Switch()
    runner = RuleRunner(gw.app, ConfiguredProvider(lambda: Generator(provider, attempts=1)))

    def run_once() -> str | None:
        gw.project()
        with gw.pool.connection() as conn:
            rows = [r for r in automation_rules.due_rules(conn, datetime.now(UTC), 10) if r["rule_id"] == rule_id]
        if not rows:
            return None
        r = rows[0]
        d = r["definition"]
        due = RuleDue(ws, rule_id, Schedule(d["schedule_kind"], d["schedule"], datetime.fromisoformat(d["anchor"]),
                                            d["timezone"]), r["cursor_at"], r["next_run_at"], r["run_occurrence_at"])
        outcome = runner.run(due)
        return outcome if outcome != "not_due" else None

    assert wait_until(run_once, "the first occurrence due", timeout=30, interval=0.2) == "succeeded"
    provider.down = True
    assert wait_until(run_once, "the second occurrence due", timeout=30, interval=0.2) == "failed:generation_transient"
    stats = gw.get(f"{base}/{rule_id}", headers=key).json()
    assert (stats["runs"], stats["posts"], stats["failures"]) == (2, 1, 1)
    assert stats["failures_by_reason"] == {"generation_transient": 1}
    assert stats["last_failure_reason"] == "generation_transient" and "503" in stats["last_failure_detail"]
    assert stats["last_post_id"] and stats["last_run_at"] and stats["next_run_at"] > stats["last_run_at"]
    post = gw.get(f"/v1/workspaces/{ws}/posts/{stats['last_post_id']}", headers=key)
    assert post.status_code == 200, post.text
    assert "#" in post.json()["text"], "the caption with its hashtags"
