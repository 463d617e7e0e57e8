"""Notices delivered to webhook endpoints by the processors role, on the real PostgreSQL and broker:
a tier-limit rejection in the gateway becomes an event, the notifications consumer queues one
delivery per endpoint, the sender posts it signed to a real receiver (verified with the reference
``standardwebhooks`` library) and retries 500s and timeouts; 410 and persistent failure disable the
endpoint; a redelivered event queues nothing twice; preferences turn a cause off."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from standardwebhooks.webhooks import Webhook

from herald.messaging.relay import to_cloud_event
from processors.notifications import deliveries
from schemas import events as ev
from tests.fakes.webhook_server import FakeReceiver
from tests.support import Api, query_all, running, wait_until

pytestmark = pytest.mark.integration

FAST = dict(notify_interval_s=0.1, webhook_retry_base_s=0.2, webhook_retry_cap_s=0.4, webhook_timeout_s=1.0,
            webhook_disable_after=3)


@pytest.fixture
def fast_herald(heralds):
    return heralds.start(**FAST)


@pytest.fixture
def http(fast_herald):
    with TestClient(fast_herald.gateway()) as client:
        yield Api(client, admin_key=fast_herald.admin_api_key)


@pytest.fixture
def receiver():
    with FakeReceiver() as server:
        yield server


def _all_roles(herald):
    """The deliveries are recorded as events: the relay and the handler decide them, the projections
    role shows them in the delivery log."""
    return [loop for role in ("relay", "handler", "processors", "projections") for loop in herald.loops(role)]


def _hook(api, ws, key, receiver):
    made = api.http.post(f"/v1/workspaces/{ws}/webhooks", json={"url": receiver.url()}, headers=key)
    assert made.status_code == 201, made.text
    receiver.verifier = Webhook(made.json()["secret"])
    return made.json()["endpoint_id"]


def _hit_the_account_limit(api, ws, key, handle):
    refused = api.http.post(f"/v1/workspaces/{ws}/social-accounts", json={"platform": "sandbox", "handle": handle},
                            headers=key)
    assert refused.status_code == 409, refused.text


def _log(api, ws, key, **params):
    return api.http.get(f"/v1/workspaces/{ws}/notifications/deliveries", params=params, headers=key).json()


def _notice_events(herald):
    stored = herald.app.recorder.select_notifications(start=1, limit=10_000)
    return [e for e in (to_cloud_event(herald.app, n) for n in stored) if deliveries.notice_of(e)]


def _delivery_events(herald, delivery_id):
    stored = herald.app.recorder.select_notifications(start=1, limit=10_000)
    return [e for e in (to_cloud_event(herald.app, n) for n in stored)
            if e.type.startswith("herald.notification_delivery.") and e.data.get("delivery_id") == delivery_id]


def test_a_notice_is_signed_retried_and_delivered_once(fast_herald, http, receiver):
    ws, key = http.open_workspace("free-ws")
    endpoint = _hook(http, ws, key, receiver)
    http.connect(ws, key, "first")
    receiver.fail_next("deliver", 500)
    receiver.fail_next("deliver", delay_s=2.0)  # answered after the sender's 1 s timeout: received, then retried
    _hit_the_account_limit(http, ws, key, "second")
    with running(_all_roles(fast_herald)) as loops:
        [sent] = wait_until(lambda: [d for d in _log(http, ws, key) if d["status"] == "sent"], "the delivery sent",
                            timeout=60)
        loops.assert_running()
    assert sent["endpoint_id"] == endpoint and sent["cause"] == "tier_limit_reached" and sent["attempts"] == 3
    assert receiver.violations == []
    # The timed-out attempt reached the receiver: it came again under the same webhook-id, acted on once.
    assert [d["id"] for d in receiver.deliveries] == [sent["delivery_id"]] * 2 and len(receiver.events) == 1
    envelope = receiver.deliveries[0]["envelope"]
    assert envelope["type"] == "notice.tier_limit_reached"
    assert envelope["data"]["workspace_id"] == ws and envelope["data"]["detail"]["limit"]["limit"] == "accounts_per_platform"
    assert _log(http, ws, key, event_id=envelope["data"]["event_id"]) == [sent]
    # Each step of the delivery is an event in the store: queued, two failed attempts, sent.
    lifecycle = [(e.type.split(".")[2], e.data.get("attempt"), e.data.get("status_code"), e.data.get("error"))
                 for e in _delivery_events(fast_herald, sent["delivery_id"])]
    assert lifecycle == [("queued", None, None, None), ("failed", 1, 500, "HTTP 500"),
                         ("failed", 2, None, "timeout: ReadTimeout"), ("sent", 3, 200, None)]
    assert {(e.data["channel"], e.data["target_id"]) for e in _delivery_events(fast_herald, sent["delivery_id"])} \
        == {("webhook", endpoint)}

    # The same event again (the broker redelivers it): nothing more is queued or sent.
    [event] = _notice_events(fast_herald)
    with fast_herald.pool.connection() as conn:
        assert deliveries.enqueue(conn, event) == []
    assert query_all(fast_herald, "SELECT status FROM notification_deliveries") == [("sent",)]


def test_410_disables_the_endpoint_at_once_and_the_other_endpoints_are_told(fast_herald, http, receiver):
    ws, key = http.open_workspace("free-ws")
    endpoint = _hook(http, ws, key, receiver)
    with FakeReceiver() as other_receiver:
        other = _hook(http, ws, key, other_receiver)
        _disabled_at_once(fast_herald, http, receiver, ws, key, endpoint)
        told = [d["envelope"] for d in other_receiver.deliveries]
        assert other_receiver.violations == []
    by_type = {e["type"]: e for e in told}
    assert len(told) == 2 and set(by_type) == {"notice.tier_limit_reached", "notice.webhook_endpoint_disabled"}
    disabled = by_type["notice.webhook_endpoint_disabled"]["data"]["detail"]
    assert disabled["endpoint_id"] == endpoint and "410" in disabled["reason"]
    assert {(d["endpoint_id"], d["cause"], d["status"]) for d in _log(http, ws, key)} == {
        (endpoint, "tier_limit_reached", "gave_up"), (other, "tier_limit_reached", "sent"),
        (other, "webhook_endpoint_disabled", "sent")}


def _disabled_at_once(fast_herald, http, receiver, ws, key, endpoint):
    http.connect(ws, key, "first")
    receiver.fail_next("deliver", 410)
    _hit_the_account_limit(http, ws, key, "second")
    with running(_all_roles(fast_herald)):
        [gave_up] = wait_until(lambda: [d for d in _log(http, ws, key) if d["status"] == "gave_up"],
                               "the delivery given up", timeout=60)
        wait_until(lambda: len([d for d in _log(http, ws, key) if d["status"] == "sent"]) == 2,
                   "the other endpoint told", timeout=60)
    assert gave_up["attempts"] == 1 and gave_up["last_status_code"] == 410
    listed = {e["endpoint_id"]: e for e in http.http.get(f"/v1/workspaces/{ws}/webhooks", headers=key).json()}
    assert listed[endpoint]["status"] == "disabled" and "410" in listed[endpoint]["disabled_reason"]
    assert receiver.deliveries == []


def test_persistent_failure_disables_the_endpoint_and_later_notices_are_not_queued(fast_herald, http, receiver):
    ws, key = http.open_workspace("free-ws")
    _hook(http, ws, key, receiver)
    http.connect(ws, key, "first")
    receiver.fail_next("deliver", 503, n=10)
    _hit_the_account_limit(http, ws, key, "second")
    with running(_all_roles(fast_herald)):
        [gave_up] = wait_until(lambda: [d for d in _log(http, ws, key) if d["status"] == "gave_up"],
                               "the delivery given up", timeout=60)
        assert gave_up["attempts"] == FAST["webhook_disable_after"] and gave_up["last_error"] == "HTTP 503"
        [listed] = http.http.get(f"/v1/workspaces/{ws}/webhooks", headers=key).json()
        assert listed["status"] == "disabled" and "3 consecutive failures" in listed["disabled_reason"]
    assert receiver.steps().count("deliver") == FAST["webhook_disable_after"]
    # The disabling is a notice: an event in the store, shown in the inbox.
    disabled = [e for e in _notice_events(fast_herald) if e.type == ev.WebhookEndpointDisabled.type]
    assert [e.data["endpoint_id"] for e in disabled] == [listed["endpoint_id"]]
    inbox = wait_until(lambda: [n for n in http.http.get(f"/v1/workspaces/{ws}/notifications", headers=key)
                                .json()["notices"] if n["cause"] == "webhook_endpoint_disabled"], "the inbox notice")
    assert inbox[0]["detail"]["endpoint_id"] == listed["endpoint_id"] and "3 consecutive failures" in \
        inbox[0]["detail"]["reason"] and inbox[0]["read_at"] is None
    # A disabled endpoint gets no new deliveries.
    [event] = [e for e in _notice_events(fast_herald) if e.type != ev.WebhookEndpointDisabled.type]
    with fast_herald.pool.connection() as conn:
        conn.execute("DELETE FROM notification_deliveries")
        deliveries.enqueue(conn, event)
    assert query_all(fast_herald, "SELECT 1 FROM notification_deliveries") == []


def test_a_cause_turned_off_queues_no_webhook_delivery(fast_herald, http, receiver):
    ws, key = http.open_workspace("free-ws")
    _hook(http, ws, key, receiver)
    http.connect(ws, key, "first")
    turned = http.http.put(f"/v1/workspaces/{ws}/notifications/preferences",
                           json={"cause": "tier_limit_reached", "channel": "webhook", "enabled": False}, headers=key)
    assert turned.status_code == 200, turned.text
    assert {"cause": "tier_limit_reached", "channel": "webhook", "enabled": False} in turned.json()
    assert {"cause": "low_credits", "channel": "webhook", "enabled": True} in turned.json()
    _hit_the_account_limit(http, ws, key, "second")
    [event] = _notice_events(fast_herald)
    with fast_herald.pool.connection() as conn:
        deliveries.enqueue(conn, event)
        assert conn.execute("SELECT count(*) FROM notification_deliveries").fetchone()[0] == 0
        http.http.put(f"/v1/workspaces/{ws}/notifications/preferences",
                      json={"cause": "tier_limit_reached", "channel": "webhook", "enabled": True}, headers=key)
        deliveries.enqueue(conn, event)
        assert conn.execute("SELECT count(*) FROM notification_deliveries").fetchone()[0] == 1
