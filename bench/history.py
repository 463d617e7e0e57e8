"""history: does scheduling (and reading the wallet and the queue) slow down as a workspace ages?

One workspace, 10 sandbox accounts. Its history is real: posts for all 10 accounts, due a
second or so after they are scheduled, which the processors dispatch, publish and settle
(every hold consumed), so the workspace's event streams grow as they would in use. At two
points, 10 posts of history and ``--history-posts`` (2,000), once the queue has drained, a
window is measured over HTTP: sequential schedule requests (10 destinations, due a day
ahead so they do not interfere), then wallet GETs, then queue GETs (first page), in 3 rounds; the measured
posts are cancelled after their window, so both windows start with the same posts waiting.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable
from datetime import UTC, datetime

import httpx

from bench.stack import ACCOUNTS, Stack, Workspace, held, ms, open_workspace, percentile, post_body, \
    queue_waiting, wallet

SMALL = 10
TARGET_GROWTH = 1.3
DUE_S = 1.5  # history posts are due this long after they are scheduled
FAR_S = 86_400.0  # the measured posts are due a day ahead: they stay waiting, out of the processors' way


@dataclass
class Options:
    history_posts: int = 2_000
    window: int = 50  # requests of each kind per measurement round
    rounds: int = 3  # rounds per measuring point, a few seconds apart: one burst of noise moves one round only
    pause_s: float = 0.05  # a user's pause between requests: each request meets a system done with the last
    clients: int = 4  # concurrent HTTP clients building the history
    budget_s: float = 420.0  # for building the history (scheduled as fast as it is published); past it, no more
    window_budget_s: float = 12.0  # per kind of request in one window; past it (and 5 requests), stop there
    drain_timeout_s: float = 30.0  # waiting for the processors after the building budget
    via: str = "commands"  # how the history is scheduled: "commands" (POST /v1/commands) or "posts"


@dataclass
class Window:
    history: int  # posts of history published before the window
    schedule: list[float] = field(default_factory=list)
    wallet: list[float] = field(default_factory=list)
    queue: list[float] = field(default_factory=list)
    schedule_statuses: dict[int, int] = field(default_factory=dict)
    posts: list[str] = field(default_factory=list)  # the measured posts, cancelled after the window


@dataclass
class Builder:
    """Schedules history posts over HTTP from several threads; a 5xx or transport error is retried with the same
    key, so each post is scheduled once.

    ``via="commands"`` (the default) submits ``schedule_post`` commands to ``POST /v1/commands`` (202; the
    handler decides them in batches, due as soon as decided); ``via="posts"`` uses ``POST .../posts`` (decided
    synchronously, due DUE_S later). Either way the workspace's streams get the same events."""

    stack: Stack
    ws: Workspace
    clients: int
    via: str = "commands"
    sent: int = 0  # accepted (201 or 202)
    retries: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def build(self, upto: int, deadline: float, published: Callable[[], int], chunk: int = 25) -> None:
        """Schedule posts up to ``upto`` in chunks, each once the processors are within a chunk of the last
        (so the history that is built gets published); no new chunk after ``deadline``."""
        while self.sent < upto and time.monotonic() < deadline:
            if self.sent * ACCOUNTS - published() > chunk * ACCOUNTS:
                time.sleep(0.25)
                continue
            before = self.sent + sum(self.rejected.values())
            self._send_all(range(before, min(upto, before + chunk)))

    def _send_all(self, todo: range) -> None:
        local = threading.local()
        opened: list[httpx.Client] = []

        def one(i: int) -> None:
            if not hasattr(local, "http"):
                local.http = self.stack.client(self.ws.api_key)
                opened.append(local.http)
            for attempt in range(8):
                try:
                    r = self._send(local.http, i)
                except httpx.HTTPError:
                    r = None
                if r is not None and r.status_code < 500:
                    with self._lock:
                        if r.status_code < 300:
                            self.sent += 1
                        else:
                            code = _reason(r)
                            self.rejected[code] = self.rejected.get(code, 0) + 1
                    return
                with self._lock:
                    self.retries += 1
                time.sleep(0.05 * (attempt + 1))
            with self._lock:
                self.rejected["gave_up_after_retries"] = self.rejected.get("gave_up_after_retries", 0) + 1

        try:
            with ThreadPoolExecutor(self.clients, thread_name_prefix="bench-history") as pool:
                list(pool.map(one, todo))
        finally:
            for http in opened:
                http.close()

    def _send(self, http: httpx.Client, i: int) -> httpx.Response:
        if self.via == "posts":
            return http.post(self.ws.path("posts"), json=post_body(self.ws, f"history {i}", DUE_S),
                             headers={"Idempotency-Key": f"history-{i}"})
        envelope = {
            "command_id": f"history-{self.ws.workspace_id}-{i}", "type": "schedule_post.v1",
            "workspace_id": self.ws.workspace_id, "issued_at": datetime.now(UTC).isoformat(), "issued_by": "bench",
            "payload": {"text": f"history {i}", "destinations": self.ws.accounts},
        }
        return http.post("/v1/commands", json=envelope)


