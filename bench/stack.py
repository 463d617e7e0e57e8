"""Herald running in-process as `herald run` runs it, for the scenarios that drive it over HTTP.

``running()`` gives a fresh database of its own (dropped afterwards) and its own topic prefix
on the bench's broker, starts every loop (handler, relay, processors, projections) in this
process and `herald gateway` in a process of its own on a free port, and stops and closes all
of it on the way out. The
helpers below talk to that gateway as a user would: httpx, API keys, JSON bodies, tolerant
of fields they do not know.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import math
import os
import secrets
import socket
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Iterator

import httpx

from herald.runtime.wiring import Herald, run_loops
from herald.settings import Settings
from herald.storage import db

log = logging.getLogger("bench")


def say(line: str) -> None:
    """One figure (or progress line) on stdout, at once."""
    print(line, flush=True)

ROLES = ("handler", "relay", "processors", "projections")  # every role but the gateway, as loops
BIG = 1_000_000
ACCOUNTS = 10  # sandbox accounts per workspace = destinations per post


@dataclass
class Stack:
    url: str
    admin_key: str
    herald: Herald

    def client(self, key: str | None = None, timeout_s: float = 30.0) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key or self.admin_key}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)


def bench_settings(database_url: str, bootstrap: str, prefix: str, data_dir: Path) -> Settings:
    """Herald's settings for a bench run: its own database, topics, consumer groups and keys."""
    return Settings(
        _env_file=None,
        database_url=database_url,
        kafka_bootstrap=bootstrap,
        topic_prefix=prefix,
        consumer_group_prefix=prefix,
        data_dir=data_dir,
        admin_api_key=secrets.token_urlsafe(24),
        token_key=base64.b64encode(os.urandom(32)).decode(),
        metrics_port=0,
        outbound_allowed_networks=["127.0.0.0/8"],  # the fake platforms listen on this machine
    )


