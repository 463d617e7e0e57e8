"""Notice emails against a real SMTP server in the test process (aiosmtpd): login, headers, the text
and HTML bodies from the templates, the unsubscribe link (which turns the type off for email), and
a server that is down (retried later).

aiosmtpd: https://aiosmtpd.aio-libs.org/en/latest/controller.html (Controller, handle_DATA, AUTH)."""

from __future__ import annotations

import email as email_lib
import json
import socket
from email import policy
from urllib.parse import urlparse

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from herald.net.guarded import guarded_client
from processors.notifications import deliveries, email
from tests.integration.test_gateway import gw  # noqa: F401 - the fixture
from tests.support import query_all

pytestmark = pytest.mark.integration


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server():
    inbox = Inbox()
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.login == b"herald" and auth_data.password == b"pw")

    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port(), authenticator=authenticator,
                            auth_require_tls=False, auth_required=True)
    controller.start()
    yield inbox, logins, controller.port
    controller.stop()


def _queue(gw, recipient_id: str) -> None:
    body = json.dumps({"type": "notice.low_credits", "timestamp": "2026-01-01T00:00:00Z",
                       "data": {"workspace_id": "a", "cause": "low_credits", "title": "Only 2 credit(s) left",
                                "event_id": "evt-1", "event_type": "x", "detail": {"available": 2}}})
    with gw.pool.connection() as conn:
        conn.execute("INSERT INTO notification_deliveries (delivery_id, workspace_id, channel, endpoint_id, event_id,"
                     " cause, body, next_attempt_at, created_at, updated_at) VALUES ('msg_mail1', 'a', 'email', %s,"
                     " 'evt-1', 'low_credits', %s, now(), now(), now())", (recipient_id, body))


def test_a_notice_email_has_both_bodies_and_an_unsubscribe_link_that_works(gw, smtp_server):
    inbox, logins, port = smtp_server
    ws, key = gw.api.open_workspace("a", tier="pro")
    added = gw.http.post(f"/v1/workspaces/{ws}/notifications/email-recipients", json={"address": "ops@a.example"},
                         headers=key)
    assert added.status_code == 201, added.text
    _queue(gw, added.json()["recipient_id"])
    smtp = email.SmtpSettings(host="127.0.0.1", port=port, starttls=False, username="herald", password="pw",
                              sender="notices@herald.example", public_base_url="https://herald.example")
    cipher = gw.deps.credentials.cipher
    with guarded_client() as http:
        assert deliveries.deliver_due(gw.pool, http, cipher, deliveries.RetryPolicy(), limit=5, smtp=smtp) == 1
    assert logins == [(b"herald", b"pw")]
    [(mail_from, to, raw)] = inbox.messages
    assert (mail_from, to) == ("notices@herald.example", ["ops@a.example"])
    mail = email_lib.message_from_bytes(raw, policy=policy.default)
    assert mail["Subject"] == "[Herald] Only 2 credit(s) left" and mail["Message-ID"] == "<msg_mail1@herald>"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    unsubscribe = mail["List-Unsubscribe"].strip("<>")
    assert "Only 2 credit(s) left" in text and "available: 2" in text and unsubscribe in text
    assert "<h1>Only 2 credit(s) left</h1>" in html and unsubscribe.replace("&", "&amp;") in html
    assert unsubscribe.startswith("https://herald.example/v1/unsubscribe?token=")
    assert query_all(gw.pool, "SELECT status, attempts FROM notification_deliveries") == [("sent", 1)]

    link = urlparse(unsubscribe)
    done = gw.http.get(f"{link.path}?{link.query}")
    assert done.status_code == 200, done.text
    assert done.json() == {"workspace_id": "a", "cause": "low_credits", "channel": "email", "enabled": False}
    prefs = gw.http.get(f"/v1/workspaces/{ws}/notifications/preferences", headers=key).json()
    assert {"cause": "low_credits", "channel": "email", "enabled": False} in prefs
    assert {"cause": "low_credits", "channel": "webhook", "enabled": True} in prefs
    forged = gw.http.get("/v1/unsubscribe", params={"token": "abc:" + "A" * 40})
    assert forged.status_code == 422 and forged.json()["reason_code"] == "invalid_unsubscribe_token"


