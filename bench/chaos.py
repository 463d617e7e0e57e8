"""python -m bench.chaos: kill -9 Herald's roles at random moments under a publishing workload,
then check from the database and the fake platform's log that nothing was lost or doubled.

What runs (every part a process of its own):

- the roles as ``herald <role>`` subprocesses on a database and topics of their own (default: two
  handlers, one relay, two processors, one projections, one gateway);
- the fake Mastodon platform (``python -m tests.fakes.mastodon_server``), answering each status
  post after ``--latency-ms`` (200 ms: a real platform's round trip), deduplicating by
  ``Idempotency-Key`` as Mastodon does (https://docs.joinmastodon.org/methods/statuses/#create,
  "Idempotency-Key ... prevent duplicate submissions of the same status"), and logging every
  status it created;
- this driver: it opens the workspaces (each with ``--destinations`` Mastodon accounts, one token
  each), submits ``--posts`` schedule_post commands through the gateway (``POST /v1/commands``,
  retried with the same command id while the gateway is down), due over ``--spread-s`` seconds,
  and meanwhile sends ``--kills`` SIGKILLs to random role processes at random moments, each
  process restarted at once. Some kills aim at the publisher mid-call: every processors process
  is killed at once (each counts as a kill) while the fake holds a request unanswered, or right
  after the fake received a post (which of them made the call is not known, so all go).

After the kills it waits until every destination has ended (or nothing moves any more, or
``--settle-timeout-s``), stops the roles, and checks:

- ``double_posts``: statuses at the platform beyond the first for one destination (a destination
  is its account's token and its post's text, unique per post), whatever their Idempotency-Key;
- ``destinations_not_ended``: scheduled destinations not published, failed, skipped or cancelled
  in the queue read model (``not_ended_by_status`` says in which status they stayed), plus
  ``read_model_disagreements`` (read model status ≠ the one the event store's events give);
- ``holds_not_ended`` / ``holds_ended_twice``: per hold placed, the number of consumed/released
  wallet events in the event store must be one; ``holds_settled_wrong``: a consumed hold whose
  destination was not published, or a released one whose destination was;
- ``ledger_mismatches``: workspaces whose wallet (read model ``wallet_balances`` and grants, and the
  Wallet aggregate) differs from the ledger summed from the wallet events;
- ``published_not_on_platform``: destinations Herald recorded as published under a status id the
  platform does not have; ``posted_not_published``: statuses the platform has for a destination
  Herald did not record as published (posted, but its credit released or never settled);
- ``commands_lost``: schedule commands the gateway accepted (202) that were never decided;
- ``unexpected_exits``: role processes that ended without being killed.

It prints progress lines on stderr and one JSON line on stdout; exit status 1 when any check fails
or the run did less than asked (fewer kills or posts). Sizes come from the options or CHAOS_*
environment variables (``CHAOS_POSTS=40 CHAOS_KILLS=5 python -m bench.chaos``).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import logging
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx

from domain.wallet import Wallet
from herald.runtime.wiring import Herald
from processors.accounts.credentials import connect_with_tokens
from herald.settings import Settings
from herald.storage import db
from schemas import commands as cmd
from schemas import events as ev
from schemas.statuses import TERMINAL

log = logging.getLogger("bench.chaos")

HERALD_COMMAND = [sys.executable, "-c", "from herald.cli import main; main()"]  # the `herald` console script
FAKE_COMMAND = [sys.executable, "-m", "tests.fakes.mastodon_server"]
BIG = 1_000_000
DEFAULT_PROCESSES = {"gateway": 1, "handler": 2, "relay": 1, "processors": 2, "projections": 1}
# The relay role must not run twice at once (it has no lease), so it stays at one process.
SINGLE = frozenset({"relay"})


@dataclass
class Options:
    posts: int = 2_000
    destinations: int = 5  # Mastodon accounts per workspace = destinations per post
    workspaces: int = 4
    kills: int = 50
    latency_ms: int = 200
    lead_s: float = 30.0  # the first post is due this long after the workload starts
    spread_s: float = 300.0  # due times spread evenly over this
    kill_window_s: float | None = None  # kills at random moments within it (default: lead + spread)
    mid_call_share: float = 0.4  # share of kills aimed at the publisher inside a platform call
    settle_timeout_s: float = 3_600.0
    stall_s: float = 90.0  # nothing moved this long and only stuck destinations are left: stop waiting
    seed: int | None = None
    processes: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PROCESSES))
    # Herald settings of the roles for this run (their defaults would stretch a retry to 15 minutes).
    role_env: dict[str, str] = field(default_factory=lambda: {
        "HERALD_RETRY_DELAYS_S": "[2, 5, 15]",
        "HERALD_DISPATCH_INTERVAL_S": "0.2",
        "HERALD_DISPATCH_REDELIVER_AFTER_S": "5",
        "HERALD_PLATFORM_TIMEOUT_S": "5",
        # eventsourcing keeps POSTGRES_POOL_SIZE connections open per process (default 5): with a
        # dozen processes and their restarts that alone nears a shared server's max_connections.
        "POSTGRES_POOL_SIZE": "2",
    })

    @property
    def window_s(self) -> float:
        return self.kill_window_s if self.kill_window_s is not None else self.lead_s + self.spread_s


Say = Callable[[str], None]


def _stderr(line: str) -> None:
    print(f"chaos: {line}", file=sys.stderr, flush=True)


# Processes -------------------------------------------------------------------------------


@dataclass
class Slot:
    """One role process kept running: killed, it is started again in the same slot."""

    role: str
    index: int
    env: dict[str, str]
    log_dir: Path
    port: int  # /readyz: the gateway's HTTP port, the metrics port of the others
    process: subprocess.Popen | None = None
    starts: int = 0
    killed: int = 0
    unexpected_exits: list[int] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.role}-{self.index}"

    def start(self) -> None:
        self.starts += 1
        log_file = (self.log_dir / f"{self.name}.log").open("ab")
        log_file.write(f"\n--- start {self.starts} at {datetime.now(UTC).isoformat()}\n".encode())
        log_file.flush()
        self.process = subprocess.Popen([*HERALD_COMMAND, self.role], env=self.env, stdout=log_file,
                                        stderr=subprocess.STDOUT)
        log_file.close()  # the child holds its own descriptor

    def ready(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL (the process gets no chance to clean up) and start it again."""
        self.send_kill()
        self.restart()

    def send_kill(self) -> None:
        assert self.process is not None
        if self.process.poll() is not None:  # it had ended by itself
            self.unexpected_exits.append(self.process.returncode)
        else:
            self.process.send_signal(signal.SIGKILL)
            self.killed += 1

    def restart(self) -> None:
        assert self.process is not None
        self.process.wait()
        self.start()

    def watch(self) -> None:
        """Restart a process that ended without being killed (and count it)."""
        if self.process is not None and self.process.poll() is not None:
            self.unexpected_exits.append(self.process.returncode)
            self.start()

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                log.warning("%s did not stop on SIGTERM within 30 s", self.name)


