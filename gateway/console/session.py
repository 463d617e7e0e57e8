"""The console's session: one cookie, sealed with AES-256-GCM, holding the key the admin logged in
with, a CSRF token and when it was issued.

Sealed, not only signed: the cookie carries the key itself (so every request authenticates it
again, and a revoked stored key ends its sessions at once), and a signed cookie would show it to
anyone who reads the cookie jar. The sealing key is derived (HKDF-SHA256) from the admin key, so
every gateway of a deployment opens the others' sessions and changing the admin key ends every
session. Before login the cookie holds only a CSRF token, for the login form.

The cookie is HttpOnly, SameSite=Strict, scoped to ``/console``, Secure when the request came
over https, and has no Max-Age (it ends with the browser); a session older than ``MAX_AGE`` is
refused whatever the browser keeps.
"""

from __future__ import annotations

import base64
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass, replace

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from starlette.requests import Request
from starlette.responses import Response

COOKIE = "herald_console"
PATH = "/console"
CSRF_FIELD = "csrf_token"
MAX_AGE_S = 12 * 3600
_AAD = b"herald.console.session.v1"
_NONCE = 12


@dataclass(frozen=True)
class Session:
    csrf: str
    issued_at: float
    key: str | None = None  # the API key logged in with; None before login
    notice: str | None = None  # one message for the next page (after a POST and its redirect)

    @classmethod
    def anonymous(cls) -> Session:
        return cls(csrf=secrets.token_urlsafe(32), issued_at=time.time())

    def logged_in(self, key: str) -> Session:
        """A new session (new CSRF token) for ``key``: nothing of the anonymous one carries over."""
        return Session(csrf=secrets.token_urlsafe(32), issued_at=time.time(), key=key)

    def with_notice(self, notice: str | None) -> Session:
        return replace(self, notice=notice)

    def csrf_matches(self, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(presented.encode(), self.csrf.encode())


class Sealer:
    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("the console needs the admin key to seal its sessions")
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_AAD).derive(secret.encode())
        self._aead = AESGCM(key)

    def seal(self, session: Session) -> str:
        plain = json.dumps({"c": session.csrf, "t": session.issued_at, "k": session.key, "n": session.notice})
        nonce = os.urandom(_NONCE)
        return base64.urlsafe_b64encode(nonce + self._aead.encrypt(nonce, plain.encode(), _AAD)).decode()

    def open(self, sealed: str | None) -> Session | None:
        """The session in a cookie, or None when there is none, it was tampered with, sealed under
        another key or is older than MAX_AGE_S."""
        if not sealed:
            return None
        try:
            raw = base64.urlsafe_b64decode(sealed.encode())
            fields = json.loads(self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], _AAD))
            session = Session(csrf=fields["c"], issued_at=float(fields["t"]), key=fields["k"], notice=fields["n"])
        except (InvalidTag, ValueError, KeyError, TypeError):
            return None
        if not 0 <= time.time() - session.issued_at <= MAX_AGE_S:
            return None
        return session

    def read(self, request: Request) -> Session | None:
        return self.open(request.cookies.get(COOKIE))

    def write(self, response: Response, session: Session, request: Request) -> None:
        response.set_cookie(COOKIE, self.seal(session), path=PATH, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")

    @staticmethod
    def clear(response: Response, request: Request) -> None:
        response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="strict",
                               secure=request.url.scheme == "https")
