"""The six test workspaces of the product plan (seed 000, "Phase 7: Test Accounts"), made
through the domain like any other workspace, idempotently: every command has a fixed id, so a
second run is answered from the first run's records and changes nothing.

Herald publishes to the sandbox platform for tests, so the plan's Instagram / Facebook / Twitter
accounts are sandbox accounts named after them, as many as the tier allows per platform (the
plan's pro and business users list more accounts than one platform's limit). Herald reserves a
credit per destination when a post is scheduled, so the zero-credit workspace's five posts are
rejected `insufficient_credits` (recorded, visible in its rejections and wallet history)
rather than skipped at publishing time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.application import Decision, HeraldApplication
from domain.tiers import limit
from schemas import commands as cmd

SEED = "seed-000"


@dataclass(frozen=True)
class TestWorkspace:
    workspace_id: str
    name: str
    tier: str
    credits: int
    accounts: tuple[str, ...]  # handles, as the plan lists them
    posts: int
    purpose: str
    rules: int = 0  # automation rules (the plan: pro 3, business 10)


WORKSPACES = (
    TestWorkspace("test-free", "Free test user", "free", 10, ("instagram-1",), 3, "a free tier at its limits"),
    TestWorkspace("test-pro", "Pro test user", "pro", 500,
                  ("instagram-1", "instagram-2", "facebook-1", "facebook-2", "twitter-1"), 25, "the pro tier", 3),
    TestWorkspace("test-business", "Business test user", "business", 2000,
                  tuple(f"{p}-{i}" for p in ("instagram", "facebook", "twitter") for i in range(1, 6)), 100,
                  "the business tier", 10),
    TestWorkspace("test-admin", "Admin test user", "business", 2000, (), 0,
                  "an admin's own workspace (admin rights come from the admin key)"),
    TestWorkspace("test-lowcredit", "Low credit user", "pro", 2, ("instagram-1",), 0, "low-credit warnings"),
    TestWorkspace("test-zerocredit", "Zero credit user", "pro", 0, ("instagram-1",), 5, "zero-credit behaviour"),
)


def open_command_id(ws: TestWorkspace) -> str:
    return f"{SEED}.{ws.workspace_id}.open"


def commands(ws: TestWorkspace, now: datetime) -> list[cmd.CommandEnvelope]:
    allowed = limit(ws.tier, "accounts_per_platform")
    accounts = [f"{ws.workspace_id}.{h}" for h in ws.accounts[:allowed]]
    payloads: list[tuple[str, cmd.Payload]] = [("open", cmd.OpenWorkspace(name=ws.name, tier=ws.tier))]
    payloads += [(f"account.{a}", cmd.ConnectSocialAccount(social_account_id=a, platform="sandbox",
                                                          handle=a.split(".", 1)[1]))  # the sandbox needs no token
                 for a in accounts]
    if ws.credits:
        payloads.append(("credits", cmd.GrantCredits(grant_id=f"{SEED}-credits", amount=ws.credits, source="promotion")))
    # A post every 6 hours from tomorrow (further apart where the tier's daily posts per platform
    # allow fewer: every account here is a sandbox one), to the accounts in turn.
    every_h = max(6.0, 24.0 / limit(ws.tier, "daily_posts_per_platform"))
    for i in range(ws.posts):
        payloads.append((f"post.{i}", cmd.SchedulePost(
            post_id=f"{ws.workspace_id}.post-{i}", text=f"Test post {i + 1} of {ws.name}",
            destinations=[accounts[i % len(accounts)]], publish_at=now + timedelta(days=1, hours=every_h * i))))
    # Weekly automation rules, a weekday and an hour each; every third one leaves drafts for approval.
    days = ("MO", "TU", "WE", "TH", "FR")
    for i in range(ws.rules):
        payloads.append((f"rule.{i}", cmd.CreateAutomationRule(
            rule_id=f"{ws.workspace_id}.rule-{i}", name=f"Weekly {days[i % 5]} tips {i + 1}", schedule_kind="rrule",
            schedule=f"FREQ=WEEKLY;BYDAY={days[i % 5]};BYHOUR={9 + i // 5};BYMINUTE=0;BYSECOND=0",
            topic=f"tips for {ws.name} #{i + 1}", destinations=[accounts[i % len(accounts)]],
            approval_mode="draft_for_approval" if i % 3 == 2 else "auto_schedule")))
    return [cmd.CommandEnvelope.wrap(p, command_id=f"{SEED}.{ws.workspace_id}.{name}", workspace_id=ws.workspace_id,
                                     issued_by="seed", issued_at=now) for name, p in payloads]


def seed(app: HeraldApplication) -> dict[str, list[Decision]]:
    """Decide every test workspace's commands; returns each workspace's decisions."""
    now = datetime.now(UTC)
    return {ws.workspace_id: app.handle_batch(commands(ws, now)) for ws in WORKSPACES}


def summary(ws: TestWorkspace, decisions: list[Decision]) -> dict[str, Any]:
    rejected = [d.reason_code for d in decisions if not d.accepted]
    return {"workspace_id": ws.workspace_id, "tier": ws.tier, "credits": ws.credits,
            "accounts": sum(1 for d in decisions if d.accepted and d.command_type == "connect_social_account.v1"),
            "posts": sum(1 for d in decisions if d.accepted and d.command_type == "schedule_post.v1"),
            "rules": sum(1 for d in decisions if d.accepted and d.command_type == "create_automation_rule.v1"),
            "rejected": rejected, "purpose": ws.purpose}
