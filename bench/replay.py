"""replay: rebuild every read model from a generated realistic history of 1,000,000 events.

The history is made by the domain itself (``HeraldApplication.handle_batch``, up to 500 commands
per transaction) on a simulated clock: cohorts of 20 business workspaces (four time zones), each
living three credit periods (``_life``): posts to one or both of two sandbox accounts, attempted
and published (most), retried then published, failed, skipped, cancelled or never attempted
(the hold expires a day after the due time); holds consumed or released; monthly, purchased and
promotional credits, warned about and expired, periods renewed (monthly credits reset, some
carried over), some workspaces low on credits; downgrades at the renewal, limit overrides, an
account that needs reconnecting for a few days, notices read; and commands rejected (unknown
accounts, fenced attempts, daily limits after a downgrade, holds already settled). Every event
type a command makes today is in it but the tier catalogue's. It is generated once into a
template database (``herald_bench_replay_v2_<events>``, kept) and copied for each run.
``herald rebuild`` (``Rebuild``) then builds every read model from it into fresh tables and swaps
them in; no live consumer.

Prints ``replay_events``, ``replay_s``, ``replay_events_per_s`` and ``replay_1m_s`` (the time for
1,000,000 events at the measured rate). ``BENCH_REPLAY_EVENTS`` sets a smaller history for a quick run.
"""

from __future__ import annotations

import itertools
import os
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Callable
from zoneinfo import ZoneInfo

import psycopg

from domain.application import HeraldApplication
from domain.post.aggregate import hold_id_for
from domain.wallet.aggregate import HOLD_GRACE
from domain.wallet.period import local_day_of_month, next_renewal
from herald.replay.rebuild import Rebuild
from herald.storage import db, event_store
from projections import catalogue
from schemas import commands as cmd

EVENTS = int(os.environ.get("BENCH_REPLAY_EVENTS", "1000000"))
COHORT = 20  # workspaces living in step: their commands of one moment are decided in the same batches
BATCH = 500
PAGE = int(os.environ.get("BENCH_REPLAY_PAGE", "20000"))
GENERATOR = "v2"  # part of the template's name: a new generator makes a new history
BASE = datetime(2030, 1, 1, 8, tzinfo=UTC)
MONTHS = 3  # credit periods per workspace's life
POSTING_DAYS = (1, 4, 7, 10, 13, 16, 19, 22, 25)  # days of each period with posts (about 7 each)
TIMEZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo")

Phase = dict[timedelta, list[cmd.Payload]]


class SimulatedClock:
    """The domain's clock during generation: set to each moment of a cohort's lives in turn (the
    next cohort starts back at its own start), a millisecond passing at every look."""

    def __init__(self) -> None:
        self.now = BASE

    def set(self, at: datetime) -> None:
        self.now = at

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


def _life(ws: str, n: int, start: datetime, rng: random.Random) -> Phase:
    """One workspace's three months, as commands per moment (offset from ``start``): posts to one
    or both of its accounts, each attempted and published (most), retried then published, failed,
    skipped, cancelled or never attempted (its hold expires), holds consumed or released; credits
    granted (monthly, purchased, promotional with expiries), expiring with a warning first,
    renewed monthly (reset, some carried over), some workspaces low on credits; tier downgrades at
    the renewal, limit overrides, an account that needs reconnecting for a while, notices read;
    and some commands rejected (unknown accounts, fenced attempts, credits or limits)."""
    life: Phase = {}

    def at(offset: timedelta, *payloads: cmd.Payload) -> None:
        life.setdefault(offset, []).extend(payloads)

    timezone = TIMEZONES[n % len(TIMEZONES)]
    accounts = [f"{ws}-a", f"{ws}-b"]
    profile = rng.random()
    overrides = {"carryover_cap": 500} if profile < 0.1 else {"monthly_credits": 100} if profile < 0.2 else {}
    at(timedelta(0), cmd.OpenWorkspace(name=ws, tier="business", timezone=timezone, limit_overrides=overrides,
                                       start_with_monthly_credits=True),
       *[cmd.ConnectSocialAccount(social_account_id=a, platform="sandbox", handle=a) for a in accounts],
       cmd.GrantCredits(grant_id=f"{ws}-promo", amount=50, source="promotion", expires_at=start + timedelta(days=10)))
    if "monthly_credits" not in overrides:  # the tight ones buy nothing: they run low, some run out
        at(timedelta(0), cmd.GrantCredits(grant_id=f"{ws}-bought", amount=300, source="purchase",
                                          expires_at=start + timedelta(days=45)))
    # The credit clock's commands, when it would send them.
    at(timedelta(days=7), cmd.WarnExpiringCredits(grant_id=f"{ws}-promo"))
    at(timedelta(days=10, minutes=1), cmd.ExpireGrant(grant_id=f"{ws}-promo"))
    at(timedelta(days=42), cmd.WarnExpiringCredits(grant_id=f"{ws}-bought"))
    at(timedelta(days=45, minutes=1), cmd.ExpireGrant(grant_id=f"{ws}-bought"))
    renews_at = next_renewal(start, timezone, local_day_of_month(start, timezone))
    for _ in range(MONTHS - 1):
        at(renews_at - start + timedelta(minutes=1), cmd.RenewCreditPeriod(renews_at=renews_at))
        renews_at = next_renewal(renews_at, timezone, local_day_of_month(start, timezone))
    if rng.random() < 0.2:  # a downgrade, made at the next renewal
        at(timedelta(days=35), cmd.ChangeTier(tier="pro"))
    if rng.random() < 0.1:
        at(timedelta(days=20), cmd.SetLimitOverrides(limit_overrides={**overrides, "queue_size": 150}))
    reconnecting = rng.random() < 0.05
    if reconnecting:  # the platform refused a token: the account's posts are skipped until it is reconnected
        at(timedelta(days=12), cmd.MarkAccountNeedsReconnect(social_account_id=accounts[0], reason="invalid_grant"))
        at(timedelta(days=17), cmd.ConnectSocialAccount(social_account_id=accounts[0], platform="sandbox",
                                                        handle=accounts[0], credential_version=f"{ws}-v2"))
    i = 0
    for month in range(MONTHS):
        for day in POSTING_DAYS:
            scheduled = timedelta(days=30 * month + day)
            due = scheduled + timedelta(hours=3)
            if rng.random() < 0.3:
                local = (start + due).astimezone(ZoneInfo(timezone)).date().isoformat()
                at(due + timedelta(hours=1), cmd.MarkNoticesRead(notice_ids=[f"post_failed:{local}",
                                                                             f"post_skipped:{local}"]))
            for _ in range(rng.randint(6, 9)):
                _post(f"{ws}-p{i}", i, accounts, start + due, scheduled, due, at, rng)
                i += 1
    return life