def _reason(r: httpx.Response) -> str:
    try:
        return f"{r.status_code}:{r.json().get('reason_code')}"
    except ValueError:
        return str(r.status_code)


def published_destinations(stack: Stack) -> int:
    """What the sandbox platform has posted (the scenario's database holds this one workspace)."""
    with stack.herald.pool.connection() as conn:
        return conn.execute("SELECT count(*) FROM sandbox_posts").fetchone()[0]


def drain(stack: Stack, http: httpx.Client, ws: Workspace, history_posts: int, far_posts: int,
          deadline: float) -> tuple[bool, float, str]:
    """Wait until every history post is published on all its accounts, and only the far-ahead posts hold
    credits and wait in the queue. Returns (drained, seconds, what is still missing)."""
    started = time.monotonic()
    far = far_posts * ACCOUNTS
    while True:
        missing = history_posts * ACCOUNTS - published_destinations(stack)
        extra_held = held(wallet(http, ws)) - far if missing <= 0 else None
        extra_waiting = queue_waiting(http, ws) - far if extra_held is not None and extra_held <= 0 else None
        if extra_waiting is not None and extra_waiting <= 0:
            return True, time.monotonic() - started, ""
        if time.monotonic() > deadline:
            left = (f"{missing} destinations unpublished" if missing > 0 else
                    f"{extra_held} credits still held" if extra_held and extra_held > 0 else
                    f"{extra_waiting} destinations waiting in the queue")
            return False, time.monotonic() - started, left
        time.sleep(0.5)


def measure(http: httpx.Client, ws: Workspace, history: int, opts: Options) -> Window:
    window = Window(history)
    for _ in range(2):  # warm the connection and the read paths; not counted
        http.get(ws.path("wallet"))
        http.get(ws.path("queue"))
    for round_ in range(opts.rounds):
        posts: list[str] = []

        def schedule(i: int) -> httpx.Response:
            response = http.post(ws.path("posts"), json=post_body(ws, f"measured {history}-{round_}-{i}", FAR_S),
                                 headers={"Idempotency-Key": f"measured-{history}-{round_}-{i}"})
            if response.status_code < 300:
                posts.append(response.json()["post_id"])
            return response

        _timed(window.schedule, opts, schedule, window.schedule_statuses)
        _timed(window.wallet, opts, lambda i: http.get(ws.path("wallet")))
        _timed(window.queue, opts, lambda i: http.get(ws.path("queue")))
        # Cancelled, so every round starts with the same posts waiting and credits held (none
        # but its own): what grows between the measuring points is history only.
        for post_id in posts:
            _ok_status(http.post(ws.path(f"posts/{post_id}/cancel")))
        window.posts += posts
        _wait_released(http, ws)
    return window


def _maintenance(stack: Stack) -> str:
    """PostgreSQL's autovacuum workers at work now (they share the two cores with the requests)."""
    with stack.herald.pool.connection() as conn:
        rows = conn.execute("SELECT query FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'").fetchall()
    return "; ".join(r[0] for r in rows) or "none"