def test_an_smtp_server_that_is_down_is_retried_later(gw):
    ws, key = gw.api.open_workspace("a", tier="pro")
    added = gw.http.post(f"/v1/workspaces/{ws}/notifications/email-recipients", json={"address": "ops@a.example"},
                         headers=key).json()
    _queue(gw, added["recipient_id"])
    smtp = email.SmtpSettings(host="127.0.0.1", port=_free_port(), starttls=False, timeout_s=2)
    with guarded_client() as http:
        assert deliveries.deliver_due(gw.pool, http, gw.deps.credentials.cipher, deliveries.RetryPolicy(), limit=5,
                                      smtp=smtp) == 1
    [(status, attempts, error)] = query_all(gw.pool, "SELECT status, attempts, last_error FROM notification_deliveries")
    assert (status, attempts) == ("failed", 1) and "ConnectionRefusedError" in error


def test_a_notice_event_queues_one_email_per_recipient_unless_the_type_is_off(gw):
    from datetime import UTC, datetime

    from schemas import events as ev
    from schemas.events import CloudEvent

    ws, key = gw.api.open_workspace("a", tier="pro")
    for address in ("ops@a.example", "cto@a.example"):
        gw.http.post(f"/v1/workspaces/{ws}/notifications/email-recipients", json={"address": address}, headers=key)

    def event(n: int) -> CloudEvent:
        return CloudEvent(id=f"evt-{n}", source="/herald/social_account", type=ev.SocialAccountNeedsReconnect.type,
                          subject="acct-1", time=datetime.now(UTC), data={"social_account_id": "acct-1", "credential_version": "v1",
                                                                         "reason": "token revoked"},
                          workspaceid=ws, aggregateid="acct-1", aggregatetype="social_account", aggregateversion=n,
                          position=n, causationid="c", correlationid="c")

    with gw.pool.connection() as conn:
        deliveries.enqueue(conn, event(1))
        deliveries.enqueue(conn, event(1))  # redelivered
    rows = query_all(gw.pool, "SELECT channel, cause, event_id FROM notification_deliveries")
    assert rows == [("email", "account_needs_reconnect", "evt-1")] * 2
    gw.http.put(f"/v1/workspaces/{ws}/notifications/preferences", headers=key,
                json={"cause": "account_needs_reconnect", "channel": "email", "enabled": False})
    with gw.pool.connection() as conn:
        deliveries.enqueue(conn, event(2))
    assert len(query_all(gw.pool, "SELECT 1 FROM notification_deliveries")) == 2


