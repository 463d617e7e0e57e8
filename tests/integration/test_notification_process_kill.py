"""The processors role, a real ``herald processors`` process, killed (SIGKILL) between a webhook
send and its record: the receiver has the delivery, the process dies before its transaction
commits. After a restart no notice is lost, the inbox counts each notice once, every delivery is
recorded once (one ``sent`` event, attempt 1), and the receiver gets at most one duplicate, under
the same webhook-id, which it drops (docs/notifications.md "At most one duplicate")."""

from __future__ import annotations

import signal
import threading

import pytest
from fastapi import Request
from fastapi.testclient import TestClient
from standardwebhooks.webhooks import Webhook

from herald.messaging.relay import to_cloud_event
from schemas import events as ev
from tests.fakes.webhook_server import FakeReceiver
from tests.support import Api, role_processes, running, wait_until

pytestmark = pytest.mark.integration

NOTICES = 3


class KillingReceiver(FakeReceiver):
    """Kills the sending process the first time a delivery arrives, before answering it."""

    def __init__(self) -> None:
        super().__init__()
        self.victim = None  # a RoleProcess
        self.killed = threading.Event()

    def seen(self, request: Request, step: str) -> None:
        super().seen(request, step)
        if step == "deliver" and self.victim is not None and not self.killed.is_set():
            self.victim.process.send_signal(signal.SIGKILL)
            self.victim.process.wait(timeout=30)
            self.killed.set()


def test_a_processors_process_killed_between_send_and_record_loses_nothing(heralds, tmp_path):
    herald = heralds.start()
    with TestClient(herald.gateway()) as client, KillingReceiver() as receiver:
        api = Api(client, admin_key=herald.admin_api_key)
        ws, key = api.open_workspace("free-ws")
        made = api.http.post(f"/v1/workspaces/{ws}/webhooks", json={"url": receiver.url()}, headers=key)
        assert made.status_code == 201, made.text
        receiver.verifier = Webhook(made.json()["secret"])
        api.connect(ws, key, "first")
        for n in range(NOTICES):  # each refused by the tier's account limit: a tier_limit_reached notice each
            refused = api.http.post(f"/v1/workspaces/{ws}/social-accounts",
                                    json={"platform": "sandbox", "handle": f"more-{n}"}, headers=key)
            assert refused.status_code == 409, refused.text
        others = [loop for role in ("relay", "handler", "projections") for loop in herald.loops(role)]
        fast = {"HERALD_NOTIFY_INTERVAL_S": "0.1"}
        with running(others):
            with role_processes(["processors"], herald.settings, tmp_path, **fast) as [first]:
                receiver.victim = first
                assert receiver.killed.wait(timeout=120), first.log_tail()
            assert first.returncode == -signal.SIGKILL
            assert [d["id"] for d in receiver.deliveries] == [receiver.deliveries[0]["id"]]
            restarted = tmp_path / "restarted"  # its own log files
            restarted.mkdir()
            with role_processes(["processors"], herald.settings, restarted, **fast) as [second]:
                log = wait_until(lambda: _sent(api, ws, key), "every notice delivered and recorded", timeout=120)
                assert second.process.poll() is None, second.log_tail()
            inbox = wait_until(lambda: [n for n in api.http.get(f"/v1/workspaces/{ws}/notifications",
                                                                headers=key).json()["notices"]
                                        if n["cause"] == "tier_limit_reached" and n["count"] == NOTICES],
                               "the inbox counted each notice")
    assert receiver.violations == []
    # No notice lost: one delivery per notice, each recorded sent once, at its first attempt.
    assert len(log) == NOTICES and all(d["attempts"] == 1 for d in log)
    sent_events = [e for e in _stored(herald) if e.type == ev.NotificationDeliverySent.type]
    assert sorted(e.data["delivery_id"] for e in sent_events) == sorted(d["delivery_id"] for d in log)
    # The receiver: one duplicate at most, the killed attempt's, under the same webhook-id; acted on once each.
    ids = [d["id"] for d in receiver.deliveries]
    assert len(ids) == NOTICES + 1 and ids.count(ids[0]) == 2 and len(set(ids)) == NOTICES
    assert set(receiver.events) == {d["delivery_id"] for d in log}
    # The inbox: one notice of the day counting the three events, each once.
    assert len(inbox) == 1


def _sent(api, ws, key):
    log = api.http.get(f"/v1/workspaces/{ws}/notifications/deliveries", headers=key).json()
    return log if len(log) == NOTICES and all(d["status"] == "sent" for d in log) else None


def _stored(herald):
    return [to_cloud_event(herald.app, n) for n in herald.app.recorder.select_notifications(start=1, limit=100_000)]
