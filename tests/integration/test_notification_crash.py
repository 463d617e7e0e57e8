"""The sender dies between the send and the record: the transaction that claimed the delivery
never commits, so the delivery is still due; the next sender sends it again under the same
webhook-id (the receiver acts once) and records it. Nothing is lost; at most one duplicate."""

from __future__ import annotations

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from herald.crypto import TokenCipher
from herald.messaging import inbox
from herald.net.guarded import guarded_client
from herald.storage import db
from processors.notifications import deliveries, preferences, webhooks
from tests.fakes.webhook_server import FakeReceiver
from tests.support import query_all

pytestmark = pytest.mark.integration

LOOPBACK = ("127.0.0.1/32",)


class Killed(BaseException):
    """The process dying: nothing after it runs, nothing catches it."""


def test_a_sender_killed_after_sending_loses_nothing_and_sends_once_more(database_url):
    db.apply_ddl(database_url, webhooks.DDL, deliveries.DDL, preferences.DDL, inbox.DDL)
    cipher = TokenCipher(b"k" * 32)
    pool = db.connection_pool(database_url, max_size=2)
    with FakeReceiver() as receiver, pool:
        with pool.connection() as conn:
            _, secret = webhooks.create(conn, cipher, endpoint_id="whep_1", workspace_id="ws", url=receiver.url(),
                                        description=None)
            conn.execute("INSERT INTO notification_deliveries (delivery_id, workspace_id, channel, endpoint_id,"
                         " event_id, cause, body, next_attempt_at, created_at, updated_at) VALUES ('msg_1', 'ws',"
                         " 'webhook', 'whep_1', 'evt-1', 'low_credits',"
                         " '{\"type\":\"notice.low_credits\",\"timestamp\":\"2026-01-01T00:00:00Z\",\"data\":{}}',"
                         " now(), now(), now())")
        receiver.verifier = Webhook(secret)

        def die_once_answered(response: httpx.Response) -> None:
            raise Killed()

        dying = guarded_client(allowed_networks=LOOPBACK, timeout_s=5)
        dying.event_hooks["response"] = [die_once_answered]
        with pytest.raises(Killed):
            deliveries.deliver_due(pool, dying, cipher, deliveries.RetryPolicy(), limit=10, allowed_networks=LOOPBACK)
        dying.close()
        assert [d["id"] for d in receiver.deliveries] == ["msg_1"], "the receiver got it before the crash"
        assert query_all(pool, "SELECT status, attempts FROM notification_deliveries") == [("queued", 0)]
        assert query_all(pool, "SELECT 1 FROM command_inbox") == [], "nothing recorded by the dead sender"

        with guarded_client(allowed_networks=LOOPBACK, timeout_s=5) as http:
            assert deliveries.deliver_due(pool, http, cipher, deliveries.RetryPolicy(), limit=10,
                                          allowed_networks=LOOPBACK) == 1
            assert deliveries.deliver_due(pool, http, cipher, deliveries.RetryPolicy(), limit=10,
                                          allowed_networks=LOOPBACK) == 0
        assert query_all(pool, "SELECT status, attempts FROM notification_deliveries") == [("sent", 1)]
        # Recorded once, as the first attempt, by the command kept in the same transaction.
        assert query_all(pool, "SELECT envelope->>'type', envelope->'payload'->>'outcome',"
                               " envelope->'payload'->>'attempt' FROM command_inbox") == [
            ("record_notification_delivery.v1", "sent", "1")]
        assert [d["id"] for d in receiver.deliveries] == ["msg_1", "msg_1"] and len(receiver.events) == 1
        assert receiver.violations == []


def test_a_secret_no_key_opens_gives_the_delivery_up_instead_of_blocking_the_queue(database_url):
    db.apply_ddl(database_url, webhooks.DDL, deliveries.DDL, preferences.DDL, inbox.DDL)
    pool = db.connection_pool(database_url, max_size=2)
    with pool:
        with pool.connection() as conn:
            webhooks.create(conn, TokenCipher(b"o" * 32), endpoint_id="whep_1", workspace_id="ws",
                            url="https://hooks.example.com/a", description=None)
            conn.execute("INSERT INTO notification_deliveries (delivery_id, workspace_id, channel, endpoint_id,"
                         " event_id, cause, body, next_attempt_at, created_at, updated_at) VALUES ('msg_1', 'ws',"
                         " 'webhook', 'whep_1', 'evt-1', 'low_credits', '{}', now(), now(), now())")
        with guarded_client() as http:
            assert deliveries.deliver_due(pool, http, TokenCipher(b"n" * 32), deliveries.RetryPolicy(), limit=5) == 1
        [(status, error)] = query_all(pool, "SELECT status, last_error FROM notification_deliveries")
        assert status == "gave_up" and "cannot be unsealed" in error