def test_many_failed_posts_in_a_short_time_make_one_digest_per_recipient(gw):
    from datetime import UTC, datetime

    from schemas import events as ev
    from schemas.events import CloudEvent

    ws, key = gw.api.open_workspace("a", tier="pro")
    gw.http.post(f"/v1/workspaces/{ws}/notifications/email-recipients", json={"address": "ops@a.example"}, headers=key)

    def reconnect(n: int) -> CloudEvent:  # a cause that is not digested
        return CloudEvent(id=f"evt-r{n}", source="/herald/social_account", type=ev.SocialAccountNeedsReconnect.type,
                          subject="acct-1", time=datetime.now(UTC), data={"social_account_id": "acct-1",
                                                                         "credential_version": "v1", "reason": "r"},
                          workspaceid=ws, aggregateid="acct-1", aggregatetype="social_account", aggregateversion=n,
                          position=n, causationid="c", correlationid="c")

    failed_ids = [f"evt-f{n}" for n in range(3)]
    commands = []
    with gw.pool.connection() as conn:
        for n, event_id in enumerate(failed_ids):
            commands += deliveries.enqueue(conn, _failed_event(ws, event_id, n), digest_window_s=60)
        assert deliveries.enqueue(conn, _failed_event(ws, failed_ids[1], 1), digest_window_s=60) == []  # redelivered
        for n in range(2):
            commands += deliveries.enqueue(conn, reconnect(n), digest_window_s=60)
    for command in commands:  # what the handler decides: queued, and the later failures folded into the digest
        gw.app.handle(command)
    rows = query_all(gw.pool, "SELECT cause, event_ids, body FROM notification_deliveries ORDER BY cause")
    assert [(cause, ids) for cause, ids, _ in rows] == [("account_needs_reconnect", ["evt-r0"]),
                                                       ("account_needs_reconnect", ["evt-r1"]),
                                                       ("post_failed", failed_ids)]
    digest = json.loads(rows[2][2])["data"]
    assert digest["count"] == 3 and digest["event_ids"] == failed_ids and digest["title"].startswith("3 notices")
    log = gw.get(f"/v1/workspaces/{ws}/notifications/deliveries", params={"event_id": "evt-f2"}, headers=key).json()
    assert [(d["cause"], d["event_ids"], d["status"]) for d in log] == [("post_failed", failed_ids, "queued")]


def _failed_event(ws: str, event_id: str, n: int):
    from datetime import UTC, datetime

    from schemas import events as ev
    from schemas.events import CloudEvent

    data = {"post_id": "post-1", "destination_id": f"d{n}", "attempt": 1, "hold_id": f"h{n}", "error_kind": "permanent",
            "detail": "refused"}
    return CloudEvent(id=event_id, source="/herald/post", type=ev.DestinationFailed.type, subject="post-1", time=datetime.now(UTC),
                      data=data, workspaceid=ws, aggregateid="post-1", aggregatetype="post", aggregateversion=n + 1,
                      position=n + 1, causationid="c", correlationid="c")


def _self_signed(tmp_path):
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "smtp.crt", tmp_path / "smtp.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def test_starttls_is_used_and_the_server_certificate_verified(gw, tmp_path):
    import ssl

    cert_file, key_file = _self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert_file, key_file)
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port(), tls_context=server_tls,
                            require_starttls=True, authenticator=lambda *a: AuthResult(success=True),
                            auth_required=True)
    controller.start()
    try:
        ws, key = gw.api.open_workspace("a", tier="pro")
        added = gw.http.post(f"/v1/workspaces/{ws}/notifications/email-recipients", json={"address": "ops@a.example"},
                             headers=key).json()
        _queue(gw, added["recipient_id"])
        untrusted = email.SmtpSettings(host="127.0.0.1", port=controller.port, username="u", password="p", timeout_s=5)
        trusted = email.SmtpSettings(host="127.0.0.1", port=controller.port, username="u", password="p", timeout_s=5,
                                     ca_file=str(cert_file))
        cipher = gw.deps.credentials.cipher
        with guarded_client() as http:
            deliveries.deliver_due(gw.pool, http, cipher, deliveries.RetryPolicy(), limit=1, smtp=untrusted)
            [(status, error)] = query_all(gw.pool, "SELECT status, last_error FROM notification_deliveries")
            assert status == "failed" and "CERTIFICATE_VERIFY_FAILED" in error and inbox.messages == []
            with gw.pool.connection() as conn:  # the retry is due now, not after the backoff
                conn.execute("UPDATE notification_deliveries SET next_attempt_at = now()")
            deliveries.deliver_due(gw.pool, http, cipher, deliveries.RetryPolicy(), limit=1, smtp=trusted)
        assert query_all(gw.pool, "SELECT status, attempts FROM notification_deliveries") == [("sent", 2)]
        assert len(inbox.messages) == 1
    finally:
        controller.stop()