class FakePlatform:
    """The fake Mastodon server as a process of its own, and its inspection endpoints."""

    def __init__(self, workdir: Path, latency_ms: int) -> None:
        port_file = workdir / "fake-mastodon.port"
        port_file.unlink(missing_ok=True)
        self.log_path = workdir / "fake-mastodon.log"
        self.process = subprocess.Popen(
            [*FAKE_COMMAND, "--port", "0", "--latency-ms", str(latency_ms), "--port-file", str(port_file)],
            stdout=self.log_path.open("wb"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the fake Mastodon did not start (log: {self.log_path})")
            time.sleep(0.05)
        self.base_url = f"http://127.0.0.1:{int(port_file.read_text().strip())}"
        self.http = httpx.Client(base_url=self.base_url, timeout=30)

    def stats(self) -> dict[str, Any]:
        return _ok(self.http.get("/_fake/stats"))

    def posts(self) -> list[dict[str, Any]]:
        """One record per status post received: token, text, Idempotency-Key, HTTP status, status id."""
        return _ok(self.http.get("/_fake/posts"))

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.http.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _ok(response: httpx.Response) -> Any:
    if response.status_code >= 300:
        raise RuntimeError(f"{response.request.method} {response.request.url}: {response.status_code} "
                           f"{response.text[:300]}")
    return response.json()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_ready(slots: list[Slot], timeout_s: float) -> None:
    """Until every role answers /readyz (each of its loops went round once), before any kill."""
    deadline = time.monotonic() + timeout_s
    waiting = list(slots)
    while waiting:
        for slot in slots:
            slot.watch()
        waiting = [s for s in waiting if not s.ready()]
        if waiting and time.monotonic() > deadline:
            raise RuntimeError(f"not ready within {timeout_s:.0f} s: {[s.name for s in waiting]}")
        time.sleep(0.2)


# The workload ----------------------------------------------------------------------------


@dataclass
class Workload:
    run_tag: str
    accounts: dict[str, list[str]]  # workspace → social account ids
    tokens: dict[str, str]  # social account id → its access token at the platform
    submitted: list[cmd.CommandEnvelope] = field(default_factory=list)  # schedules answered 202


def _envelope(payload: cmd.Payload, workspace_id: str, command_id: str) -> cmd.CommandEnvelope:
    return cmd.CommandEnvelope.wrap(payload, command_id=command_id, workspace_id=workspace_id, issued_by="chaos",
                                    issued_at=datetime.now(UTC))


def open_workspaces(herald: Herald, options: Options, platform_url: str, run_tag: str) -> Workload:
    """Workspaces with room for the whole workload, Mastodon accounts (a token each) and credits:
    decided here directly, before any role runs (the relay publishes them when it starts)."""
    overrides = {"queue_size": BIG, "daily_posts_per_platform": BIG, "accounts_per_platform": options.destinations}
    per_workspace = -(-options.posts // options.workspaces) * options.destinations
    workload = Workload(run_tag, {}, {})
    for w in range(options.workspaces):
        ws = f"chaos-{run_tag}-ws{w}"
        tokens: dict[str, str] = {}  # connect step → its account's token
        steps: list[tuple[str, cmd.Payload]] = [
            ("open", cmd.OpenWorkspace(name=ws, tier="business", limit_overrides=overrides))]
        for a in range(options.destinations):
            token = f"chaos-{run_tag}-ws{w}-account{a}-{secrets.token_hex(4)}"
            steps.append((f"connect-{a}", cmd.ConnectSocialAccount(
                platform="mastodon", handle=f"ws{w}_account{a}", instance_url=platform_url)))
            tokens[f"connect-{a}"] = token
        # More than the workload needs, in two grants, so burns span grants.
        steps.append(("grant-1", cmd.GrantCredits(amount=per_workspace // 2 + 3, source="monthly")))
        steps.append(("grant-2", cmd.GrantCredits(amount=per_workspace, source="purchase")))
        for command_id, payload in steps:
            envelope = _envelope(payload, ws, f"{ws}-{command_id}")
            if command_id in tokens:  # the token goes to the credentials store, the domain gets its version
                decision = connect_with_tokens(herald.app, herald.credentials, envelope, access_token=tokens[command_id])
            else:
                decision = herald.app.handle(envelope)
            if not decision.accepted:
                raise RuntimeError(f"setup {ws}/{command_id} rejected: {decision.reason_code} {decision.detail}")
            if isinstance(payload, cmd.ConnectSocialAccount):
                account = decision.result["social_account_id"]
                workload.accounts.setdefault(ws, []).append(account)
                workload.tokens[account] = tokens[command_id]
    return workload


def post_text(run_tag: str, i: int) -> str:
    return f"chaos {run_tag} post {i}"


def submit_schedules(gateway_url: str, admin_key: str, workload: Workload, options: Options, first_due: datetime,
                     stop: threading.Event, say: Say) -> None:
    """POST /v1/commands one schedule_post per post, round-robin over the workspaces; a request the
    (killed) gateway did not answer 202 is sent again with the same command id."""
    workspaces = sorted(workload.accounts)
    step = options.spread_s / max(options.posts - 1, 1)
    with httpx.Client(base_url=gateway_url, timeout=10, headers={"Authorization": f"Bearer {admin_key}"}) as http:
        for i in range(options.posts):
            ws = workspaces[i % len(workspaces)]
            due = first_due + timedelta(seconds=i * step)
            envelope = _envelope(cmd.SchedulePost(text=post_text(workload.run_tag, i), destinations=workload.accounts[ws],
                                                  publish_at=due), ws, f"chaos-{workload.run_tag}-post-{i}")
            body = json.loads(envelope.model_dump_json())
            while not stop.is_set():
                try:
                    response = http.post("/v1/commands", json=body)
                except httpx.HTTPError:
                    time.sleep(0.2)
                    continue
                if response.status_code == 202:
                    workload.submitted.append(envelope)
                    break
                if response.status_code in (502, 503, 504):
                    time.sleep(0.2)
                    continue
                if response.status_code == 429:  # over the key's rate: wait as told, as a client should
                    time.sleep(float(response.headers.get("retry-after", "1")))
                    continue
                raise RuntimeError(f"schedule {i} refused: {response.status_code} {response.text[:300]}")
    say(f"{len(workload.submitted)} schedule commands accepted by the gateway")


# Killing ---------------------------------------------------------------------------------


@dataclass
class Kill:
    at_s: float
    slot: str
    role: str
    mid_call: str = ""  # "in_flight" / "just_received" when aimed at the publisher inside a call


def plan_kills(options: Options, slots: list[Slot], rng: random.Random) -> list[tuple[float, str | None, str]]:
    """(moment, role or None for any slot, mode) per kill, sorted by moment. Every role is hit at
    least once when there are enough kills; mid-call kills go to the processors."""
    n = options.kills
    roles = sorted({s.role for s in slots})
    publishers = sum(1 for s in slots if s.role == "processors")
    # A mid-call kill takes every processors process at once (which one holds the call is not
    # known), so it counts as that many kills.
    mid_calls = min(round(n * options.mid_call_share / publishers), n // publishers) if publishers else 0
    # Mid-call kills while posts fall due; the others anywhere in the window, setup included.
    plan: list[tuple[float, str | None, str]] = [
        (rng.uniform(options.lead_s, options.lead_s + options.spread_s), "processors",
         "in_flight" if k % 2 == 0 else "just_received") for k in range(mid_calls)]
    singles = n - mid_calls * publishers
    others: list[str | None] = [r for r in roles if r != "processors"][:singles]  # each role once
    others += [None] * (singles - len(others))
    plan += [(rng.uniform(0, options.window_s), role, "random") for role in others]
    return sorted(plan, key=lambda kill: kill[0])


def wait_mid_call(fake: FakePlatform, mode: str, patience_s: float = 30.0) -> bool:
    """Wait until a publisher is inside a platform call: the fake holds a request unanswered
    (``in_flight``), or a status post just arrived (``just_received``). False: not seen in time."""
    deadline = time.monotonic() + patience_s
    seen = fake.stats()
    while time.monotonic() < deadline:
        stats = fake.stats()
        if mode == "in_flight" and stats.get("in_flight", 0) >= 1:
            return True
        if mode == "just_received" and stats.get("requests", 0) > seen.get("requests", 0):
            return True
        seen = stats
        time.sleep(0.01)
    return False


def run_kills(plan: list[tuple[float, str | None, str]], slots: list[Slot], fake: FakePlatform, started: float,
              rng: random.Random, stop: threading.Event, say: Say) -> list[Kill]:
    done: list[Kill] = []
    for moment, role, mode in plan:
        while not stop.is_set() and time.monotonic() - started < moment:
            for slot in slots:
                slot.watch()
            time.sleep(0.05)
        if stop.is_set():
            break
        candidates = [s for s in slots if role is None or s.role == role]
        if mode == "random":
            victims = [rng.choice(candidates)]
            mid_call = ""
        else:  # every publisher at once: the one inside the call among them
            victims = candidates
            mid_call = mode if wait_mid_call(fake, mode) else ""
        for victim in victims:
            victim.send_kill()
        at_s = round(time.monotonic() - started, 2)
        for victim in victims:
            victim.restart()
            done.append(Kill(at_s, victim.name, victim.role, mid_call))
        say(f"kill -9 {', '.join(v.name for v in victims)} at {at_s:.1f} s{' (' + mid_call + ')' if mid_call else ''}")
    return done


# Waiting for the end ---------------------------------------------------------------------


def open_destinations(herald: Herald) -> Counter:
    """Destinations in the queue read model that have not ended, by status."""
    with herald.pool.connection() as conn:
        rows = conn.execute("SELECT status, count(*) FROM queue_destinations WHERE status <> ALL(%s)"
                            " GROUP BY status", (list(TERMINAL),)).fetchall()
    return Counter(dict(rows))


def wait_until_settled(herald: Herald, expected_destinations: int, options: Options, slots: list[Slot],
                       say: Say) -> str:
    """Until every expected destination is in the read model and has ended (``settled``), or only
    destinations that nothing moves any more are left for ``stall_s`` (``stalled``), or the timeout."""
    deadline = time.monotonic() + options.settle_timeout_s
    last, last_change, last_said = None, time.monotonic(), 0.0
    while time.monotonic() < deadline:
        for slot in slots:
            slot.watch()
        with herald.pool.connection() as conn:
            projected = conn.execute("SELECT count(*) FROM queue_destinations").fetchone()[0]
            pending_holds = conn.execute("SELECT count(*) FROM wallet_holds WHERE status = 'pending'").fetchone()[0]
        waiting = open_destinations(herald)
        state = (projected, tuple(sorted(waiting.items())), pending_holds)
        if projected >= expected_destinations and not waiting and not pending_holds:
            return "settled"
        now = time.monotonic()
        if state != last:
            last, last_change = state, now
        elif now - last_change > options.stall_s and projected >= expected_destinations and set(waiting) <= {"outcome_unknown"}:
            return "stalled"
        if now - last_said > 15:
            say(f"waiting: {projected}/{expected_destinations} destinations projected, not ended {dict(waiting)},"
                f" pending holds {pending_holds}")
            last_said = now
        time.sleep(1)
    return "timed_out"


# Checks ----------------------------------------------------------------------------------


@dataclass
class Ledger:
    granted: int = 0  # Σ remaining of grants
    held: int = 0  # Σ amount of pending holds
    grants: dict[str, int] = field(default_factory=dict)  # grant id → remaining


def stored_events(herald: Herald, page: int = 5_000) -> Iterator[tuple[str, Any]]:
    """(workspace id, parsed event data) of every event in the store, oldest first."""
    start = 1
    while True:
        notifications = herald.app.recorder.select_notifications(start=start, limit=page)
        for n in notifications:
            recorded = herald.app.mapper.to_domain_event(n)
            yield recorded.workspace_id, ev.parse_event(recorded.type, recorded.data)
        if len(notifications) < page:
            return
        start = notifications[-1].id + 1


def check(herald: Herald, workload: Workload, fake_posts: list[dict[str, Any]], fake_stats: dict[str, Any]) -> dict:
    """Every figure of the report's checks, from the event store, the read models and the fake's log."""
    destinations: dict[tuple[str, str], dict[str, Any]] = {}  # (post, destination) → what the events say
    by_platform_key: dict[tuple[str, str], tuple[str, str]] = {}  # (token, text) → (post, destination)
    holds: dict[str, dict[str, Any]] = {}  # hold id → placed, ends, destination
    ledgers: dict[str, Ledger] = defaultdict(Ledger)
    schedules_decided: dict[str, str] = {}  # schedule command id → accepted / rejected:<reason>
    chaos_commands = {c.command_id for c in workload.submitted}
    for ws, data in stored_events(herald):
        match data:
            case ev.PostScheduled():
                for d in data.destinations:
                    destinations[(data.post_id, d.destination_id)] = {"status": "pending", "hold": d.hold_id,
                                                                      "platform_post_id": None, "ws": ws}
                    token = workload.tokens.get(d.social_account_id)
                    if token:
                        by_platform_key[(token, d.text)] = (data.post_id, d.destination_id)
            case ev.DestinationPublished():
                destinations[(data.post_id, data.destination_id)].update(status="published",
                                                                         platform_post_id=data.platform_post_id)
            case ev.DestinationFailed():
                destinations[(data.post_id, data.destination_id)]["status"] = "failed"
            case ev.DestinationSkipped():
                destinations[(data.post_id, data.destination_id)]["status"] = "skipped"
            case ev.RetryScheduled():
                destinations[(data.post_id, data.destination_id)]["status"] = "retry_scheduled"
            case ev.AttemptStarted():
                destinations[(data.post_id, data.destination_id)]["status"] = "attempting"
            case ev.OutcomeUnknown():
                destinations[(data.post_id, data.destination_id)]["status"] = "outcome_unknown"
            case ev.PostCancelled():
                for destination_id in data.cancelled_destinations:
                    destinations[(data.post_id, destination_id)]["status"] = "cancelled"
            case ev.CreditsGranted():
                ledgers[ws].grants[data.grant_id] = data.amount
            case ev.HoldPlaced():
                holds[data.hold_id] = {"amount": data.amount, "ends": [], "key": (data.post_id, data.destination_id)}
            case ev.HoldConsumed():
                holds.setdefault(data.hold_id, {"amount": 0, "ends": [], "key": None})["ends"].append("consumed")
                for burn in data.burned:
                    ledgers[ws].grants[burn.grant_id] = ledgers[ws].grants.get(burn.grant_id, 0) - burn.amount
            case ev.HoldReleased():
                holds.setdefault(data.hold_id, {"amount": 0, "ends": [], "key": None})["ends"].append("released")
            case ev.CommandAccepted() | ev.CommandRejected() if data.command_id in chaos_commands:
                outcome = "accepted" if isinstance(data, ev.CommandAccepted) else f"rejected:{data.reason_code}"
                schedules_decided.setdefault(data.command_id, outcome)
    for hold_id, hold in holds.items():
        if not hold["ends"] and hold["key"] is not None:
            ws = destinations[hold["key"]]["ws"]
            ledgers[ws].held += hold["amount"]
    for ledger in ledgers.values():
        ledger.granted = sum(ledger.grants.values())

    # Double posts: distinct statuses per destination, whatever key they came with.
    statuses: dict[tuple[str, str], set[str]] = defaultdict(set)
    unknown_statuses = 0
    platform_ids: dict[str, tuple[str, str]] = {}
    for record in fake_posts:
        if record.get("status_id") is None:
            continue
        key = by_platform_key.get((record.get("token"), record.get("text")))
        if key is None:
            unknown_statuses += 1
            continue
        statuses[key].add(str(record["status_id"]))
        platform_ids[str(record["status_id"])] = key
    per_destination = {key: len(ids) for key, ids in statuses.items()}
    overlapping = _overlapping_calls(fake_posts)
    double_posts = sum(n - 1 for n in per_destination.values() if n > 1)
    published_not_on_platform = sum(1 for key, d in destinations.items() if d["status"] == "published"
                                    and platform_ids.get(str(d["platform_post_id"])) != key)
    posted_not_published = sum(1 for key in per_destination if destinations[key]["status"] != "published")

    # Destinations, from the read model, beside the events.
    with herald.pool.connection() as conn:
        rows = conn.execute("SELECT post_id, destination_id, status FROM queue_destinations").fetchall()
    read_model = {(p, d): s for p, d, s in rows}
    not_ended = Counter(read_model.get(key, "missing_from_read_model") for key in destinations
                        if read_model.get(key) not in TERMINAL)
    disagreements = sum(1 for key, d in destinations.items() if read_model.get(key) != d["status"])

    # Holds, from the wallet events.
    holds_not_ended = sum(1 for h in holds.values() if not h["ends"])
    holds_ended_twice = sum(1 for h in holds.values() if len(h["ends"]) > 1)
    holds_unplaced = sum(1 for h in holds.values() if h["key"] is None)
    settled_wrong = 0
    for hold in holds.values():
        if hold["key"] is None or len(hold["ends"]) != 1:
            continue
        published = destinations[hold["key"]]["status"] == "published"
        if (hold["ends"][0] == "consumed") != published:
            settled_wrong += 1

    ledger_mismatches, mismatch_details = _ledger_mismatches(herald, ledgers)
    lost = [c.command_id for c in workload.submitted if c.command_id not in schedules_decided]
    rejected = Counter(v for v in schedules_decided.values() if v != "accepted")
    return {
        "posts_scheduled": sum(1 for v in schedules_decided.values() if v == "accepted"),
        "destinations": len(destinations),
        "schedules_rejected": dict(rejected),
        "commands_lost": len(lost),
        "double_posts": double_posts,
        "fake_double_posts": int(fake_stats.get("double_posts", 0)),
        "platform_statuses": int(fake_stats.get("posts", 0)),
        "platform_requests": int(fake_stats.get("requests", 0)),
        # Accepted posts sent again (the platform's Idempotency-Key returned the first status): how
        # often exactly-once leaned on the platform's key rather than on Herald's journal alone.
        "platform_key_repeats": int(fake_stats.get("double_posts_by_key", 0)),
        "unknown_platform_statuses": unknown_statuses,
        # Requests that arrived while an earlier one with the same key was still unanswered: two
        # live publishers calling for one destination at once (only the platform's key kept it single).
        "overlapping_calls": overlapping,
        "published_not_on_platform": published_not_on_platform,
        "posted_not_published": posted_not_published,
        "destinations_not_ended": sum(not_ended.values()),
        "not_ended_by_status": dict(not_ended),
        "read_model_disagreements": disagreements,
        "holds": len(holds),
        "holds_not_ended": holds_not_ended,
        "holds_ended_twice": holds_ended_twice,
        "holds_unplaced": holds_unplaced,
        "holds_settled_wrong": settled_wrong,
        "ledger_mismatches": ledger_mismatches,
        "ledger_mismatch_details": mismatch_details[:5],
    }


def _overlapping_calls(records: list[dict[str, Any]]) -> int:
    """Status posts received while an earlier post with the same account and key had no answer yet."""
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        if record.get("idempotency_key"):
            by_key[(record.get("token"), record["idempotency_key"])].append(record)
    overlapping = 0
    for calls in by_key.values():
        calls.sort(key=lambda r: r["received_at"])
        answered_by = calls[0].get("answered_at") or float("inf")
        for call in calls[1:]:
            if call["received_at"] < answered_by:
                overlapping += 1
            answered_by = max(answered_by, call.get("answered_at") or float("inf"))
    return overlapping


def _ledger_mismatches(herald: Herald, ledgers: dict[str, Ledger]) -> tuple[int, list[dict[str, Any]]]:
    """Workspaces whose wallet read model (balances, grants) or Wallet aggregate differs from the ledger."""
    with herald.pool.connection() as conn:
        balances = {ws: (granted, held) for ws, granted, held, _ in
                    conn.execute("SELECT workspace_id, granted, held, available FROM wallet_balances").fetchall()}
        remaining: dict[str, dict[str, int]] = defaultdict(dict)
        for ws, grant_id, left in conn.execute("SELECT workspace_id, grant_id, remaining FROM wallet_grants"):
            remaining[ws][grant_id] = left
    details = []
    for ws, ledger in sorted(ledgers.items()):
        wallet = herald.app.find(Wallet, ws)
        seen = {
            "read_model": balances.get(ws),
            "read_model_grants": remaining.get(ws, {}),
            "aggregate": (wallet.granted, wallet.held) if wallet is not None else None,
        }
        want = {"read_model": (ledger.granted, ledger.held), "read_model_grants": ledger.grants,
                "aggregate": (ledger.granted, ledger.held)}
        wrong = {k: {"ledger": want[k], "seen": seen[k]} for k in want if seen[k] != want[k]}
        if wrong:
            details.append({"workspace": ws, **wrong})
    return len(details), details


CHECKS = ("double_posts", "fake_double_posts", "destinations_not_ended", "read_model_disagreements", "holds_not_ended",
          "holds_ended_twice", "holds_unplaced", "holds_settled_wrong", "ledger_mismatches",
          "published_not_on_platform", "posted_not_published", "unknown_platform_statuses", "commands_lost",
          "unexpected_exits")


def failures(report: dict[str, Any], options: Options) -> list[str]:
    """What makes the run fail: a nonzero check, or a run smaller than asked."""
    failed = [name for name in CHECKS if report.get(name)]
    if report["kills"] < options.kills:
        failed.append(f"kills {report['kills']} < {options.kills}")
    if report["posts_scheduled"] < options.posts:
        failed.append(f"posts_scheduled {report['posts_scheduled']} < {options.posts}")
    return failed


# The run ---------------------------------------------------------------------------------


def run(settings: Settings, workdir: Path, options: Options, say: Say = _stderr) -> dict[str, Any]:
    """The whole chaos run on ``settings``' database and broker (both must exist); returns the report."""
    started = time.monotonic()
    seed = options.seed if options.seed is not None else secrets.randbits(32)
    rng = random.Random(seed)
    run_tag = secrets.token_hex(3)
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    fake = FakePlatform(workdir, options.latency_ms)
    herald = Herald(settings, settings.database_url, settings.kafka_bootstrap)
    slots: list[Slot] = []
    stop = threading.Event()
    try:
        herald.prepare()
        workload = open_workspaces(herald, options, fake.base_url, run_tag)
        base_env = {**os.environ, **settings.environment(), "HERALD_HTTP_HOST": "127.0.0.1", **options.role_env}
        gateway_url = ""
        for role, count in options.processes.items():
            if role in SINGLE and count > 1:
                raise ValueError(f"the {role} role runs as one process")
            for index in range(count):
                port = _free_port()
                env = {**base_env, "HERALD_HTTP_PORT" if role == "gateway" else "HERALD_METRICS_PORT": str(port)}
                slots.append(Slot(role, index, env, logs, port))
                if role == "gateway":
                    gateway_url = f"http://127.0.0.1:{port}"
        if not gateway_url:
            raise ValueError("the chaos run submits its posts through a gateway process")
        for slot in slots:
            slot.start()
        say(f"seed {seed}; {len(slots)} role processes, fake platform at {fake.base_url}, logs in {logs}")
        _wait_ready(slots, timeout_s=180)
        say(f"every role ready after {time.monotonic() - started:.1f} s")
        workload_started = time.monotonic()
        first_due = datetime.now(UTC) + timedelta(seconds=options.lead_s)
        submitter = threading.Thread(target=submit_schedules, name="chaos-submit", daemon=True,
                                     args=(gateway_url, settings.admin_api_key, workload, options, first_due, stop, say))
        submitter.start()
        kills = run_kills(plan_kills(options, slots, rng), slots, fake, workload_started, rng, stop, say)
        submitter.join(timeout=options.settle_timeout_s)
        if submitter.is_alive():
            raise RuntimeError("the schedule commands were not all accepted by the gateway")
        expected = len(workload.submitted) * options.destinations
        ending = wait_until_settled(herald, expected, options, slots, say)
        say(f"after the kills: {ending}")
        unexpected = sum(len(s.unexpected_exits) for s in slots)
        for slot in slots:
            slot.stop()
        fake_posts, fake_stats = fake.posts(), fake.stats()
        # For a look afterwards: what the platform received, and when what was killed.
        (workdir / "fake-posts.json").write_text(json.dumps(fake_posts))
        (workdir / "kills.json").write_text(json.dumps([asdict(k) for k in kills]))
        report: dict[str, Any] = {
            "kills": len(kills),
            "kills_by_role": dict(Counter(k.role for k in kills)),
            "mid_call_kills": dict(Counter(k.mid_call for k in kills if k.mid_call)),
            **check(herald, workload, fake_posts, fake_stats),
            "unexpected_exits": unexpected,
            "ending": ending,
            "seed": seed,
            "latency_ms": options.latency_ms,
            "duration_s": round(time.monotonic() - started, 1),
        }
        report["failed"] = failures(report, options)
        return report
    finally:
        stop.set()
        for slot in slots:
            with contextlib.suppress(Exception):
                slot.stop()
        fake.stop()
        herald.close()
        with contextlib.suppress(Exception):
            herald.app.close()


# Command line ----------------------------------------------------------------------------


def _env_default(name: str, default: Any) -> Any:
    value = os.environ.get(f"CHAOS_{name.upper()}")
    return type(default)(value) if value is not None else default


def parse_args(argv: list[str] | None = None) -> tuple[Options, argparse.Namespace]:
    defaults = Options()
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.split("\n\n", 1)[0])
    for name in ("posts", "destinations", "workspaces", "kills", "latency_ms", "lead_s", "spread_s",
                 "mid_call_share", "settle_timeout_s", "stall_s"):
        default = getattr(defaults, name)
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(default), default=_env_default(name, default))
    parser.add_argument("--kill-window-s", type=float, default=_env_default("kill_window_s", -1.0),
                        help="kills happen within this many seconds (default: lead + spread)")
    parser.add_argument("--seed", type=int, default=_env_default("seed", -1))
    parser.add_argument("--processes", default=os.environ.get("CHAOS_PROCESSES", ""),
                        help="role=count,... (default: " + ",".join(f"{r}={n}" for r, n in DEFAULT_PROCESSES.items()) + ")")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL",
                                                                 "postgresql://postgres@127.0.0.1:5432/postgres"),
                        help="PostgreSQL server; the run makes a database of its own there and drops it")
    parser.add_argument("--keep", action="store_true", help="keep the database and logs for a look afterwards")
    args = parser.parse_args(argv)
    processes = dict(DEFAULT_PROCESSES)
    for item in filter(None, args.processes.split(",")):
        role, _, count = item.partition("=")
        processes[role.strip()] = int(count)
    options = Options(
        posts=args.posts, destinations=args.destinations, workspaces=args.workspaces, kills=args.kills,
        latency_ms=args.latency_ms, lead_s=args.lead_s, spread_s=args.spread_s, mid_call_share=args.mid_call_share,
        settle_timeout_s=args.settle_timeout_s, stall_s=args.stall_s,
        kill_window_s=None if args.kill_window_s < 0 else args.kill_window_s,
        seed=None if args.seed < 0 else args.seed, processes={r: n for r, n in processes.items() if n > 0},
    )
    return options, args


def main(argv: list[str] | None = None) -> int:
    from herald.storage.embedded import EmbeddedBroker

    options, args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    tag = secrets.token_hex(4)
    db_name = f"herald_chaos_{tag}"
    db.create_database(args.database_url, db_name)
    database_url = db.with_database(args.database_url, db_name)
    tmp = Path(tempfile.mkdtemp(prefix="herald-chaos-"))
    try:
        with EmbeddedBroker(tmp / "broker") as broker:
            settings = Settings(
                _env_file=None, database_url=database_url, kafka_bootstrap=broker.bootstrap, topic_prefix=f"c{tag}.",
                consumer_group_prefix=f"c{tag}.", data_dir=tmp / "herald", admin_api_key=secrets.token_urlsafe(24),
                token_key=base64.b64encode(os.urandom(32)).decode(), metrics_port=0,
                outbound_allowed_networks=["127.0.0.0/8"],  # the fake platform listens on this machine
            )
            report = run(settings, tmp, options)
    finally:
        if not args.keep:
            db.drop_database(args.database_url, db_name)
    print(json.dumps(report), flush=True)
    if report["failed"]:
        _stderr(f"FAILED: {', '.join(report['failed'])} (logs: {tmp / 'logs'})")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
