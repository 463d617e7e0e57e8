"""Notices through the running processors role (the loops herald/runtime/wiring.py wires, on the
real PostgreSQL and broker) to a real SMTP server (aiosmtpd, in the test process) and a real
Standard Webhooks receiver: an email with both bodies and the unsubscribe link; quiet
de-duplication (one low-credits notice per credit period whatever raised it; one digest when many
posts fail within the window). Every delivery is recorded as events and shown in the delivery log.

aiosmtpd: https://aiosmtpd.aio-libs.org/en/latest/controller.html"""

from __future__ import annotations

import email as email_lib
from datetime import UTC, datetime, timedelta
from email import policy
from urllib.parse import urlparse

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from fastapi.testclient import TestClient
from pydantic import SecretStr
from standardwebhooks.webhooks import Webhook

from herald.messaging.relay import to_cloud_event
from processors.notifications import deliveries
from schemas import commands as cmd
from schemas import events as ev
from schemas.events import CloudEvent
from tests.fakes.webhook_server import FakeReceiver
from tests.integration.test_notification_email import Inbox, _free_port
from tests.support import Api, decide, decide_all, running, wait_until

pytestmark = pytest.mark.integration

ROLES = ("relay", "handler", "processors", "projections")


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port(), auth_require_tls=False,
                            auth_required=True,
                            authenticator=lambda server, session, envelope, mechanism, auth: AuthResult(
                                success=(auth.login, auth.password) == (b"herald", b"pw")))
    controller.start()
    yield inbox, controller.port
    controller.stop()


@pytest.fixture
def herald(heralds, smtp):
    _, port = smtp
    return heralds.start(notify_interval_s=0.1, smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False,
                         smtp_username="herald", smtp_password=SecretStr("pw"), smtp_from="notices@herald.example",
                         public_base_url="https://herald.example", notify_digest_window_s=2.0,
                         webhook_retry_base_s=0.2, webhook_retry_cap_s=0.4)


@pytest.fixture
def api(herald):
    with TestClient(herald.gateway()) as client:
        yield Api(client, admin_key=herald.admin_api_key)


def _roles(herald):
    return [loop for role in ROLES for loop in herald.loops(role)]


def _mails(inbox) -> list[email_lib.message.EmailMessage]:
    return [email_lib.message_from_bytes(raw, policy=policy.default) for _, _, raw in inbox.messages]


def _log(api, ws, key, **params):
    return api.http.get(f"/v1/workspaces/{ws}/notifications/deliveries", params=params, headers=key).json()


def _stored(herald, *types: type[ev.EventData]) -> list[CloudEvent]:
    wanted = {t.type for t in types}
    return [e for e in (to_cloud_event(herald.app, n) for n in herald.app.recorder.select_notifications(
        start=1, limit=100_000)) if e.type in wanted]


def test_a_notice_event_becomes_an_email_sent_by_the_running_processors_role(herald, api, smtp):
    inbox, _ = smtp
    ws, key = api.open_workspace("free-ws")
    added = api.http.post(f"/v1/workspaces/{ws}/notifications/email-recipients", json={"address": "ops@a.example"},
                          headers=key)
    assert added.status_code == 201, added.text
    api.connect(ws, key, "first")
    refused = api.http.post(f"/v1/workspaces/{ws}/social-accounts", json={"platform": "sandbox", "handle": "second"},
                            headers=key)
    assert refused.status_code == 409, refused.text  # the tier's account limit: a tier_limit_reached notice event
    with running(_roles(herald)) as loops:
        [sent] = wait_until(lambda: [d for d in _log(api, ws, key) if d["status"] == "sent"], "the email sent",
                            timeout=60)
        loops.assert_running()
    [mail] = _mails(inbox)
    assert (inbox.messages[0][0], inbox.messages[0][1]) == ("notices@herald.example", ["ops@a.example"])
    assert mail["Subject"] == "[Herald] Tier limit reached: accounts_per_platform"
    assert mail["Message-ID"] == f"<{sent['delivery_id']}@herald>"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = mail["List-Unsubscribe"].strip("<>")
    assert unsubscribe.startswith("https://herald.example/v1/unsubscribe?token=")
    text, html = mail.get_body(("plain",)).get_content(), mail.get_body(("html",)).get_content()
    assert "Tier limit reached: accounts_per_platform" in text and unsubscribe in text
    assert "<h1>Tier limit reached: accounts_per_platform</h1>" in html and unsubscribe.replace("&", "&amp;") in html
    assert (sent["channel"], sent["endpoint_id"], sent["cause"], sent["attempts"]) == (
        "email", added.json()["recipient_id"], "tier_limit_reached", 1)
    # The delivery's steps are events in the store.
    assert [(e.type, e.data["delivery_id"]) for e in _stored(herald, ev.NotificationDeliveryQueued,
                                                               ev.NotificationDeliverySent)] == [
        (ev.NotificationDeliveryQueued.type, sent["delivery_id"]), (ev.NotificationDeliverySent.type, sent["delivery_id"])]
    # The link turns the type off for email.
    link = urlparse(unsubscribe)
    assert api.http.post(f"{link.path}?{link.query}").json()["enabled"] is False
    prefs = api.http.get(f"/v1/workspaces/{ws}/notifications/preferences", headers=key).json()
    assert {"cause": "tier_limit_reached", "channel": "email", "enabled": False} in prefs