def _wait_released(http: httpx.Client, ws: Workspace, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while held(wallet(http, ws)) > 0 and time.monotonic() < deadline:
        time.sleep(0.2)


def _ok_status(response: httpx.Response) -> None:
    if response.status_code >= 300:
        raise RuntimeError(f"{response.request.url.path}: {response.status_code} {response.text[:300]}")


def _timed(samples: list[float], opts: Options, request, statuses: dict[int, int] | None = None) -> None:
    stop_at = time.monotonic() + opts.window_budget_s
    for i in range(opts.window):
        if i >= 5 and time.monotonic() > stop_at:
            break
        time.sleep(opts.pause_s)
        started = time.perf_counter()
        response = request(i)
        samples.append(time.perf_counter() - started)
        if statuses is not None:
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        elif response.status_code != 200:
            raise RuntimeError(f"{response.request.url.path}: {response.status_code} {response.text[:300]}")


def run(stack: Stack, opts: Options, say) -> dict[str, float | int | None]:
    big = opts.history_posts
    ws = open_workspace(stack, "bench-history", credits=ACCOUNTS * (big + 2 * opts.window) + 1_000)
    builder = Builder(stack, ws, opts.clients, opts.via)
    drained_all = True
    windows: list[Window] = []
    with stack.client(ws.api_key) as http:
        started = time.monotonic()
        deadline = started + opts.budget_s
        for point in (SMALL, big):
            phase = time.monotonic()
            builder.build(point, deadline, lambda: published_destinations(stack))
            built_s = time.monotonic() - phase
            done, drain_s, left = drain(stack, http, ws, builder.sent, 0,
                                        max(deadline, time.monotonic()) + opts.drain_timeout_s)
            say(f"history: {builder.sent} posts x {ACCOUNTS} destinations scheduled in {built_s:.1f} s (paced by publishing, "
                f"{opts.clients} clients via {builder.via}, {builder.retries} retries), "
                + (f"all published and settled {drain_s:.1f} s later" if done
                   else f"NOT drained after {drain_s:.1f} s: {left}"))
            if builder.rejected:
                say(f"history: rejected while building: {builder.rejected}")
            if not done:
                drained_all = False
            say(f"history: maintenance running as the window starts: {_maintenance(stack)}")
            windows.append(measure(http, ws, builder.sent, opts))
    small, large = windows
    figures: dict[str, float | int | None] = {}
    for at, window in zip((SMALL, big), windows):
        for kind in ("schedule", "wallet", "queue"):
            samples = getattr(window, kind)
            p50, p99 = percentile(samples, 50), percentile(samples, 99)
            figures[f"history_{kind}_p50_ms_at_{at}"] = _num(ms(p50))
            figures[f"history_{kind}_p99_ms_at_{at}"] = _num(ms(p99))
            extra = f", statuses {window.schedule_statuses}" if kind == "schedule" else ""
            say(f"history: {kind} at {window.history} posts of history: p50 {ms(p50):,.1f} ms, p99 {ms(p99):,.1f} ms"
                f" ({len(samples)} requests{extra})")
    for kind in ("schedule", "wallet", "queue"):
        growth = percentile(getattr(large, kind), 50) / percentile(getattr(small, kind), 50)
        figures[f"{kind}_latency_growth"] = _num(round(growth, 2))
        verdict = "met" if growth <= TARGET_GROWTH else "NOT met"
        say(f"{kind}_latency_growth: {growth:.2f} (p50 at {large.history} / at {small.history} posts of history;"
            f" target <= {TARGET_GROWTH}, {verdict})")
    figures["history_posts_built"] = large.history
    figures["history_drained"] = drained_all
    figures["history_schedule_non_2xx_in_windows"] = sum(
        n for w in windows for status, n in w.schedule_statuses.items() if status >= 300)
    return figures


def _num(value: float) -> float | None:
    return None if value != value else value  # NaN → null: the summary line stays valid JSON
