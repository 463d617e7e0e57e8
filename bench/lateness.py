"""lateness: how late does Herald publish a post, measured where it lands (the platform), not in Herald?

The platform is the fake Mastodon (tests/fakes/mastodon_server.py) in a process of its own, answering every
status post after ``latency_ms`` (200 ms, a platform's round trip) and recording when each request arrived
(wall clock). Herald runs as ``herald run`` does (bench/stack.py: handler, relay, processors: dispatcher,
publisher and settler, projections, in one process; the gateway in another), with ``accounts`` (50) Mastodon
accounts in one business workspace pointing at the fake, so no single account's limits serialise the run.

1. Spread: ``posts`` (10,000) single-destination posts, round-robin over the accounts, due evenly over
   ``window_s`` (60 s) from a first due time after all of them are scheduled. They are produced as
   ``schedule_post.v1`` commands straight to the commands topic (what POST /v1/commands queues), so
   scheduling is not the gateway's speed; ``lead_s`` leaves the handler time to decide them all before the
   first is due (the run says whether it did). Lateness of a destination = the fake's receive time of its
   first request that posted the status − its due time: p50, p99, max.
2. Burst: ``burst`` (10,000) posts all due at one instant: burst_drain_s = last receive − that instant,
   burst_p99_ms the p99 lateness.
3. The peer: BullMQ delayed jobs with the same counts (bench/peers.py), and lateness_p99_vs_bullmq = Herald's
   spread p99 / BullMQ's p99 (BullMQ measures the start of its job's call, Herald the platform's receipt of it,
   which includes the HTTP connection: Herald is, if anything, disadvantaged).

Each phase waits until every destination has ended (published, failed, skipped or cancelled in the queue
read model), its deadline passes, or, past its last due time, nothing has moved for ``stall_s`` (120 s); what
never reached the platform is counted, not hidden. double_posts
(the fake's count of statuses an account posted twice with the same text) must be 0.

Sizes come from the environment so a quick run can scale down (defaults are the issue's numbers):
HERALD_BENCH_LATENESS_N, _WINDOW_S, _BURST, _ACCOUNTS, _LATENCY_MS, _LEAD_S, _DEADLINE_S, _STALL_S,
_PEER (0: no BullMQ).
Herald's own settings come from HERALD_* as always (e.g. HERALD_DISPATCH_INTERVAL_S); the publishing ones in
effect are printed.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx

from bench import peers
from bench.stack import BIG, Stack, percentile
from herald.messaging.consumer import produce_commands
from schemas.commands import CommandEnvelope
from schemas.statuses import TERMINAL

ROOT = Path(__file__).resolve().parents[1]
CHUNK = 1_000  # commands per produce


def _env(name: str, default: float) -> float:
    return float(os.environ.get(f"HERALD_BENCH_LATENESS_{name}", default))


@dataclass
class Options:
    posts: int = 10_000
    window_s: float = 60.0
    burst: int = 10_000
    accounts: int = 50
    latency_ms: float = 200.0
    lead_s: float | None = None  # None: 15 s + 10 ms per post (the handler decided 10k in 74 s on a loaded machine)
    deadline_s: float | None = None  # per phase, after its first due time; None: window + 600 s + 0.25 s per post
    stall_s: float = 120.0  # past the last due time, give up once no destination has ended for this long
    peer: bool = True
    peer_concurrency: int = 50

    @classmethod
    def from_env(cls) -> Options:
        lead, deadline = os.environ.get("HERALD_BENCH_LATENESS_LEAD_S"), os.environ.get("HERALD_BENCH_LATENESS_DEADLINE_S")
        return cls(posts=int(_env("N", cls.posts)), window_s=_env("WINDOW_S", cls.window_s),
                   burst=int(_env("BURST", cls.burst)), accounts=int(_env("ACCOUNTS", cls.accounts)),
                   latency_ms=_env("LATENCY_MS", cls.latency_ms), lead_s=float(lead) if lead else None,
                   deadline_s=float(deadline) if deadline else None, stall_s=_env("STALL_S", cls.stall_s),
                   peer=_env("PEER", 1) != 0)

    def lead_for(self, posts: int) -> float:
        return self.lead_s if self.lead_s is not None else 15.0 + 0.010 * posts

    def deadline_for(self, posts: int, window_s: float) -> float:
        return self.deadline_s if self.deadline_s is not None else window_s + 600.0 + 0.25 * posts


# The platform -----------------------------------------------------------------------------


@dataclass
class FakePlatform:
    url: str
    http: httpx.Client = field(repr=False)

    def posts(self, since: int = 0) -> list[dict[str, Any]]:
        return _ok(self.http.get("/_fake/posts", params={"since": since}))

    def stats(self) -> dict[str, Any]:
        return _ok(self.http.get("/_fake/stats"))


@contextlib.contextmanager
def fake_platform(latency_ms: float, tmp: Path) -> Iterator[FakePlatform]:
    """The fake Mastodon as a process of its own (so its work does not share Herald's interpreter)."""
    port_file = tmp / "fake-mastodon.port"
    port_file.unlink(missing_ok=True)
    log = open(tmp / "fake-mastodon.log", "wb")
    process = subprocess.Popen([sys.executable, "-m", "tests.fakes.mastodon_server", "--port", "0",
                                "--latency-ms", str(latency_ms), "--port-file", str(port_file)],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the fake Mastodon did not start (log: {tmp / 'fake-mastodon.log'})")
            time.sleep(0.05)
        url = f"http://127.0.0.1:{int(port_file.read_text())}"
        with httpx.Client(base_url=url, timeout=60) as http:
            yield FakePlatform(url, http)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


# Herald --------------------------------------------------------------------------------------


@dataclass
class Workspace:
    workspace_id: str
    api_key: str
    accounts: list[str]


def open_workspace(stack: Stack, platform_url: str, accounts: int, credits: int) -> Workspace:
    """A business workspace with ``accounts`` Mastodon accounts on the fake and ``credits`` credits."""
    with stack.client() as admin:
        opened = _ok(admin.post("/v1/workspaces", json={
            "name": "bench-lateness", "tier": "business",
            "limit_overrides": {"queue_size": BIG, "accounts_per_platform": accounts, "daily_posts_per_platform": BIG},
        }))
    ws = Workspace(opened["workspace_id"], opened["api_key"], [])
    with stack.client(ws.api_key) as http:
        path = f"/v1/workspaces/{ws.workspace_id}"
        for i in range(accounts):
            connected = _ok(http.post(f"{path}/social-accounts", json={
                "platform": "mastodon", "handle": f"bench-{i}", "access_token": f"bench-token-{i}",
                "instance_url": platform_url}))
            ws.accounts.append(connected["social_account_id"])
    with stack.client() as admin:  # a workspace's own key cannot grant it credits
        while credits > 0:  # one grant is at most 1,000,000
            amount = min(credits, BIG)
            _ok(admin.post(f"{path}/credits/grants", json={"amount": amount, "source": "purchase"}))
            credits -= amount
    return ws


def schedule(stack: Stack, ws: Workspace, phase: str, due: list[datetime]) -> dict[str, datetime]:
    """One single-destination post per due time, round-robin over the accounts; text → due time."""
    texts: dict[str, datetime] = {}
    envelopes: list[CommandEnvelope] = []
    for i, at in enumerate(due):
        text = f"lateness {phase} {i} of {ws.workspace_id}"
        texts[text] = at
        envelopes.append(CommandEnvelope(
            command_id=f"lateness-{phase}-{i}", type="schedule_post.v1", workspace_id=ws.workspace_id,
            issued_at=datetime.now(UTC), issued_by="bench",
            payload={"text": text, "destinations": [ws.accounts[i % len(ws.accounts)]], "publish_at": at.isoformat()}))
    settings = stack.herald.settings
    for start in range(0, len(envelopes), CHUNK):
        produce_commands(stack.herald.producer, settings.commands_topic, envelopes[start:start + CHUNK])
    return texts


def destinations(stack: Stack, ws: Workspace, due: tuple[datetime, datetime]) -> tuple[int, int]:
    """(destinations in the queue read model due within ``due``, of which ended): one phase's, as phases
    do not share due times."""
    with stack.herald.pool.connection() as conn:
        row = conn.execute("SELECT count(*), count(*) FILTER (WHERE status = ANY(%s)) FROM queue_destinations"
                           " WHERE workspace_id = %s AND due_at BETWEEN %s AND %s",
                           (list(TERMINAL), ws.workspace_id, *due)).fetchone()
    return int(row[0]), int(row[1])


def statuses(stack: Stack, ws: Workspace, due: tuple[datetime, datetime]) -> dict[str, int]:
    with stack.herald.pool.connection() as conn:
        rows = conn.execute("SELECT status, count(*) FROM queue_destinations WHERE workspace_id = %s"
                            " AND due_at BETWEEN %s AND %s GROUP BY status ORDER BY status",
                            (ws.workspace_id, *due)).fetchall()
    return {status: int(n) for status, n in rows}


def wait_for(condition: Callable[[], bool], deadline: float, every_s: float = 0.5) -> bool:
    while not condition():
        if time.time() > deadline:
            return False
        time.sleep(every_s)
    return True


def wait_to_end(stack: Stack, ws: Workspace, platform: FakePlatform, due: tuple[datetime, datetime], expected: int,
                deadline: float, stall_s: float, say) -> bool:
    """Until every destination has ended; False at the deadline, or once past the last due time nothing has
    moved for ``stall_s``: no status changed in the read model and no request reached the platform (a stuck
    destination should not hold the bench for the whole deadline; a read model catching up is progress)."""
    last_due = due[1].timestamp()
    progress: object = None
    progress_at = time.time()
    while True:
        ended = destinations(stack, ws, due)[1]
        now = time.time()
        if ended >= expected:
            return True
        moved = (statuses(stack, ws, due), platform.stats()["requests"])
        if moved != progress:
            progress, progress_at = moved, now
        if now > deadline:
            say(f"lateness: deadline passed with {expected - ended} destinations not ended")
            return False
        if now > last_due and now - max(progress_at, last_due) > stall_s:
            say(f"lateness: {expected - ended} destinations not ended and nothing moved for {stall_s:g} s: stalled")
            return False
        time.sleep(1.0)


# A phase ---------------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    expected: int  # destinations of this phase
    texts: dict[str, datetime]
    first_due: float  # epoch seconds
    scheduled_s: float = float("nan")  # from the first command produced until the read model shows them all
    ended: bool = False
    lateness_s: list[float] = field(default_factory=list)
    last_received: float = float("nan")
    not_received: int = 0
    received_before_due: int = 0


def run_phase(stack: Stack, ws: Workspace, platform: FakePlatform, opts: Options, phase: Phase,
              due: list[datetime], say) -> Phase:
    seen = platform.stats()["requests"]
    started = time.time()
    span = (min(due), max(due))
    phase.texts = schedule(stack, ws, phase.name, due)
    if not wait_for(lambda: destinations(stack, ws, span)[0] >= phase.expected, phase.first_due + 120, every_s=0.2):
        raise RuntimeError(f"lateness {phase.name}: only {destinations(stack, ws, span)[0]} of {phase.expected}"
                           " destinations were scheduled")
    phase.scheduled_s = time.time() - started
    margin = phase.first_due - time.time()
    say(f"lateness {phase.name}: {len(due):,} posts scheduled in {phase.scheduled_s:.1f} s, "
        + (f"{margin:.1f} s before the first is due" if margin >= 0
           else f"NOT before the first was due ({-margin:.1f} s after it): raise HERALD_BENCH_LATENESS_LEAD_S"))
    deadline = phase.first_due + opts.deadline_for(len(due), span[1].timestamp() - phase.first_due)
    phase.ended = wait_to_end(stack, ws, platform, span, phase.expected, deadline, opts.stall_s, say)
    first: dict[str, float] = {}
    for post in platform.posts(since=seen):
        text = post["text"]
        # The first request that created (or was answered with) the status: a refused one did not post.
        if text in phase.texts and post["status_id"] and (text not in first or post["received_at"] < first[text]):
            first[text] = post["received_at"]
    phase.lateness_s = [first[t] - at.timestamp() for t, at in phase.texts.items() if t in first]
    phase.not_received = len(phase.texts) - len(first)
    phase.received_before_due = sum(1 for late in phase.lateness_s if late < 0)
    phase.last_received = max(first.values(), default=float("nan"))
    say(f"lateness {phase.name}: " + ("every destination ended" if phase.ended else
                                     "NOT every destination ended (deadline or stall)")
        + f" ({statuses(stack, ws, span)}); {len(first):,} reached the platform, {phase.not_received:,} did not,"
        f" {phase.received_before_due} before their due time")
    return phase


def run(stack: Stack, opts: Options, say, tmp: Path) -> dict[str, Any]:
    say(f"lateness: Herald's publishing settings: {publishing_settings(stack)}")
    with fake_platform(opts.latency_ms, tmp) as platform:
        ws = open_workspace(stack, platform.url, opts.accounts, credits=opts.posts + opts.burst + 1_000)
        say(f"lateness: fake Mastodon at {platform.url} ({opts.latency_ms:g} ms per post), "
            f"{opts.accounts} accounts in workspace {ws.workspace_id}")

        first_due = time.time() + opts.lead_for(opts.posts)
        spread_due = [datetime.fromtimestamp(first_due + i * opts.window_s / opts.posts, UTC)
                      for i in range(opts.posts)]
        spread = run_phase(stack, ws, platform, opts,
                           Phase("spread", opts.posts, {}, first_due), spread_due, say)

        burst_at = time.time() + opts.lead_for(opts.burst)
        burst = run_phase(stack, ws, platform, opts,
                          Phase("burst", opts.burst, {}, burst_at),
                          [datetime.fromtimestamp(burst_at, UTC)] * opts.burst, say)
        stats = platform.stats()

    p50, p99, worst = (_ms(percentile(spread.lateness_s, q)) for q in (50, 99, 100))
    burst_p99 = _ms(percentile(burst.lateness_s, 99))
    burst_drain = round(burst.last_received - burst.first_due, 2) if burst.lateness_s else None
    say(f"lateness: {opts.posts:,} posts over {opts.window_s:g} s: p50 {p50} ms, p99 {p99} ms, max {worst} ms")
    say(f"lateness: burst of {opts.burst:,} at one instant: drained in {burst_drain} s, p99 {burst_p99} ms")
    say(f"lateness: double posts {stats['double_posts']} (same text twice on an account), "
        f"{stats['double_posts_by_key']} accepted Idempotency-Keys sent again; {stats['requests']:,} requests")
    return {
        "lateness_posts": opts.posts, "lateness_window_s": opts.window_s, "lateness_accounts": opts.accounts,
        "lateness_platform_latency_ms": opts.latency_ms,
        "lateness_scheduled_s": round(spread.scheduled_s, 1),
        "lateness_p50_ms": p50, "lateness_p99_ms": p99, "lateness_max_ms": worst,
        "lateness_not_received": spread.not_received, "lateness_all_ended": spread.ended,
        "burst_posts": opts.burst, "burst_scheduled_s": round(burst.scheduled_s, 1),
        "burst_drain_s": burst_drain, "burst_p99_ms": burst_p99, "burst_not_received": burst.not_received,
        "burst_all_ended": burst.ended,
        "double_posts": stats["double_posts"], "double_posts_by_key": stats["double_posts_by_key"],
        "platform_requests": stats["requests"],
    }


def against_peer(figures: dict[str, Any], opts: Options, say) -> dict[str, Any]:
    """BullMQ with the same counts, run after Herald has stopped (they would share the two cores otherwise)."""
    if not opts.peer:
        say("lateness: BullMQ peer not run (HERALD_BENCH_LATENESS_PEER=0)")
        peer = {"lateness_p50_ms": None, "lateness_p99_ms": None, "version": None, "skipped": "not asked for"}
    else:
        peer = peers.bullmq_lateness(opts.posts, int(opts.window_s * 1000), opts.peer_concurrency,
                                     int(opts.latency_ms))
        if peer["skipped"]:
            say(f"lateness: BullMQ peer skipped: {peer['skipped']}")
        else:
            say(f"lateness: BullMQ {peer['version']}, {opts.posts:,} jobs over {opts.window_s:g} s, concurrency "
                f"{opts.peer_concurrency}, {opts.latency_ms:g} ms of work: p50 {peer['lateness_p50_ms']} ms, "
                f"p99 {peer['lateness_p99_ms']} ms")
    ratio = None
    if peer["lateness_p99_ms"] and figures.get("lateness_p99_ms") is not None:
        ratio = round(figures["lateness_p99_ms"] / peer["lateness_p99_ms"], 2)
        say(f"lateness_p99_vs_bullmq: {ratio} (Herald's p99 / BullMQ's p99)")
    return {"bullmq_lateness_p50_ms": peer["lateness_p50_ms"], "bullmq_lateness_p99_ms": peer["lateness_p99_ms"],
            "bullmq_version": peer["version"], "bullmq_skipped": peer["skipped"], "lateness_p99_vs_bullmq": ratio}


def publishing_settings(stack: Stack) -> dict[str, Any]:
    """The settings that shape publishing, whatever the publisher names them (HERALD_* to change them)."""
    s = stack.herald.settings
    shaping = ("dispatch", "publish", "platform", "retry", "missed", "consumer_batch", "batch_max", "poll_timeout")
    return {name: getattr(s, name) for name in type(s).model_fields if name.startswith(shaping)}


def _ms(seconds: float) -> float | None:
    return None if seconds != seconds else round(seconds * 1000, 1)  # NaN → null: the JSON line stays valid


def _ok(response: httpx.Response) -> Any:
    if response.status_code >= 300:
        raise RuntimeError(f"{response.request.method} {response.request.url.path}: {response.status_code} "
                           f"{response.text[:300]}")
    return response.json()