def _low(ws: str, event_id: str, period_start: datetime, available: int) -> CloudEvent:
    return CloudEvent(id=event_id, source="/herald/wallet", type=ev.CreditsLow.type, subject=ws,
                      time=datetime.now(UTC), data={"available": available, "threshold": 2,
                                                    "period_start": period_start.isoformat()},
                      workspaceid=ws, aggregateid=ws, aggregatetype="wallet", aggregateversion=1, position=1,
                      causationid="c", correlationid="c")


def test_low_credits_is_delivered_once_per_period_whatever_event_raised_it(herald):
    from processors.notifications import email, webhooks

    ws = "ws-low"
    with herald.pool.connection() as conn:
        webhooks.create(conn, herald.cipher, endpoint_id="whep_1", workspace_id=ws, url="https://hooks.example.com/a",
                        description=None)
        email.add(conn, ws, "rcpt_1", "ops@a.example")
        period, next_period = datetime(2030, 1, 1, tzinfo=UTC), datetime(2030, 2, 1, tzinfo=UTC)
        first = deliveries.enqueue(conn, _low(ws, "evt-low-1", period, 2))
        # Another event of the same period (a second path saying it, a re-raised notice): nothing more.
        assert deliveries.enqueue(conn, _low(ws, "evt-low-2", period, 1)) == []
        assert deliveries.enqueue(conn, _low(ws, "evt-low-1", period, 2)) == []  # the same event redelivered
        renewed = deliveries.enqueue(conn, _low(ws, "evt-low-3", next_period, 2))
        rows = conn.execute("SELECT channel, event_id FROM notification_deliveries ORDER BY created_at, channel").fetchall()
    assert [(c.payload["channel"], c.payload["notice_event_id"]) for c in first] == [("webhook", "evt-low-1"),
                                                                                    ("email", "evt-low-1")]
    assert [c.payload["notice_event_id"] for c in renewed] == ["evt-low-3", "evt-low-3"]
    assert sorted(rows) == sorted([("webhook", "evt-low-1"), ("email", "evt-low-1"), ("webhook", "evt-low-3"),
                                   ("email", "evt-low-3")])


