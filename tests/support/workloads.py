"""A random workload decided through the domain, the live read models applied as the
projections consumer applies them, and a snapshot of every read model: for rebuild tests."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

import psycopg
from hypothesis import strategies as st

from domain.planning import SlotPlan
from domain.automation.aggregate import AutomationRule
from domain.post.aggregate import hold_id_for
from domain.wallet.aggregate import Wallet
from herald.messaging.relay import to_cloud_event
from herald.replay import store
from projections import catalogue, positions
from schemas import commands as cmd
from tests.support.commands import envelope

ACCOUNTS = ("a", "b")


def snapshot(url: str) -> dict[str, list[str]]:
    with psycopg.connect(url) as conn:
        return {t: sorted(json.dumps(r[0], sort_keys=True, default=str)
                          for r in conn.execute(f"SELECT to_jsonb(t) FROM {t} t"))
                for p in catalogue.PROJECTIONS for t in p.tables}


def apply_live(herald, after: int) -> int:
    """What the live consumer does: every stored event after ``after``, applied to the live tables."""
    with herald.pool.connection() as conn:
        for page in store.notifications(conn, herald.app, after, store.head(conn, herald.app)):
            events = [to_cloud_event(herald.app, n) for n in page]  # validated, as the consumer reads them
            for event in events:
                catalogue.apply_all(conn, event)
            positions.record(conn, events)
            after = page[-1].id
    return after


class Clock:
    """The domain's clock for a workload: a millisecond passes at every look, and the workload's
    ``advance`` steps jump it forward (so grants and holds expire and credit periods renew)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


# A workload: per workspace, steps on its posts; every command is decided (accepted or rejected).
# With a ``Clock`` as the application's clock it also moves time: grants with an expiry expire,
# holds of posts long past due expire, credit periods renew (monthly credits reset and carried
# over), as the credit clock's commands would do them.
KINDS = ("schedule", "start", "outcome", "cancel", "grant", "settle", "expiring", "advance", "clock",
         "needs_reconnect", "reconnect", "upgrade", "overrides", "read", "policy", "retry", "generate", "notify",
         "draft", "approval", "submit", "approve", "reject", "edit", "disconnect", "plan", "rule")
ADVANCES = (timedelta(hours=1), timedelta(hours=3), timedelta(hours=25), timedelta(days=32))
steps = st.lists(st.tuples(
    st.sampled_from(KINDS),
    st.integers(0, 3),  # post (for advance: which jump)
    st.sampled_from(ACCOUNTS),
    st.sampled_from([o.value for o in cmd.Outcome]),
), min_size=1, max_size=25)

# Every kind of step at least once, in an order where each has its effect: for a test's explicit example.
EVERYTHING = [
    ("schedule", 0, "a", ""), ("schedule", 1, "b", ""), ("schedule", 2, "a", ""), ("schedule", 3, "b", ""),
    ("expiring", 0, "a", ""), ("expiring", 1, "a", ""), ("clock", 0, "a", ""),  # warned: they expire within 3 days
    ("start", 0, "a", ""), ("outcome", 0, "a", "published"), ("settle", 0, "a", "published"),
    ("start", 1, "b", ""), ("outcome", 1, "b", "retry"), ("start", 1, "b", ""), ("outcome", 1, "b", "throttled"),
    ("start", 1, "b", ""), ("outcome", 1, "b", "failed"), ("settle", 1, "b", "failed"),
    ("needs_reconnect", 0, "a", ""), ("start", 2, "a", ""), ("reconnect", 0, "a", ""),
    ("start", 3, "b", ""), ("outcome", 3, "b", "unknown"), ("grant", 0, "a", ""), ("retry", 1, "b", ""),
    ("overrides", 2, "a", ""), ("schedule", 4, "b", ""), ("schedule", 5, "a", ""), ("cancel", 4, "b", ""),
    ("advance", 1, "a", ""), ("clock", 0, "a", ""), ("read", 0, "a", ""),
    ("advance", 2, "a", ""), ("clock", 0, "a", ""), ("advance", 3, "a", ""), ("clock", 0, "a", ""),
    ("schedule", 0, "a", ""), ("read", 0, "a", ""), ("policy", 1, "a", ""), ("upgrade", 0, "a", ""),
    ("generate", 0, "a", "published"), ("generate", 1, "b", "failed"), ("generate", 2, "a", "unknown"),
    ("notify", 0, "a", "published"), ("notify", 1, "b", "failed"), ("notify", 2, "a", "retry"),
    ("generate", 3, "a", "published"), ("generate", 3, "b", "published"),
    ("rule", 0, "a", ""), ("rule", 0, "b", ""), ("rule", 1, "a", "published"), ("rule", 1, "a", "failed"),
    ("rule", 1, "a", "skipped"), ("rule", 2, "a", ""), ("rule", 2, "a", ""), ("rule", 1, "a", "unknown"),
    ("rule", 3, "a", ""),
    # the content workflow: drafts submitted with and without approval, rejected, approved, edited
    ("draft", 0, "a", ""), ("submit", 0, "a", ""), ("approval", 0, "a", ""), ("draft", 1, "b", ""),
    ("submit", 1, "b", ""), ("reject", 1, "b", ""), ("edit", 1, "b", ""), ("submit", 1, "b", ""),
    ("approve", 1, "b", ""), ("approval", 1, "a", ""), ("edit", 0, "a", ""),
    ("draft", 2, "a", ""), ("cancel", 2, "a", ""),
    ("plan", 0, "a", ""), ("plan", 1, "a", ""), ("plan", 2, "a", ""), ("plan", 3, "b", ""),
    ("disconnect", 0, "b", ""), ("disconnect", 1, "a", ""),
]