@contextlib.contextmanager
def running(server_url: str, bootstrap: str, tmp: Path, name: str, *, role_processes: bool = False) -> Iterator[Stack]:
    """Herald with every role on a database of its own, gateway on a free port. The roles run as
    loops in this process (as `herald run` does), or with ``role_processes`` each as a process of
    its own (as a deployment runs them: `herald handler`, `herald relay`, ...)."""
    tag = secrets.token_hex(4)
    db_name = f"herald_bench_{name}_{tag}"
    db.create_database(server_url, db_name)
    database_url = db.with_database(server_url, db_name)
    prefix = f"b{tag}{name[:4]}."
    settings = bench_settings(database_url, bootstrap, prefix, tmp / f"herald-{name}")
    herald = Herald(settings, database_url, bootstrap)
    stop = threading.Event()
    threads: list[threading.Thread] = []
    gateway: subprocess.Popen | None = None
    roles: list[subprocess.Popen] = []
    try:
        herald.resume_relays(herald.prepare())
        if role_processes:
            roles = [subprocess.Popen([sys.executable, "-c", "from herald.cli import main; main()", role],
                                      env={**os.environ, **settings.environment(), "HERALD_METRICS_PORT": "0"},
                                      stdout=subprocess.DEVNULL, stderr=open(tmp / f"{role}-{name}.log", "wb"))
                     for role in ROLES]
        else:
            threads = run_loops([loop for role in ROLES for loop in herald.loops(role)], stop)
        port = _free_port()
        # The gateway in a process of its own, as `herald gateway` is deployed: its requests do not
        # share an interpreter with the relay, projections and processors (here all in this process),
        # and its decisions meet the handler's across processes (the workspace locks).
        gateway = subprocess.Popen(
            [sys.executable, "-c", "from herald.cli import main; main()", "gateway"],
            env={**os.environ, **settings.environment(), "HERALD_METRICS_PORT": "0", "HERALD_HTTP_HOST": "127.0.0.1",
                 "HERALD_HTTP_PORT": str(port), "HERALD_RATE_KEY_PER_S": "0"},  # measures Herald, not the limiter
            stdout=subprocess.DEVNULL, stderr=open(tmp / f"gateway-{name}.log", "wb"),
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while not _answers(f"{url}/healthz"):
            if gateway.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the gateway did not start (log: {tmp / f'gateway-{name}.log'})")
            time.sleep(0.1)
        yield Stack(url, settings.admin_api_key, herald)
        if stop.is_set():
            raise RuntimeError("a Herald loop died during the scenario (see the log above)")
        if gateway.poll() is not None:
            raise RuntimeError(f"the gateway process ended during the scenario ({gateway.returncode})")
        ended = [role for role, process in zip(ROLES, roles) if process.poll() is not None]
        if ended:
            raise RuntimeError(f"role processes ended during the scenario: {ended} (logs in {tmp})")
    finally:
        for process in roles:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in roles:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        if gateway is not None and gateway.poll() is None:
            gateway.send_signal(signal.SIGTERM)
            try:
                gateway.wait(timeout=15)
            except subprocess.TimeoutExpired:
                gateway.kill()
        stop.set()
        for thread in threads:
            thread.join(timeout=15)
        stuck = [t.name for t in threads if t.is_alive()]
        if stuck:
            log.warning("bench %s: loops still running after stop: %s", name, stuck)
        herald.close()
        with contextlib.suppress(Exception):
            herald.app.close()
        db.drop_database(server_url, db_name)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


# Talking to the gateway ------------------------------------------------------------------


@dataclass
class Workspace:
    workspace_id: str
    api_key: str
    accounts: list[str] = field(default_factory=list)

    def path(self, tail: str) -> str:
        return f"/v1/workspaces/{self.workspace_id}/{tail}"


def open_workspace(stack: Stack, name: str, credits: int) -> Workspace:
    """Open a business workspace with room for everything, connect 10 sandbox accounts, grant credits."""
    with stack.client() as admin:
        opened = _ok(admin.post("/v1/workspaces", json={
            "name": name, "tier": "business",
            "limit_overrides": {"queue_size": BIG, "accounts_per_platform": ACCOUNTS, "daily_posts_per_platform": BIG},
        }))
    ws = Workspace(opened["workspace_id"], opened["api_key"])
    with stack.client(ws.api_key) as http:
        for i in range(ACCOUNTS):
            connected = _ok(http.post(ws.path("social-accounts"), json={"platform": "sandbox", "handle": f"{name}-{i}"}))
            ws.accounts.append(connected["social_account_id"])
    with stack.client() as admin:  # only the admin grants credits
        while credits > 0:  # one grant is at most 1,000,000
            amount = min(credits, BIG)
            _ok(admin.post(ws.path("credits/grants"), json={"amount": amount, "source": "purchase"}))
            credits -= amount
    return ws


def post_body(ws: Workspace, text: str, publish_in_s: float) -> dict[str, Any]:
    at = datetime.now(UTC) + timedelta(seconds=publish_in_s)
    return {"text": text, "destinations": ws.accounts, "publish_at": at.isoformat()}


def wallet(http: httpx.Client, ws: Workspace) -> dict[str, Any]:
    return _ok(http.get(ws.path("wallet")))


def held(view: dict[str, Any]) -> int:
    if "held" in view:
        return int(view["held"])
    return sum(h.get("amount", 1) for h in view.get("holds", []) if h.get("status") == "pending")


TERMINAL = {"published", "failed", "skipped", "cancelled"}


def queue_waiting(http: httpx.Client, ws: Workspace) -> int:
    """Destinations still waiting, from the queue's summary (or by counting its pages)."""
    page = _ok(http.get(ws.path("queue")))
    if "waiting" in page:
        return int(page["waiting"])
    waiting = 0
    while True:
        waiting += sum(1 for d in page.get("destinations", []) if d.get("status") not in TERMINAL)
        cursor = page.get("next_cursor")
        if not cursor:
            return waiting
        page = _ok(http.get(ws.path("queue"), params={"cursor": cursor}))


def _ok(response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 300:
        raise RuntimeError(f"{response.request.method} {response.request.url.path}: {response.status_code} "
                           f"{response.text[:300]}")
    return response.json()


def reason_code(response: httpx.Response) -> str:
    try:
        return str(response.json().get("reason_code") or "none")
    except ValueError:
        return "not_json"


# Figures ---------------------------------------------------------------------------------


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN without samples."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)
