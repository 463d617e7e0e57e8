"""Answers "may this workspace do that?" from the read models, without side effects: schedule N
posts to platform P on local day D, connect another P account, generate once more today, add an
automation rule.

It reads what the read models show, so it can lag the domain by the events not yet applied
(``min_position`` on the endpoint waits for them); the domain's own check at the command is
what holds. Daily posts count the destinations on P due that local day that were not cancelled."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from psycopg import Connection

ACTIONS = ("schedule", "connect", "generate", "automate")


def _check(limit: str, tier: str, current: int, adding: int, allowed: int) -> dict[str, Any]:
    return {"limit": limit, "tier": tier, "current": current, "adding": adding, "allowed": allowed,
            "ok": current + adding <= allowed}


def check(conn: Connection, workspace_id: str, action: str, *, platform: str | None = None,
          day: date | None = None, count: int = 1, now: datetime | None = None) -> dict[str, Any] | None:
    """The checks the action meets and whether all pass; None for an unknown workspace."""
    row = conn.execute("SELECT tier, timezone, limits FROM workspaces WHERE workspace_id = %s",
                       (workspace_id,)).fetchone()
    if row is None:
        return None
    tier, timezone, limits = row
    zone = ZoneInfo(timezone)
    now = now or datetime.now(UTC)
    today = now.astimezone(zone).date()
    checks = []
    if action == "schedule":
        day = day or today
        waiting = conn.execute("SELECT waiting FROM queue_workspace_summary WHERE workspace_id = %s",
                               (workspace_id,)).fetchone()
        checks.append(_check("queue_size", tier, waiting[0] if waiting else 0, count, limits["queue_size"]))
        horizon = limits.get("scheduling_horizon_days")
        if horizon is not None:
            ahead = (day - today).days
            checks.append({"limit": "scheduling_horizon_days", "tier": tier, "current": ahead, "adding": 0,
                           "allowed": horizon, "ok": 0 <= ahead <= horizon})
        if platform:
            start = datetime.combine(day, datetime.min.time(), zone)
            end = datetime.combine(day + timedelta(days=1), datetime.min.time(), zone)
            due = conn.execute(
                "SELECT count(*) FROM queue_destinations WHERE workspace_id = %s AND platform = %s"
                " AND due_at >= %s AND due_at < %s AND status <> 'cancelled'",
                (workspace_id, platform, start, end),
            ).fetchone()[0]
            checks.append(_check("daily_posts_per_platform", tier, due, count, limits["daily_posts_per_platform"]))
    elif action == "connect":
        connected = conn.execute("SELECT count(*) FROM social_accounts WHERE workspace_id = %s AND platform = %s",
                                 (workspace_id, platform or "")).fetchone()[0]
        checks.append(_check("accounts_per_platform", tier, connected, 1, limits["accounts_per_platform"]))
    elif action == "generate":
        done = conn.execute(
            "SELECT COALESCE(sum(amount), 0) FROM usage_daily WHERE workspace_id = %s AND day = %s"
            " AND metric = 'generations'", (workspace_id, today),
        ).fetchone()[0]
        checks.append(_check("daily_generations", tier, int(done), 1, limits["daily_generations"]))
    elif action == "automate":
        rules = conn.execute("SELECT count(*) FROM automation_rules WHERE workspace_id = %s AND status <> 'deleted'",
                             (workspace_id,)).fetchone()[0]
        checks.append(_check("automation_rules", tier, rules, count, limits["automation_rules"]))
    else:
        raise ValueError(f"unknown action {action!r}; actions are {', '.join(ACTIONS)}")
    return {"workspace_id": workspace_id, "action": action, "allowed": all(c["ok"] for c in checks), "checks": checks}