def _post(post: str, i: int, accounts: list[str], due_at: datetime, scheduled: timedelta, due: timedelta,
          at: Callable[..., None], rng: random.Random) -> None:
    """One post from scheduling to settlement."""
    dests = accounts if rng.random() < 0.3 else [rng.choice(accounts)]
    if rng.random() < 0.02:  # a destination the workspace lacks: rejected
        at(scheduled, cmd.SchedulePost(post_id=post, text="?", destinations=[f"{post}-zz"], publish_at=due_at))
        return
    at(scheduled, cmd.SchedulePost(post_id=post, text=f"post {i} of {post}", destinations=dests, publish_at=due_at,
                                   media_urls=["https://example.org/a.png"] if i % 5 == 0 else []))
    if rng.random() < 0.05:
        at(scheduled + timedelta(minutes=30), cmd.CancelPost(post_id=post, reason="changed my mind"))
        return
    for d in dests:
        fate = rng.random()
        hold = hold_id_for(post, d)
        if fate < 0.01:  # never attempted: the clock expires its hold a day after it was due
            at(due + HOLD_GRACE + timedelta(minutes=1), cmd.ExpireHold(hold_id=hold))
            continue
        steps: list[cmd.Payload] = [cmd.StartPublishAttempt(post_id=post, destination_id=d, attempt=1)]
        if fate < 0.09:  # a transient error, then published on the retry
            steps += [cmd.RecordPublishOutcome(post_id=post, destination_id=d, attempt=1, outcome="retry",
                                               error_kind="transient", detail="503 from the platform"),
                      cmd.StartPublishAttempt(post_id=post, destination_id=d, attempt=2),
                      cmd.RecordPublishOutcome(post_id=post, destination_id=d, attempt=2, outcome="published",
                                               platform_post_id=f"{post}-{d}")]
            settle = "consume"
        elif fate < 0.10:  # the platform said wait: throttled, then published
            steps += [cmd.RecordPublishOutcome(post_id=post, destination_id=d, attempt=1, outcome="throttled",
                                               retry_after_s=60.0, detail="429 slow down", status_code=429),
                      cmd.StartPublishAttempt(post_id=post, destination_id=d, attempt=2),
                      cmd.RecordPublishOutcome(post_id=post, destination_id=d, attempt=2, outcome="published",
                                               platform_post_id=f"{post}-{d}")]
            settle = "consume"
        elif fate < 0.105:  # the outcome is unknown until reconciliation finds the post
            steps += [cmd.RecordPublishOutcome(post_id=post, destination_id=d, attempt=1, outcome="unknown",
                                               detail="timed out after sending"),
                      cmd.ResolvePublishOutcome(post_id=post, destination_id=d, attempt=1, resolution="published",
                                                platform_post_id=f"{post}-{d}", note="found by reconciliation")]
            settle = "consume"
        elif fate < 0.13:
            steps.append(cmd.RecordPublishOutcome(post_id=post, destination_id=d, attempt=1, outcome="failed",
                                                  error_kind="invalid_content", detail="422 text too long"))
            settle = "release"
        elif fate < 0.15:
            steps.append(cmd.RecordPublishOutcome(post_id=post, destination_id=d, attempt=1, outcome="skipped",
                                                  detail="insufficient_credits"))
            settle = "release"
        else:
            steps.append(cmd.RecordPublishOutcome(post_id=post, destination_id=d, attempt=1, outcome="published",
                                                  platform_post_id=f"{post}-{d}"))
            settle = "consume"
        if fate > 0.99:  # a stale attempt: fenced
            steps.append(cmd.StartPublishAttempt(post_id=post, destination_id=d, attempt=1))
        steps.append(cmd.ConsumeHold(hold_id=hold) if settle == "consume" else cmd.ReleaseHold(hold_id=hold,
                                                                                                reason=settle))
        at(due, *steps)