_ids = itertools.count()


def run_workload(app, ws: str, workload, *, tier: str = "pro", timezone: str = "UTC") -> None:
    """Decide the workload's commands for a new workspace ``ws`` (each as soon as it is made:
    later steps read the state the earlier ones left, and the clock moves between them)."""
    clock = app.clock if isinstance(app.clock, Clock) else None

    def now() -> datetime:
        return clock.now if clock is not None else datetime.now(UTC)

    def decide(payload: cmd.Payload) -> None:
        app.handle(envelope(payload, workspace_id=ws, command_id=f"c{next(_ids)}"))

    attempts: dict[tuple[int, str], int] = {}
    expiring: list[str] = []
    for payload in [cmd.OpenWorkspace(name=ws, tier=tier, timezone=timezone, start_with_monthly_credits=True),
                    cmd.GrantCredits(amount=3),
                    *[cmd.ConnectSocialAccount(social_account_id=f"{ws}-{a}", platform="sandbox", handle=a)
                      for a in ACCOUNTS]]:
        decide(payload)
    for kind, post, account, outcome in workload:
        post_id, dest = f"{ws}-p{post}", f"{ws}-{account}"
        match kind:
            case "schedule":
                decide(cmd.SchedulePost(post_id=post_id, text=f"post {post}", destinations=[dest],
                                        publish_at=now() + timedelta(hours=1)))
            case "start":
                attempts[post, account] = attempts.get((post, account), 0) + 1
                decide(cmd.StartPublishAttempt(post_id=post_id, destination_id=dest, attempt=attempts[post, account]))
            case "outcome":
                decide(cmd.RecordPublishOutcome(
                    post_id=post_id, destination_id=dest, attempt=max(attempts.get((post, account), 1), 1),
                    outcome=outcome, platform_post_id="x" if outcome == "published" else None, detail="because",
                    retry_after_s=60.0 if outcome == "throttled" else None))
            case "cancel":
                decide(cmd.CancelPost(post_id=post_id))
            case "grant":
                decide(cmd.GrantCredits(amount=1))
            case "settle":
                hold = hold_id_for(post_id, dest)
                decide(cmd.ConsumeHold(hold_id=hold) if outcome == "published"
                       else cmd.ReleaseHold(hold_id=hold, reason="test"))
            case "expiring":
                expiring.append(f"{ws}-e{len(expiring)}")
                decide(cmd.GrantCredits(grant_id=expiring[-1], amount=2, source="promotion",
                                        expires_at=now() + timedelta(hours=2 + post)))
            case "advance" if clock is not None:
                clock.now += ADVANCES[post]
            case "clock":  # what the credit clock would send now (what is not due yet is rejected not_due)
                for grant_id in expiring:
                    decide(cmd.WarnExpiringCredits(grant_id=grant_id))
                    decide(cmd.ExpireGrant(grant_id=grant_id))
                for held_post, held_account in sorted(attempts) + [(p, a) for p in range(4) for a in ACCOUNTS]:
                    decide(cmd.ExpireHold(hold_id=hold_id_for(f"{ws}-p{held_post}", f"{ws}-{held_account}")))
                period = app.find(Wallet, ws).period
                decide(cmd.RenewCreditPeriod(renews_at=period.renews_at))
            case "needs_reconnect":
                decide(cmd.MarkAccountNeedsReconnect(social_account_id=dest, reason="invalid_grant",
                                                     credential_version=None))
            case "reconnect":
                decide(cmd.ConnectSocialAccount(social_account_id=dest, platform="sandbox", handle=f"{account}2",
                                                credential_version=f"v{next(_ids)}"))
            case "upgrade":
                decide(cmd.ChangeTier(tier="business"))
            case "retry":  # an admin's retry of a failed or skipped destination
                decide(cmd.RetryDestination(post_id=post_id, destination_id=dest))
            case "policy":  # post 0: back to Herald's default
                decide(cmd.SetPublishingPolicy(missed_window_minutes=30 * post or None))
            case "generate":  # a generation and (unless "unknown": never answered) its outcome
                generation_id = f"{ws}-g{next(_ids)}"
                if post == 3:  # a new brand voice first
                    decide(cmd.SetBrandVoice(tone=f"tone {generation_id}", words_to_use=["bread"],
                                             example_posts=["Fresh today."]))
                decide(cmd.GenerateContent(generation_id=generation_id, topic=f"topic {post}", platforms=["x"]))
                common = {"generation_id": generation_id, "provider": "offline", "model": "template-v1",
                          "prompt_sha256": "0" * 64, "tokens_in": post, "tokens_out": 2 * post, "latency_ms": 5}
                if outcome == "published":
                    decide(cmd.RecordGenerationOutcome(
                        succeeded=True, captions=[cmd.GeneratedCaption(platform="x", text=f"caption {post}")],
                        hashtags=["tag"], **common))
                elif outcome != "unknown":
                    decide(cmd.RecordGenerationOutcome(succeeded=False, failure="transient", detail=outcome, **common))
            case "notify":  # a notice delivered: queued (a second notice folded in), then attempts
                delivery = f"msg_{ws}_{post}_{account}"
                common = {"delivery_id": delivery, "channel": "webhook", "target_id": f"whep_{account}",
                          "cause": "post_failed"}
                for n in range(2):
                    decide(cmd.QueueNotificationDelivery(notice_event_id=f"{ws}-n{post}-{n}", **common))
                ids = [f"{ws}-n{post}-0", f"{ws}-n{post}-1"]
                decide(cmd.RecordNotificationDelivery(
                    notice_event_id=ids[0], attempt=1, outcome="failed", status_code=500, error="HTTP 500",
                    next_attempt_at=now() + timedelta(seconds=30), notice_event_ids=ids, **common))
                if outcome == "published":
                    decide(cmd.RecordNotificationDelivery(notice_event_id=ids[0], attempt=2, outcome="sent",
                                                          status_code=204, notice_event_ids=ids, **common))
                elif outcome == "failed":  # 410: given up, the endpoint disabled (a notice)
                    decide(cmd.RecordNotificationDelivery(
                        notice_event_id=ids[0], attempt=2, outcome="gave_up", status_code=410, error="HTTP 410",
                        notice_event_ids=ids, endpoint_disabled="HTTP 410 Gone", **common))
                else:  # a repeated attempt number is fenced (rejected), the delivery stays failed
                    decide(cmd.RecordNotificationDelivery(notice_event_id=ids[0], attempt=1, outcome="sent",
                                                          notice_event_ids=ids, **common))
            case "rule":  # 0 create (update if it exists), 1 fire its next occurrence, 2 pause/resume, 3 delete
                _rule_step(app, ws, post, account, outcome, clock, decide)
            case "disconnect":  # its waiting destinations cancelled (post 0) or on hold, its credits released
                decide(cmd.DisconnectSocialAccount(social_account_id=dest, waiting="cancel" if post == 0 else "hold"))
            case "draft":  # a draft of its own (d<n>), due in two hours once submitted
                decide(cmd.CreateDraft(post_id=f"{ws}-d{post}", text=f"draft {post}", destinations=[dest],
                                       publish_at=now() + timedelta(hours=2)))
            case "approval":  # post 0: approval required; others: not
                decide(cmd.SetContentPolicy(requires_approval=post == 0))
            case "submit":
                decide(cmd.SubmitPost(post_id=f"{ws}-d{post}"))
            case "approve":
                decide(cmd.ApprovePost(post_id=f"{ws}-d{post}", comment="fine"))
            case "reject":
                decide(cmd.RejectPost(post_id=f"{ws}-d{post}", comment="not yet"))
            case "edit":  # a scheduled post moved and reworded, and a draft reworded
                decide(cmd.EditPost(post_id=post_id, text=f"edited {post}", publish_at=now() + timedelta(hours=3)))
                # and one destination of it moved on its own (each destination has its own due time)
                decide(cmd.ReschedulePost(post_id=post_id, publish_at=now() + timedelta(hours=5), destination_ids=[dest]))
                decide(cmd.EditPost(post_id=f"{ws}-d{post}", text=f"draft {post}, edited",
                                    publish_at=now() + timedelta(hours=4)))
            case "plan":  # planning: 0 schedule + top-off, 1 fill a slot, 2 pause, 3 an evergreen series
                if post == 0:
                    decide(cmd.SetPostingSchedule(social_account_id=dest, slots=[
                        cmd.WeeklySlot(weekday=d, time=t) for d in cmd.WEEKDAYS for t in ("09:00", "15:00")]))
                    decide(cmd.TopOffSlots(days=3))
                elif post == 1:
                    plan = app.find(SlotPlan, dest)
                    empty = sorted((s["at"], sid) for sid, s in (plan.slots if plan else {}).items()
                                   if s["post_id"] is None and s["at"] > now())
                    if empty:
                        decide(cmd.FillSlot(social_account_id=dest, slot_id=empty[0][1], text="slot content"))
                elif post == 2:
                    decide(cmd.SetPostingSchedule(social_account_id=dest, posts_per_week=2, times=["10:00"],
                                                  active=False))
                else:
                    series_id = f"{ws}-s{next(_ids)}"
                    # room and credits for its occurrences (else every one is skipped: queue_full, insufficient_credits)
                    decide(cmd.SetLimitOverrides(limit_overrides={"queue_size": 1000}))
                    decide(cmd.GrantCredits(amount=4))
                    decide(cmd.DefineSeries(series_id=series_id, kind="evergreen", rrule="FREQ=DAILY",
                                            starts_at=(now() - timedelta(days=1)).replace(tzinfo=None, hour=9, minute=0, second=0, microsecond=0),
                                            destinations=[dest], skip_days=3,
                                            items=[cmd.SeriesItem(item_id=i, text=f"evergreen {i}") for i in "xy"]))
                    decide(cmd.TopOffSlots(series_ids=[series_id], days=3))
            case "overrides":
                decide(cmd.SetLimitOverrides(limit_overrides={"queue_size": 3 + post, "monthly_credits": 100}))
            case "read":
                day = now().date().isoformat()
                period = app.find(Wallet, ws).period
                decide(cmd.MarkNoticesRead(notice_ids=[f"post_skipped:{day}", f"post_failed:{day}",
                                                       f"low_credits:{period.period_start.isoformat()}"]))
    decide(cmd.ChangeTier(tier="free"))  # a downgrade waits for the renewal: a scheduled tier change


