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

from tests.fakes.mastodon_server import FakeMastodon
from tests.support import Api, event_types, read_topic, role_loops, running, wait_until

pytestmark = pytest.mark.e2e

TOKENS = {"acme": "token-of-acme", "acme_news": "token-of-acme-news"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def herald_url(heralds):
    herald = heralds.start(resume_relays=False, http_port=_free_port(), dispatch_interval_s=0.2)
    port = herald.settings.http_port
    with running(role_loops(herald, "handler", "relay", "processors", "projections"), must_stop=True, join_timeout=15):
        server = uvicorn.Server(uvicorn.Config(herald.gateway(), host="127.0.0.1", port=port, log_level="warning"))
        server_thread = threading.Thread(target=server.run, daemon=True)
        server_thread.start()
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: httpx.get(f"{url}/healthz").status_code == 200, "the gateway answers", timeout=15,
                   ignoring=(httpx.HTTPError,))
        yield url, herald
        server.should_exit = True
        server_thread.join(timeout=15)


def test_a_post_for_two_accounts_is_published_once_each_and_charged(herald_url, settings):
    url, herald = herald_url
    with FakeMastodon(valid_tokens=set(TOKENS.values())) as mastodon, httpx.Client(base_url=url, timeout=10) as http:
        api = Api(http, admin_key=settings.admin_api_key)
        ws, service = api.open_workspace(name="Acme", tier="pro", idempotency_key="open-acme")
        accounts = [
            api.connect(ws, service, handle, platform="mastodon", access_token=TOKENS[handle],
                        instance_url=mastodon.base_url, idempotency_key=f"connect-{handle}")
            for handle in ("acme", "acme_news")
        ]
        api.grant(ws, service, 5, source="purchase", idempotency_key="grant-5")
        due = datetime.now(UTC) + timedelta(seconds=3)
        response = api.schedule(ws, service, accounts, text="Hello from Herald", publish_at=due,
                                idempotency_key="post-hello")
        assert response.status_code == 201, response.text
        scheduled = response.json()
        post_id = scheduled["post_id"]
        # Read your own write: the wallet read model waits for the position the schedule answered with.
        held = http.get(f"/v1/workspaces/{ws}/wallet", headers=service, params={"min_position": scheduled["position"]})
        assert held.status_code == 200 and int(held.headers["Herald-Position"]) >= scheduled["position"]
        assert held.json()["available"] == 3 and len(held.json()["holds"]) == 2

        def both_published():
            queue = http.get(f"/v1/workspaces/{ws}/queue", headers=service, params={"status": "published"}).json()
            rows = [d for d in queue["destinations"] if d["post_id"] == post_id]
            return rows if len(rows) == 2 and all(d["status"] == "published" for d in rows) else None

        rows = wait_until(both_published, "both destinations published", timeout=60, ignoring=(httpx.HTTPError,))
        published_at = max(datetime.fromisoformat(d["updated_at"]) for d in rows)
        delay = (published_at - due).total_seconds()
        print(f"\ndue-to-published delay: {delay:.2f} s")
        assert delay >= 0, "published before its due time"

        def wallet_settled():
            wallet = http.get(f"/v1/workspaces/{ws}/wallet", headers=service).json()
            return wallet if not wallet["holds"] and wallet["granted"] == 3 else None  # pending holds only

        wallet = wait_until(wallet_settled, "every hold consumed", timeout=30, ignoring=(httpx.HTTPError,))
        assert wallet["available"] == 3 and wallet["held"] == 0
        assert sum(g["remaining"] for g in wallet["grants"]) == 3, "exactly 2 credits burned"
        assert event_types(herald)["herald.wallet.hold_consumed.v1"] == 2, "both holds consumed, not released"
        assert sorted(s["token"] for s in mastodon.statuses) == sorted(TOKENS.values()), (
            "each destination published exactly once"
        )
        shown = http.get(f"/v1/workspaces/{ws}/posts/{post_id}", headers=service).json()
        assert shown["status"] == "published"
        assert {d["platform_post_id"] for d in shown["destinations"]} == {s["id"] for s in mastodon.statuses}

        # Replay every command: the HTTP requests again, and the whole commands topic again.
        events_before = herald.app.recorder.max_notification_id()
        for path, body, headers in api.sent:
            assert http.post(path, json=body, headers=headers).status_code in (200, 201)
        replayed = _replay_commands_topic(settings, herald)
        assert replayed >= 4, "start, outcome and consume commands for two destinations went through Kafka"
        time.sleep(3)  # let the handler, processors and projection chew on the replay
        assert herald.app.recorder.max_notification_id() == events_before, "a replay recorded new events"
        assert len(mastodon.statuses) == 2
        assert http.get(f"/v1/workspaces/{ws}/wallet", headers=service).json() == wallet
        assert both_published()


def _replay_commands_topic(settings, herald) -> int:
    records = read_topic(herald.kafka_bootstrap, settings.commands_topic, idle_s=2.0)
    for record in records:
        herald.producer.send(settings.commands_topic, key=record.key, value=record.value)
    herald.producer.flush()
    assert all(json.loads(r.value)["command_id"] for r in records)
    return len(records)


def test_metrics_show_the_work_of_every_loop(herald_url, settings):
    url, herald = herald_url
    with httpx.Client(base_url=url, timeout=10) as http:
        Api(http, admin_key=settings.admin_api_key).open_workspace(name="M")

        def relayed():  # the registry is per process: look for this test's own topic
            text = http.get("/metrics").text
            return text if f'herald_messages_produced_total{{producer="{settings.events_topic}"}}' in text else None

        text = wait_until(relayed, "this test's events relayed", timeout=30, ignoring=(httpx.HTTPError,))
    assert 'herald_events_applied_total{consumer="read-models"}' in text
    for loop in ("relay", "handler", "dispatcher", "publisher", "settler", "read-models", "inbox-relay"):
        assert f'herald_loop_heartbeat_timestamp_seconds{{loop="{loop}"}}' in text, loop
