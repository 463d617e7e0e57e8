"""Health of the worker roles (handler, relay, processors, projections), served with their
metrics on HERALD_METRICS_PORT: ``/healthz`` (live: every loop thread is running),
``/readyz`` (ready: PostgreSQL and the broker answer, and every loop finished an iteration
of work within ``stale_after_s``) and ``/metrics``. The gateway serves its own."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app

from herald.runtime import metrics
from schemas import api


@dataclass
class RoleHealth:
    loops: list[str]  # the heartbeat names of the loops this process runs
    threads: list[threading.Thread]
    checks: dict[str, Callable[[], None]]  # name → raises when the dependency does not answer
    stale_after_s: float = 60.0
    started: float = field(default_factory=time.time)

    def live(self) -> dict[str, str]:
        """Problems that make the process not live (empty: live)."""
        return {t.name: "thread stopped" for t in self.threads if not t.is_alive()}

    def not_ready(self) -> dict[str, str]:
        """Problems that make the role not ready (empty: ready)."""
        problems = {}
        for name, check in self.checks.items():
            try:
                check()
            except Exception as error:  # noqa: BLE001 - any failure is the answer
                problems[name] = f"{type(error).__name__}: {error}"[:300]
        now = time.time()
        for loop in self.loops:
            last = metrics.last_beat(loop)
            if last is None or last < self.started:
                problems[loop] = "no completed iteration yet"
            elif now - last > self.stale_after_s:
                problems[loop] = f"no completed iteration for {now - last:.0f} s"
        return problems


def wsgi_app(health: RoleHealth) -> Callable:
    serve_metrics = make_wsgi_app()

    def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            return _answer(start_response, health.live(), "not_live", {"status": "ok"})
        if path == "/readyz":
            return _answer(start_response, health.not_ready(), "not_ready", {"status": "ready", "loops": health.loops})
        return serve_metrics(environ, start_response)

    return app


def _answer(start_response: Callable, problems: dict[str, str], reason_code: str, ok: dict) -> list[bytes]:
    if not problems:
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(ok).encode()]
    body = api.problem(503, reason_code, "failing: " + ", ".join(sorted(problems)), checks=problems)
    start_response("503 Service Unavailable", [("Content-Type", "application/problem+json")])
    return [json.dumps(body).encode()]


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a slow readiness check must not hold up a liveness probe


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:  # probes every few seconds would flood the log
        pass


def serve(health: RoleHealth, host: str, port: int) -> WSGIServer:
    """Serve in a daemon thread; ``server.shutdown()`` stops it."""
    server = make_server(host, port, wsgi_app(health), server_class=_ThreadingServer, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, name="health-server", daemon=True).start()
    return server