def _rule_step(app, ws: str, step: int, account: str, outcome: str, clock: Clock | None, decide) -> None:
    """An automation rule's commands, as the API and the rule runner would send them: "published"
    ends the run with a post, "failed" with a failure, "unknown" leaves it pending, "skipped" fires
    an occurrence older than the catch-up window (all missed, recorded skipped)."""
    rule_id = f"{ws}-rule"
    rule = app.find(AutomationRule, AutomationRule.key(ws, rule_id))
    fields = {"rule_id": rule_id, "name": f"rule {account}", "schedule_kind": "rrule",
              "schedule": "FREQ=HOURLY;BYMINUTE=0;BYSECOND=0", "topic": "topic", "tone": account,
              "destinations": [f"{ws}-{account}"], "catch_up_window_s": 3600}
    if step == 0:
        exists = rule is not None and rule.status != "deleted"
        decide(cmd.UpdateAutomationRule(**fields) if exists else cmd.CreateAutomationRule(**fields))
    elif step == 1 and rule is not None and rule.next_run_at is not None and clock is not None:
        at = rule.next_run_at
        clock.now = max(clock.now, at + (timedelta(hours=3) if outcome == "skipped" else timedelta(seconds=1)))
        decide(cmd.FireRuleOccurrence(rule_id=rule_id, occurrence_at=at))
        if outcome == "published":
            decide(cmd.RecordRuleRun(rule_id=rule_id, occurrence_at=at, post_id=f"{ws}-rp{at:%H}"))
        elif outcome in ("failed", "retry", "throttled"):
            decide(cmd.RecordRuleRun(rule_id=rule_id, occurrence_at=at, failure="generation_transient",
                                     detail=outcome))
    elif step == 2 and rule is not None:
        decide(cmd.ResumeAutomationRule(rule_id=rule_id) if rule.status == "paused"
               else cmd.PauseAutomationRule(rule_id=rule_id))
    elif step == 3:
        decide(cmd.DeleteAutomationRule(rule_id=rule_id))
