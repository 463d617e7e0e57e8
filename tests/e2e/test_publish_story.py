"""The walking skeleton's story, end to end over HTTP, on real PostgreSQL and a real broker.

An internal service schedules a post for two social accounts; the domain reserves one
credit per destination; the relay carries the events to Kafka; at the due time the
dispatcher starts the attempts, the publisher posts to the (fake, real-HTTP) platform, the
settler consumes each hold, and the queue read model shows both destinations published,
each exactly once. Replaying every command changes nothing.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import uvicorn

from herald.messaging import kafka_io
from herald.runtime.wiring import Herald, run_loops
from tests.fakes.mastodon_server import FakeMastodon

pytestmark = pytest.mark.e2e

TOKENS = {"acme": "token-of-acme", "acme_news": "token-of-acme-news"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def herald_url(settings, database_url, kafka_bootstrap):
    settings = settings.model_copy(update={"http_port": _free_port(), "dispatch_interval_s": 0.2})
    herald = Herald(settings, database_url, kafka_bootstrap)
    herald.prepare()
    stop = threading.Event()
    loops = [loop for role in ("handler", "relay", "processors", "projections") for loop in herald.loops(role)]
    threads = run_loops(loops, stop)
    server = uvicorn.Server(uvicorn.Config(herald.gateway(), host="127.0.0.1", port=settings.http_port, log_level="warning"))
    server_thread = threading.Thread(target=server.run, daemon=True)
    server_thread.start()
    url = f"http://127.0.0.1:{settings.http_port}"
    _wait_until(lambda: httpx.get(f"{url}/healthz").status_code == 200, timeout=15)
    yield url, herald
    server.should_exit = True
    stop.set()
    for thread in [*threads, server_thread]:
        thread.join(timeout=15)
    assert not any(t.is_alive() for t in threads), "a role did not stop"
    herald.close()


def _wait_until(check, timeout: float, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
        except httpx.HTTPError:
            result = None
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def test_a_post_for_two_accounts_is_published_once_each_and_charged(herald_url, settings):
    url, herald = herald_url
    admin = {"Authorization": f"Bearer {settings.admin_api_key}"}
    with FakeMastodon(valid_tokens=set(TOKENS.values())) as mastodon, httpx.Client(base_url=url, timeout=10) as http:
        sent: list[tuple[str, dict, dict]] = []

        def post(path: str, body: dict, headers: dict, key: str) -> dict:
            headers = {**headers, "Idempotency-Key": key}
            sent.append((path, body, headers))
            response = http.post(path, json=body, headers=headers)
            assert response.status_code in (200, 201), response.text
            return response.json()

        opened = post("/v1/workspaces", {"name": "Acme", "tier": "pro"}, admin, "open-acme")
        ws, service = opened["workspace_id"], {"Authorization": f"Bearer {opened['api_key']}"}
        accounts = [
            post(
                f"/v1/workspaces/{ws}/social-accounts",
                {"platform": "mastodon", "handle": handle, "access_token": TOKENS[handle], "instance_url": mastodon.base_url},
                service,
                f"connect-{handle}",
            )["social_account_id"]
            for handle in ("acme", "acme_news")
        ]
        post(f"/v1/workspaces/{ws}/credits/grants", {"amount": 5, "source": "purchase"}, service, "grant-5")
        due = datetime.now(UTC) + timedelta(seconds=3)
        scheduled = post(
            f"/v1/workspaces/{ws}/posts",
            {"text": "Hello from Herald", "destinations": accounts, "publish_at": due.isoformat()},
            service,
            "post-hello",
        )
        post_id = scheduled["post_id"]
        assert http.get(f"/v1/workspaces/{ws}/wallet", headers=service).json()["available"] == 3

        def both_published():
            queue = http.get(f"/v1/workspaces/{ws}/queue", headers=service).json()
            rows = [d for d in queue["destinations"] if d["post_id"] == post_id]
            return rows if len(rows) == 2 and all(d["status"] == "published" for d in rows) else None

        rows = _wait_until(both_published, timeout=60)
        published_at = max(datetime.fromisoformat(d["updated_at"]) for d in rows)
        delay = (published_at - due).total_seconds()
        print(f"\ndue-to-published delay: {delay:.2f} s")
        assert delay >= 0, "published before its due time"

        def wallet_settled():
            wallet = http.get(f"/v1/workspaces/{ws}/wallet", headers=service).json()
            return wallet if all(h["status"] == "consumed" for h in wallet["holds"]) else None

        wallet = _wait_until(wallet_settled, timeout=30)
        assert wallet["available"] == 3 and wallet["held"] == 0
        assert sum(g["remaining"] for g in wallet["grants"]) == 3, "exactly 2 credits burned"
        assert len(wallet["holds"]) == 2
        assert sorted(s["token"] for s in mastodon.statuses) == sorted(TOKENS.values()), (
            "each destination published exactly once"
        )
        shown = http.get(f"/v1/workspaces/{ws}/posts/{post_id}", headers=service).json()
        assert shown["status"] == "published"
        assert {d["platform_post_id"] for d in shown["destinations"]} == {s["id"] for s in mastodon.statuses}

        # Replay every command: the HTTP requests again, and the whole commands topic again.
        events_before = herald.app.recorder.max_notification_id()
        for path, body, headers in sent:
            assert http.post(path, json=body, headers=headers).status_code in (200, 201)
        replayed = _replay_commands_topic(settings, herald)
        assert replayed >= 4, "start, outcome and consume commands for two destinations went through Kafka"
        time.sleep(3)  # let the handler, processors and projection chew on the replay
        assert herald.app.recorder.max_notification_id() == events_before, "a replay recorded new events"
        assert len(mastodon.statuses) == 2
        assert http.get(f"/v1/workspaces/{ws}/wallet", headers=service).json() == wallet
        assert both_published()


def _replay_commands_topic(settings, herald) -> int:
    consumer = kafka_io.make_consumer(herald.kafka_bootstrap, None, [settings.commands_topic])
    records = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=500).values():
            records.extend(batch)
    consumer.close()
    for record in records:
        herald.producer.send(settings.commands_topic, key=record.key, value=record.value)
    herald.producer.flush()
    assert all(json.loads(r.value)["command_id"] for r in records)
    return len(records)


def test_metrics_show_the_work_of_every_loop(herald_url, settings):
    url, herald = herald_url
    with httpx.Client(base_url=url, timeout=10) as http:
        admin = {"Authorization": f"Bearer {settings.admin_api_key}"}
        assert http.post("/v1/workspaces", json={"name": "M"}, headers=admin).status_code == 201

        def relayed():  # the registry is per process: look for this test's own topic
            text = http.get("/metrics").text
            return text if f'herald_messages_produced_total{{producer="{settings.events_topic}"}}' in text else None

        text = _wait_until(relayed, timeout=30)
    assert 'herald_events_applied_total{consumer="projection-queue"}' in text
    for loop in ("relay", "handler", "dispatcher", "publisher", "settler", "projection-queue", "inbox-relay"):
        assert f'herald_loop_heartbeat_timestamp_seconds{{loop="{loop}"}}' in text, loop