def test_credits_running_low_in_a_real_wallet_notify_once_on_each_channel(herald, smtp):
    inbox, _ = smtp
    ws = "ws-wallet"
    decide_all(herald.app, ws, [
        cmd.OpenWorkspace(name=ws, tier="free", start_with_monthly_credits=True),
        cmd.SetLimitOverrides(limit_overrides={"queue_size": 20, "daily_posts_per_platform": 20}),
        cmd.ConnectSocialAccount(social_account_id=f"{ws}-a", platform="sandbox", handle="a")])
    with herald.pool.connection() as conn:
        from processors.notifications import email, webhooks

        email.add(conn, ws, "rcpt_1", "ops@a.example")
    with FakeReceiver() as receiver:
        with herald.pool.connection() as conn:
            _, secret = webhooks.create(conn, herald.cipher, endpoint_id="whep_1", workspace_id=ws,
                                        url=receiver.url(), description=None)
        receiver.verifier = Webhook(secret)
        due = datetime.now(UTC) + timedelta(hours=2)
        for n in range(10):  # 10 monthly credits on free: low (≤ 2 available) from the 8th post on, said once
            decide(herald.app, ws, f"{ws}-s{n}", cmd.SchedulePost(post_id=f"{ws}-p{n}", text=f"post {n}",
                                                                 destinations=[f"{ws}-a"], publish_at=due))
        assert len(_stored(herald, ev.CreditsLow)) == 1
        with running(_roles(herald), must_stop=True) as loops:
            wait_until(lambda: len(inbox.messages) == 1 and len(receiver.deliveries) == 1, "one email, one webhook",
                       timeout=60)
            wait_until(lambda: len(_stored(herald, ev.NotificationDeliverySent)) == 2, "both recorded", timeout=60)
            loops.assert_running()
        assert receiver.deliveries[0]["envelope"]["type"] == "notice.low_credits"
        assert receiver.violations == []
    assert _mails(inbox)[0]["Subject"] == "[Herald] Only 2 credit(s) left"


def _fail_posts(herald, ws: str, n: int) -> list[str]:
    """A post to n accounts whose every destination fails for good: n DestinationFailed events."""
    accounts = [f"{ws}-{i}" for i in range(n)]
    decide_all(herald.app, ws, [
        cmd.OpenWorkspace(name=ws, tier="business"),
        *[cmd.ConnectSocialAccount(social_account_id=a, platform="sandbox", handle=a) for a in accounts],
        cmd.GrantCredits(amount=5000),  # far above the low-credit threshold: no low_credits notice
        cmd.SchedulePost(post_id=f"{ws}-p", text="hello", destinations=accounts,
                         publish_at=datetime.now(UTC) + timedelta(hours=2))])
    for a in accounts:
        decide(herald.app, ws, f"start-{a}", cmd.StartPublishAttempt(post_id=f"{ws}-p", destination_id=a, attempt=1))
        decide(herald.app, ws, f"fail-{a}", cmd.RecordPublishOutcome(post_id=f"{ws}-p", destination_id=a, attempt=1,
                                                                     outcome="failed", detail="refused"))
    return [e.id for e in _stored(herald, ev.DestinationFailed)]


def test_many_posts_failing_within_the_window_make_one_digest_per_target(herald, smtp):
    inbox, _ = smtp
    ws = "ws-digest"
    with herald.pool.connection() as conn:
        from processors.notifications import email

        email.add(conn, ws, "rcpt_1", "ops@a.example")
    with FakeReceiver() as receiver:
        with herald.pool.connection() as conn:
            from processors.notifications import webhooks

            _, secret = webhooks.create(conn, herald.cipher, endpoint_id="whep_1", workspace_id=ws,
                                        url=receiver.url(), description=None)
        receiver.verifier = Webhook(secret)
        failed = _fail_posts(herald, ws, 4)
        assert len(failed) == 4
        with running(_roles(herald), must_stop=True) as loops:
            wait_until(lambda: len(inbox.messages) == 1 and len(receiver.deliveries) == 1, "one digest each",
                       timeout=60)
            wait_until(lambda: len(_stored(herald, ev.NotificationDeliverySent)) == 2, "both recorded", timeout=60)
            loops.assert_running()
        [digest] = [d["envelope"] for d in receiver.deliveries]
        assert receiver.violations == []
    assert digest["type"] == "notice.post_failed" and digest["data"]["count"] == 4
    assert sorted(digest["data"]["event_ids"]) == sorted(failed)
    assert digest["data"]["title"] == "4 notices: A post failed to publish"
    assert _mails(inbox)[0]["Subject"] == "[Herald] 4 notices: A post failed to publish"
    # Queued once per target, then the 3 later failures folded in (4 queued events per target), sent once.
    queued = _stored(herald, ev.NotificationDeliveryQueued)
    assert sorted(e.data["digest_count"] for e in queued) == [1, 1, 2, 2, 3, 3, 4, 4]
    sent = _stored(herald, ev.NotificationDeliverySent)
    assert {e.data["channel"] for e in sent} == {"webhook", "email"}
    assert all(sorted(e.data["notice_event_ids"]) == sorted(failed) for e in sent)
