"""Each worker role reports health on its metrics port: /healthz (loop threads running),
/readyz (PostgreSQL and the broker answer, every loop completed an iteration recently) and
/metrics."""

from __future__ import annotations

import httpx
import pytest

from herald.runtime import health
from tests.support import poll_until, role_loops, running

pytestmark = pytest.mark.integration


def _wait_for(url: str, status: int, naming: tuple[str, ...] = (), timeout_s: float = 60) -> httpx.Response:
    """Poll until ``url`` answers ``status`` (and, for a problem, one naming each of ``naming``)."""
    return poll_until(lambda: httpx.get(url, timeout=30),
                      lambda r: r.status_code == status and set(naming) <= set(r.json().get("checks", {})),
                      timeout=timeout_s)


def test_a_worker_role_reports_live_ready_and_metrics(heralds):
    broker = heralds.own_broker()
    herald = heralds.start(broker=broker, resume_relays=False, health_stale_after_s=3.0)
    roles = ["handler", "projections"]
    with running(role_loops(herald, *roles)) as loops:
        server = health.serve(herald.role_health(roles, loops.threads), "127.0.0.1", 0)
        base = f"http://127.0.0.1:{server.server_port}"
        ready = _wait_for(f"{base}/readyz", 200)
        assert ready.status_code == 200, ready.text
        assert ready.json()["loops"] == ["handler", "read-models"]
        assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
        assert 'herald_loop_heartbeat_timestamp_seconds{loop="handler"}' in httpx.get(f"{base}/metrics").text

        broker.stop()
        # A stopping broker may first show as loops gone stale; its own check fails once it is away.
        not_ready = _wait_for(f"{base}/readyz", 503, naming=("kafka",))
        assert not_ready.status_code == 503
        assert not_ready.headers["content-type"] == "application/problem+json"
        assert not_ready.json()["reason_code"] == "not_ready" and "kafka" in not_ready.json()["checks"]
        broker.start()

    try:
        dead = _wait_for(f"{base}/healthz", 503)
        assert dead.status_code == 503 and dead.json()["reason_code"] == "not_live"
        stale = _wait_for(f"{base}/readyz", 503, naming=("handler", "read-models"))
        assert {"handler", "read-models"} <= set(stale.json()["checks"]), stale.text
    finally:
        server.shutdown()
