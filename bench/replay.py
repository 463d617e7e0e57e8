"""replay: rebuild every read model from a generated realistic history of 1,000,000 events.

The history is made by the domain itself (``HeraldApplication.handle_batch``, 500 commands per
transaction): business workspaces with two sandbox accounts and credits; posts to one or both
accounts, each attempted and published (most), retried then published, failed, skipped or
cancelled, their holds consumed or released, and some commands rejected (unknown accounts,
fenced attempts). It is generated once into a template database
(``herald_bench_replay_<events>``, kept) and copied for each run. ``herald rebuild`` (``Rebuild``)
then builds every read model from it into fresh tables and swaps them in; no live consumer.

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

import psycopg

from domain.application import HeraldApplication
from domain.post.aggregate import hold_id_for
from herald.replay.rebuild import Rebuild
from herald.storage import db, event_store
from projections import catalogue
from schemas import commands as cmd

EVENTS = int(os.environ.get("BENCH_REPLAY_EVENTS", "1000000"))
POSTS_PER_WORKSPACE = 200
BATCH = 500
PAGE = int(os.environ.get("BENCH_REPLAY_PAGE", "20000"))


def _commands(ws: str, rng: random.Random) -> list[cmd.CommandEnvelope]:
    """One workspace's life: ~200 posts from schedule to settlement, with some failures and rejections."""
    accounts = [f"{ws}-a", f"{ws}-b"]
    payloads: list[cmd.Payload] = [
        cmd.OpenWorkspace(name=ws, tier="business"),
        *[cmd.ConnectSocialAccount(social_account_id=a, platform="sandbox", handle=a) for a in accounts],
        cmd.GrantCredits(amount=1_000, source="monthly"),
    ]
    due = datetime.now(UTC) + timedelta(days=1)
    for i in range(POSTS_PER_WORKSPACE):
        post = f"{ws}-p{i}"
        dests = accounts if rng.random() < 0.3 else [rng.choice(accounts)]
        if rng.random() < 0.02:  # a destination the workspace lacks: rejected
            payloads.append(cmd.SchedulePost(post_id=post, text="?", destinations=[f"{ws}-zz"], publish_at=due))
            continue
        payloads.append(cmd.SchedulePost(post_id=post, text=f"post {i} of {ws}", destinations=dests, publish_at=due,
                                         media_urls=["https://example.org/a.png"] if i % 5 == 0 else []))
        if rng.random() < 0.05:
            payloads.append(cmd.CancelPost(post_id=post, reason="changed my mind"))
            payloads += [cmd.ReleaseHold(hold_id=hold_id_for(post, d), reason="cancelled") for d in dests]
            continue
        for d in dests:
            fate = rng.random()
            payloads.append(cmd.StartPublishAttempt(post_id=post, destination_id=d, attempt=1))
            if fate < 0.08:  # a transient error, then published on the retry
                payloads.append(cmd.RecordPublishOutcome(post_id=post, destination_id=d, attempt=1, outcome="retry",
                                                         error_kind="transient", detail="503 from the platform"))
                payloads.append(cmd.StartPublishAttempt(post_id=post, destination_id=d, attempt=2))
                payloads.append(cmd.RecordPublishOutcome(post_id=post, destination_id=d, attempt=2,
                                                         outcome="published", platform_post_id=f"{post}-{d}"))
                settle = "consume"
            elif fate < 0.12:
                payloads.append(cmd.RecordPublishOutcome(post_id=post, destination_id=d, attempt=1, outcome="failed",
                                                         error_kind="invalid_content", detail="422 text too long"))
                settle = "release"
            elif fate < 0.14:
                payloads.append(cmd.RecordPublishOutcome(post_id=post, destination_id=d, attempt=1, outcome="skipped",
                                                         detail="insufficient_credits"))
                settle = "release"
            else:
                payloads.append(cmd.RecordPublishOutcome(post_id=post, destination_id=d, attempt=1,
                                                         outcome="published", platform_post_id=f"{post}-{d}"))
                settle = "consume"
            if fate > 0.99:  # a stale attempt: fenced
                payloads.append(cmd.StartPublishAttempt(post_id=post, destination_id=d, attempt=1))
            hold = hold_id_for(post, d)
            payloads.append(cmd.ConsumeHold(hold_id=hold) if settle == "consume"
                            else cmd.ReleaseHold(hold_id=hold, reason=settle))
    now = datetime.now(UTC)
    return [cmd.CommandEnvelope.wrap(p, command_id=f"{ws}-{n}", workspace_id=ws, issued_by="bench", issued_at=now)
            for n, p in enumerate(payloads)]


def generate(url: str, events: int, say: Callable[[str], None]) -> int:
    """Decide workspaces' histories until the store holds ``events`` events; returns how many it holds."""
    pool = db.connection_pool(url, max_size=4)
    env = {**db.eventsourcing_env(url), "APPLICATION_RECORDER_TOPIC": event_store.RECORDER_TOPIC}
    app = HeraldApplication(env, versions=event_store.versions_in(pool))  # as herald.runtime.wiring makes it
    try:
        rng, stored, started = random.Random(7), 0, time.perf_counter()
        with psycopg.connect(url) as conn:
            for n in itertools.count():
                commands = _commands(f"ws{n:05d}", rng)
                for i in range(0, len(commands), BATCH):
                    app.handle_batch(commands[i:i + BATCH])
                stored = conn.execute("SELECT max(notification_id) FROM herald_events").fetchone()[0]
                conn.commit()
                if n % 20 == 0:
                    say(f"replay: generated {stored:,} events ({stored / (time.perf_counter() - started):,.0f}/s)")
                if stored >= events:
                    return stored
    finally:
        app.close()
        pool.close()
    raise AssertionError("unreachable")


def template(server_url: str, events: int, say: Callable[[str], None]) -> str:
    """The template database holding the generated history (made once, then reused)."""
    name = f"herald_bench_replay_{events}"
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
