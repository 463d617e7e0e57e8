"""Notices by email over SMTP: text and HTML bodies from Jinja2 templates, an unsubscribe link per
notice type (RFC 2369 ``List-Unsubscribe``, RFC 8058 one-click ``List-Unsubscribe-Post``).

The unsubscribe token is the (workspace, cause) pair sealed with the key ring (AES-GCM: opaque and
tamper-proof, so no other key is needed); following it turns the cause off for the ``email``
channel of that workspace. SMTP: ``smtplib`` (https://docs.python.org/3/library/smtplib.html),
STARTTLS when configured, login when a username is set.
"""

from __future__ import annotations

import json
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from psycopg import Connection
from psycopg.rows import dict_row

from herald.crypto import TokenCipher

DDL = """
CREATE TABLE IF NOT EXISTS email_recipients (
    recipient_id text        PRIMARY KEY,
    workspace_id text        NOT NULL,
    address      text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (workspace_id, address)
);
"""

_TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                         autoescape=select_autoescape(["html.j2"]), undefined=StrictUndefined)


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 587
    starttls: bool = True
    username: str = ""
    password: str = ""
    sender: str = "herald@localhost"
    public_base_url: str = "http://localhost:8000"
    timeout_s: float = 10.0
    ca_file: str = ""  # trust this CA (PEM) for STARTTLS instead of the system CAs: a private mail relay

    def __repr__(self) -> str:  # never the password
        return f"SmtpSettings({self.host!r}, {self.port}, starttls={self.starttls}, username={self.username!r})"


def unsubscribe_token(cipher: TokenCipher, workspace_id: str, cause: str) -> str:
    return cipher.seal(json.dumps([workspace_id, cause]))


def unsubscribed_by(cipher: TokenCipher, token: str) -> tuple[str, str]:
    """(workspace, cause) of a token; ValueError for one Herald did not make."""
    try:
        workspace_id, cause = json.loads(cipher.unseal(token))
    except Exception as error:  # noqa: BLE001 - any malformed or forged token
        raise ValueError("not an unsubscribe token of this Herald") from error
    return str(workspace_id), str(cause)


def render(envelope: dict[str, Any], unsubscribe_url: str) -> tuple[str, str, str]:
    """(subject, text, html) of a notice envelope."""
    data = envelope["data"]
    values = {"title": data["title"], "workspace_id": data["workspace_id"], "cause": data["cause"],
              "detail": data.get("detail") or {}, "unsubscribe_url": unsubscribe_url}
    return (f"[Herald] {data['title']}", _TEMPLATES.get_template("notice.txt.j2").render(values),
            _TEMPLATES.get_template("notice.html.j2").render(values))


def message(smtp: SmtpSettings, cipher: TokenCipher, to: str, msg_id: str, envelope: dict[str, Any]) -> EmailMessage:
    data = envelope["data"]
    url = (f"{smtp.public_base_url.rstrip('/')}/v1/unsubscribe?token="
           f"{quote(unsubscribe_token(cipher, data['workspace_id'], data['cause']), safe='')}")
    subject, text, html = render(envelope, url)
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = smtp.sender, to, subject
    mail["Message-ID"] = f"<{msg_id}@herald>"  # the same on every retry, like webhook-id
    mail["List-Unsubscribe"] = f"<{url}>"
    mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    mail.set_content(text)
    mail.add_alternative(html, subtype="html")
    return mail


def send(smtp: SmtpSettings, mail: EmailMessage) -> str | None:
    """None when the server took it; else the error (retried by the caller)."""
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_s) as client:
            if smtp.starttls:
                client.starttls(context=ssl.create_default_context(cafile=smtp.ca_file or None))
            if smtp.username:
                client.login(smtp.username, smtp.password)
            client.send_message(mail)
    except (OSError, smtplib.SMTPException) as error:
        return f"{type(error).__name__}: {error}"
    return None


def add(conn: Connection, workspace_id: str, recipient_id: str, address: str) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("INSERT INTO email_recipients (recipient_id, workspace_id, address) VALUES (%s, %s, %s)"
                    " ON CONFLICT (workspace_id, address) DO NOTHING", (recipient_id, workspace_id, address))
        return cur.execute("SELECT recipient_id, workspace_id, address, created_at FROM email_recipients"
                           " WHERE workspace_id = %s AND address = %s", (workspace_id, address)).fetchone()


def listed(conn: Connection, workspace_id: str) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("SELECT recipient_id, workspace_id, address, created_at FROM email_recipients"
                           " WHERE workspace_id = %s ORDER BY created_at", (workspace_id,)).fetchall()


def remove(conn: Connection, workspace_id: str, recipient_id: str) -> bool:
    return conn.execute("DELETE FROM email_recipients WHERE workspace_id = %s AND recipient_id = %s",
                        (workspace_id, recipient_id)).rowcount == 1


def address_of(conn: Connection, workspace_id: str, recipient_id: str) -> str | None:
    row = conn.execute("SELECT address FROM email_recipients WHERE workspace_id = %s AND recipient_id = %s",
                       (workspace_id, recipient_id)).fetchone()
    return row[0] if row else None