def generate(url: str, events: int, say: Callable[[str], None]) -> int:
    """Decide workspaces' lives, a cohort at a time, until the store holds ``events`` events;
    returns how many it holds."""
    pool = db.connection_pool(url, max_size=4)
    env = {**db.eventsourcing_env(url), "APPLICATION_RECORDER_TOPIC": event_store.RECORDER_TOPIC}
    clock = SimulatedClock()
    app = HeraldApplication(env, versions=event_store.versions_in(pool), clock=clock)  # as wiring makes it
    try:
        rng, stored, started = random.Random(7), 0, time.perf_counter()
        with psycopg.connect(url) as conn:
            for cohort in itertools.count():
                start = BASE + timedelta(hours=cohort)  # each cohort's life starts at a time of its own
                moments: dict[timedelta, list[cmd.CommandEnvelope]] = {}
                for n in range(cohort * COHORT, (cohort + 1) * COHORT):
                    ws = f"ws{n:05d}"
                    for offset, payloads in _life(ws, n, start, rng).items():
                        moments.setdefault(offset, []).extend(
                            cmd.CommandEnvelope.wrap(p, command_id=f"{ws}-{offset.total_seconds():.0f}-{k}",
                                                     workspace_id=ws, issued_by="bench", issued_at=start + offset)
                            for k, p in enumerate(payloads))
                for offset in sorted(moments):
                    clock.set(start + offset)
                    commands = moments[offset]
                    for i in range(0, len(commands), BATCH):
                        app.handle_batch(commands[i:i + BATCH])
                stored = conn.execute("SELECT max(notification_id) FROM herald_events").fetchone()[0]
                conn.commit()
                say(f"replay: generated {stored:,} events ({stored / (time.perf_counter() - started):,.0f}/s)")
                if stored >= events:
                    return stored
    finally:
        app.close()
        pool.close()
    raise AssertionError("unreachable")


def template(server_url: str, events: int, say: Callable[[str], None]) -> str:
    """The template database holding the generated history (made once, then reused)."""
    name = f"herald_bench_replay_{GENERATOR}_{events}"
    url = db.with_database(server_url, name)
    with psycopg.connect(server_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    if exists:
        with psycopg.connect(url) as conn:
            done = conn.execute("SELECT to_regclass('bench_generated') IS NOT NULL").fetchone()[0]
        if done:
            return name
        db.drop_database(server_url, name)
    db.create_database(server_url, name)
    stored = generate(url, events, say)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_generated (events bigint)")
        conn.execute("INSERT INTO bench_generated VALUES (%s)", (stored,))
        conn.execute("VACUUM ANALYZE herald_events")
    return name


def run(server_url: str, tag: str, say: Callable[[str], None]) -> dict:
    source = template(server_url, EVENTS, say)
    name = f"herald_bench_replay_run_{tag}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
    url = db.with_database(server_url, name)
    app = HeraldApplication(db.eventsourcing_env(url))
    try:
        db.apply_ddl(url, *catalogue.DDL)
        last = [0.0]

        def show(p) -> None:
            if time.perf_counter() - last[0] > 5:
                last[0] = time.perf_counter()
                say(f"replay: {p.applied:,} events applied")

        with psycopg.connect(url) as conn:
            events = conn.execute("SELECT count(*) FROM herald_events").fetchone()[0]
        outcome = Rebuild(app, url, page=PAGE, on_progress=show).run()
    finally:
        app.close()
        db.drop_database(server_url, name)
    # Every stored event counts: those no read model applies are skipped, which is part of the work.
    rate = events / outcome.seconds
    say(f"replay_events {events} ({outcome.applied} applied to some read model)")
    say(f"replay_s {outcome.seconds:.1f}")
    say(f"replay_events_per_s {rate:,.0f}")
    say(f"replay_1m_s {1_000_000 / rate:.1f}  (target <= 60)")
    return {"replay_events": events, "replay_applied": outcome.applied, "replay_s": round(outcome.seconds, 2),
            "replay_events_per_s": round(rate), "replay_1m_s": round(1_000_000 / rate, 1)}
