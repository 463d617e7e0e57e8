"""A fake Mastodon instance: a real HTTP server (FastAPI on uvicorn, background thread, free
127.0.0.1 port) speaking the documented subset Herald uses, counting what it was asked to post,
with fault injection.

    POST /api/v1/statuses      bearer token, JSON or form body, Idempotency-Key per token
    GET  /api/v1/statuses/:id
    POST /api/v2/media         multipart ``file``
    GET  /api/v1/media/:id
    GET  /media/:name          a stand-in media host, so adapters have something to download
    POST /oauth/token          grant_type=refresh_token (RFC 6749 §6), for token-refresh tests: client
                               id/secret checked, refresh tokens rotated (the old one is refused after use,
                               and a reuse is counted), access tokens expire when issued with a lifetime;
                               grant_type=authorization_code (§4.1.3): client, single-use code, redirect_uri
                               and PKCE verifier (S256, RFC 7636 §4.6) checked
    GET  /oauth/authorize      the user "approves" at once: 302 to redirect_uri?code=…&state=… (a bad
                               client, redirect or challenge method answers 400 with an OAuth error)
    GET  /api/v1/accounts/verify_credentials   the token's account (username)

Connect (tests): ``approve(authorization_url, username=…)`` plays the user at GET /oauth/authorize
(over HTTP) and returns the redirect's query (code, state); ``fail_code_next`` injects a token-endpoint
error for the next code exchanges (``invalid_grant`` by default; a 5xx status stands for an outage);
``code_exchanges`` lists every authorization_code request (no secrets: whether a verifier came and the
answer). Registered redirect URIs: any, unless ``redirect_uris`` is set.

OAuth (tests): ``issue_tokens`` mints an access + refresh token pair the way a code exchange
would; ``expire_tokens_after`` makes access tokens issued from then on expire; ``revoke`` refuses
one at once; ``fail_refresh_next`` injects a token-endpoint error (``invalid_grant`` by default);
``refreshes`` lists every refresh request. Real Mastodon documents no refresh grant and tokens
that do not expire (https://docs.joinmastodon.org/methods/oauth/#token); this stands in for a
platform, or an instance, that issues expiring tokens.

Faults (``fail_next``, ``delay_next``) apply to the next status posts, in order. ``latency_ms``
holds every status post that long (asyncio.sleep, so thousands wait at once), like a platform's
round trip.

Every status post is recorded as it arrives (wall-clock ``received_at``, Idempotency-Key, text,
token) and, once answered, with its HTTP status and the status id it got. Read-only inspection:

    GET /_fake/posts[?since=N]  the records from the N-th on (0-based), in arrival order
    GET /_fake/stats            counters, see ``FakeMastodon.stats``

As a separate process (for benches and chaos runs; SIGTERM or SIGINT stops it):

    python -m tests.fakes.mastodon_server --port 0 --latency-ms 200 --port-file PATH

writes the bound port to PATH once it accepts connections. Without ``--token`` it accepts any
bearer token, so callers may connect as many accounts as they like.

The documented behaviour it imitates: https://docs.joinmastodon.org/methods/statuses/#create
(Idempotency-Key: "Prevent duplicate submissions of the same status. Idempotency keys are stored
for up to 1 hour").
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import itertools
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.policy import default as email_policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import httpx

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

DEFAULT_TOKEN = "fake-mastodon-token"
INVALID_TOKEN = {"error": "The access token is invalid"}
MEDIA_BYTES = b"\x89PNG\r\n\x1a\n fake image bytes"


@dataclass(frozen=True)
class Fault:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = field(default_factory=lambda: {"error": "injected failure"})
    after_create: bool = False  # store the status, then fail: the client cannot know it was posted
    drop_connection: bool = False  # send the response head, then hang up mid-body


class _DroppedResponse(Response):
    """Starts a response promising a body and closes the connection before sending it."""

    async def __call__(self, scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"512")]})


class _QuietDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "without completing response" not in record.getMessage()


logging.getLogger("uvicorn.error").addFilter(_QuietDrops())


class FakeMastodon:
    def __init__(self, valid_tokens: Iterable[str] = (DEFAULT_TOKEN,), media_processing_polls: int = 0, *,
                 latency_ms: float = 0, accept_any_token: bool = False, port: int = 0,
                 oauth_client: tuple[str, str] = ("herald-test-client", "herald-test-secret"),
                 redirect_uris: Iterable[str] | None = None) -> None:
        self.valid_tokens = set(valid_tokens)
        self.oauth_client = oauth_client
        self.redirect_uris = set(redirect_uris) if redirect_uris is not None else None
        self._codes: dict[str, dict[str, Any]] = {}  # authorization code → what it was issued for
        self._code_faults: deque[tuple[int, str]] = deque()
        self._code_exchanges: list[dict[str, Any]] = []
        self._usernames: dict[str, str] = {}  # access token → the account it acts for
        self.token_lifetime_s: float | None = None  # access tokens issued from now on expire after this
        self._expires: dict[str, float] = {}  # access token → epoch seconds it stops working
        self._refresh: dict[str, float | None] = {}  # live refresh token → lifetime of the access tokens it gives
        self._retired_refresh: set[str] = set()
        self._refreshes: list[dict[str, Any]] = []
        self._refresh_faults: deque[tuple[int, str]] = deque()
        self.refresh_token_reuses = 0  # a rotated-away refresh token presented again
        self.accept_any_token = accept_any_token  # any non-empty bearer token is an account of its own
        self.media_processing_polls = media_processing_polls  # GETs an upload answers "processing" to
        self.latency_s = latency_ms / 1000
        self.requests = 0  # POST /api/v1/statuses received, whatever their outcome
        self._statuses: list[dict[str, Any]] = []
        self._received: list[dict[str, Any]] = []  # every status post, in arrival order
        self._accepted_keys: Counter[tuple[str, str]] = Counter()  # 2xx answers per (token, Idempotency-Key)
        self._texts: Counter[tuple[str, str]] = Counter()  # statuses created per (token, text)
        self._answered = 0
        self._double_by_key = 0
        self._double_by_text = 0
        self._media: dict[str, dict[str, Any]] = {}
        self._by_key: dict[tuple[str, str], dict[str, Any]] = {}
        self._faults: deque[Fault] = deque()
        self._delays: deque[float] = deque()
        self._ids = itertools.count(110_000_000_000_000_001)
        self._lock = threading.Lock()
        self._socket = socket.socket()
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", port))
        self.port = self._socket.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        # A backlog and no concurrency limit, so a burst of thousands of posts is held, not refused.
        config = uvicorn.Config(self._build_app(), log_level="warning", http="h11", lifespan="off",
                                timeout_graceful_shutdown=2, backlog=2048, limit_concurrency=None,
                                timeout_keep_alive=30)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]},
                                        name=f"fake-mastodon-{self.port}", daemon=True)

    # lifecycle

    def start(self) -> FakeMastodon:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("fake Mastodon did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._socket.close()

    def __enter__(self) -> FakeMastodon:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # fault injection

    def fail_next(self, n: int = 1, status: int = 500, headers: dict[str, str] | None = None, body: Any = None,
                  *, after_create: bool = False, drop_connection: bool = False) -> None:
        fault = Fault(status, dict(headers or {}), {"error": "injected failure"} if body is None else body,
                      after_create, drop_connection)
        with self._lock:
            self._faults.extend([fault] * n)

    def delay_next(self, seconds: float, n: int = 1) -> None:
        """Hold the next n status posts before handling them (they still succeed, late)."""
        with self._lock:
            self._delays.extend([seconds] * n)

    # OAuth

    def issue_tokens(self, expires_in: float | None = None) -> dict[str, Any]:
        """A fresh access token (expiring after ``expires_in`` s, if given) and its refresh token."""
        with self._lock:
            return self._issue(expires_in)

    def _issue(self, expires_in: float | None) -> dict[str, Any]:
        n = next(self._ids)
        access, refresh = f"access-{n}", f"refresh-{n}"
        self.valid_tokens.add(access)
        if expires_in is not None:
            self._expires[access] = time.time() + expires_in
        self._refresh[refresh] = expires_in
        body: dict[str, Any] = {"access_token": access, "token_type": "Bearer", "scope": "write",
                                "created_at": int(time.time()), "refresh_token": refresh}
        if expires_in is not None:
            body["expires_in"] = expires_in
        return body

    def expire_tokens_after(self, seconds: float | None) -> None:
        """Access tokens issued by a refresh from now on expire after ``seconds`` (None: never)."""
        with self._lock:
            self.token_lifetime_s = seconds

    def revoke(self, access_token: str) -> None:
        with self._lock:
            self.valid_tokens.discard(access_token)

    def fail_refresh_next(self, n: int = 1, error: str = "invalid_grant", status: int = 400) -> None:
        with self._lock:
            self._refresh_faults.extend([(status, error)] * n)

    def approve(self, authorization_url: str, username: str = "herald") -> dict[str, str]:
        """The user approves at the authorization URL: the query of the redirect (code, state), or of
        the error answer's JSON (error, error_description) when the request is refused."""
        url = f"{authorization_url}{'&' if urlsplit(authorization_url).query else '?'}" \
              f"{urlencode({'_fake_username': username})}"
        response = httpx.get(url, follow_redirects=False, timeout=10)
        if response.status_code != 302:
            return {k: str(v) for k, v in response.json().items()}
        return dict(parse_qsl(urlsplit(response.headers["location"]).query))

    def fail_code_next(self, n: int = 1, error: str = "invalid_grant", status: int = 400) -> None:
        with self._lock:
            self._code_faults.extend([(status, error)] * n)

    @property
    def code_exchanges(self) -> list[dict[str, Any]]:
        """Every authorization_code request: with_verifier, http_status, error, access_token issued."""
        with self._lock:
            return [dict(r) for r in self._code_exchanges]

    def _authorize(self, query: dict[str, str]) -> tuple[int, dict[str, Any] | str]:
        """(302, redirect URL) or (400, OAuth error)."""
        if query.get("response_type") != "code":
            return 400, {"error": "unsupported_response_type", "error_description": "response_type=code only"}
        if query.get("client_id") != self.oauth_client[0]:
            return 400, {"error": "invalid_client", "error_description": "unknown client"}
        redirect_uri = query.get("redirect_uri", "")
        if not redirect_uri or (self.redirect_uris is not None and redirect_uri not in self.redirect_uris):
            return 400, {"error": "invalid_redirect_uri", "error_description": "redirect_uri is not registered"}
        challenge, method = query.get("code_challenge"), query.get("code_challenge_method")
        if challenge is not None and method != "S256":  # Mastodon takes S256 only
            return 400, {"error": "invalid_request", "error_description": "code_challenge_method must be S256"}
        code = f"code-{next(self._ids)}"
        self._codes[code] = {"client_id": query["client_id"], "redirect_uri": redirect_uri, "challenge": challenge,
                             "scope": query.get("scope", "read"), "username": query.get("_fake_username", "herald"),
                             "used": False}
        answer = [("code", code)] + ([("state", query["state"])] if "state" in query else [])
        separator = "&" if urlsplit(redirect_uri).query else "?"
        return 302, f"{redirect_uri}{separator}{urlencode(answer)}"

    def _code_grant(self, form: dict[str, list[Any]], client: tuple[str, str]) -> tuple[int, dict[str, Any]]:
        def first(name: str) -> str | None:
            values = form.get(name)
            return str(values[0]) if values else None

        verifier = first("code_verifier")
        record: dict[str, Any] = {"at": time.time(), "with_verifier": verifier is not None, "http_status": None,
                                  "error": None, "access_token": None}
        self._code_exchanges.append(record)
        issued = self._codes.get(first("code") or "")
        invalid = {"error": "invalid_grant", "error_description": "The provided authorization grant is invalid, "
                   "expired, revoked, does not match the redirection URI used in the authorization request, or was "
                   "issued to another client."}
        if client != self.oauth_client:
            status, body = 401, {"error": "invalid_client", "error_description": "Client authentication failed"}
        elif self._code_faults:
            status, error = self._code_faults.popleft()
            body = {"error": error, "error_description": "injected failure"}
        elif issued is None or issued["used"] or issued["client_id"] != client[0]:
            status, body = 400, invalid
        elif first("redirect_uri") != issued["redirect_uri"]:
            status, body = 400, invalid
        elif issued["challenge"] is not None and (verifier is None or _s256(verifier) != issued["challenge"]):
            status, body = 400, invalid
        else:
            issued["used"] = True
            status, body = 200, self._issue(self.token_lifetime_s)
            body["scope"] = issued["scope"]
            self._usernames[body["access_token"]] = issued["username"]
            record["access_token"] = body["access_token"]
        record.update(http_status=status, error=body.get("error"))
        return status, body

    @property
    def refreshes(self) -> list[dict[str, Any]]:
        """Every refresh request: refresh_token presented, http_status, error, access_token issued."""
        with self._lock:
            return [dict(r) for r in self._refreshes]

    def _token_valid(self, token: str) -> bool:
        if not (self.accept_any_token or token in self.valid_tokens):
            return False
        expires = self._expires.get(token)
        return expires is None or time.time() < expires

    def _token_grant(self, form: dict[str, list[Any]], authorization: str) -> tuple[int, dict[str, Any]]:
        def first(name: str) -> str:
            values = form.get(name) or [""]
            return str(values[0])

        client_id, client_secret = first("client_id"), first("client_secret")
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() == "basic":
            client_id, _, client_secret = base64.b64decode(encoded).decode().partition(":")
        if first("grant_type") == "authorization_code":
            return self._code_grant(form, (client_id, client_secret))
        presented = first("refresh_token")
        record: dict[str, Any] = {"at": time.time(), "refresh_token": presented, "http_status": None, "error": None,
                                  "access_token": None}
        self._refreshes.append(record)
        if (client_id, client_secret) != self.oauth_client:
            status, body = 401, {"error": "invalid_client", "error_description": "Client authentication failed"}
        elif first("grant_type") != "refresh_token":
            status, body = 400, {"error": "unsupported_grant_type", "error_description": "refresh_token only"}
        elif self._refresh_faults:
            status, error = self._refresh_faults.popleft()
            body = {"error": error, "error_description": "injected failure"}
        elif presented not in self._refresh:
            if presented in self._retired_refresh:
                self.refresh_token_reuses += 1
            status, body = 400, {"error": "invalid_grant", "error_description": "The provided authorization grant "
                                 "is invalid, expired, revoked, or was issued to another client."}
        else:
            lifetime = self._refresh.pop(presented)
            self._retired_refresh.add(presented)
            status, body = 200, self._issue(self.token_lifetime_s if self.token_lifetime_s is not None else lifetime)
            record["access_token"] = body["access_token"]
        record.update(http_status=status, error=body.get("error"))
        return status, body

    # what was posted

    @property
    def statuses(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(s) for s in self._statuses]

    @property
    def media(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(m) for m in self._media.values()]

    def count_for(self, text: str) -> int:
        with self._lock:
            return sum(1 for s in self._statuses if s["text"] == text)

    def statuses_for(self, token: str) -> list[dict[str, Any]]:
        return [s for s in self.statuses if s["token"] == token]

    def received(self, since: int = 0) -> list[dict[str, Any]]:
        """Status posts from the ``since``-th on: received_at (epoch seconds), idempotency_key, text, token,
        then, once answered, answered_at, http_status and status_id (the status it created or was answered
        with, even when an injected fault hid it from the client; None when no status exists for it)."""
        with self._lock:
            return [dict(r) for r in self._received[since:]]

    def stats(self) -> dict[str, Any]:
        """``posts``: statuses created. ``double_posts``: statuses created with a text the same account had
        already posted, i.e. what followers see twice (``double_posts_by_text``). ``double_posts_by_key``:
        2xx answers to an Idempotency-Key already answered 2xx for that account (the client sent an accepted
        post again; the key returned the first status, so nothing shows twice, unless keys are not honoured)."""
        with self._lock:
            return {"requests": self.requests, "answered": self._answered, "in_flight": self.requests - self._answered,
                    "posts": len(self._statuses), "double_posts": self._double_by_text,
                    "double_posts_by_text": self._double_by_text, "double_posts_by_key": self._double_by_key,
                    "latency_ms": self.latency_s * 1000}

    def media_url(self, name: str = "picture.png") -> str:
        return f"{self.base_url}/media/{name}"

    # the app

    def _build_app(self) -> FastAPI:
        app = FastAPI()

        def token_of(request: Request) -> str | None:
            token = _bearer(request)
            with self._lock:
                return token if token and self._token_valid(token) else None

        @app.post("/oauth/token")
        async def token(request: Request):
            form = await _form(request)
            with self._lock:
                status, body = self._token_grant(form, request.headers.get("authorization", ""))
            return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})

        @app.get("/oauth/authorize")
        async def authorize(request: Request):
            with self._lock:
                status, answer = self._authorize(dict(request.query_params))
            if status == 302:
                return Response(status_code=302, headers={"Location": str(answer)})
            return JSONResponse(answer, status_code=status)

        @app.get("/api/v1/accounts/verify_credentials")
        async def verify_credentials(request: Request):
            token = token_of(request)
            if token is None:
                return JSONResponse(INVALID_TOKEN, status_code=401)
            with self._lock:
                username = self._usernames.get(token, "herald")
            return {"id": str(abs(hash(username)) % 10**12), "username": username, "acct": username}

        @app.post("/api/v1/statuses")
        async def create_status(request: Request):
            record: dict[str, Any] = {"received_at": time.time(), "idempotency_key": None, "text": None,
                                      "token": None, "answered_at": None, "http_status": None, "status_id": None}
            with self._lock:
                self.requests += 1
                self._received.append(record)
                fault = self._faults.popleft() if self._faults else None
                delay = self._delays.popleft() if self._delays else 0.0
            # Read the body first: a delayed request still completes after its client gave up.
            text, visibility, media_ids = await _status_params(request)
            key = request.headers.get("idempotency-key")
            with self._lock:
                record.update(idempotency_key=key, text=text, token=_bearer(request))
            if delay + self.latency_s:
                await asyncio.sleep(delay + self.latency_s)
            response, status = self._answer_status(token_of(request), key, text, visibility, media_ids, fault)
            with self._lock:
                self._answered += 1
                record.update(answered_at=time.time(), http_status=response.status_code,
                              status_id=status["id"] if status else None)
                if key and record["token"] and 200 <= response.status_code < 300:
                    self._accepted_keys[(record["token"], key)] += 1
                    if self._accepted_keys[(record["token"], key)] > 1:
                        self._double_by_key += 1
            return response

        @app.get("/api/v1/statuses/{status_id}")
        async def get_status(status_id: str):
            with self._lock:
                status = next((s for s in self._statuses if s["id"] == status_id), None)
            if status is None:
                return JSONResponse({"error": "Record not found"}, status_code=404)
            return self._public(status)

        @app.post("/api/v2/media")
        async def upload_media(request: Request):
            token = token_of(request)
            if token is None:
                return JSONResponse(INVALID_TOKEN, status_code=401)
            upload = (await _form(request)).get("file", [None])[0]
            if not isinstance(upload, _Upload):
                return JSONResponse({"error": "Validation failed: File can't be blank"}, status_code=422)
            with self._lock:
                media_id = str(next(self._ids))
                self._media[media_id] = {"id": media_id, "token": token, "filename": upload.filename,
                                         "content_type": upload.content_type, "size": len(upload.content),
                                         "pending_polls": self.media_processing_polls}
                return self._media_response(media_id, processing_status=202)

        @app.get("/api/v1/media/{media_id}")
        async def get_media(media_id: str, request: Request):
            if token_of(request) is None:
                return JSONResponse(INVALID_TOKEN, status_code=401)
            with self._lock:
                media = self._media.get(media_id)
                if media is None:
                    return JSONResponse({"error": "Record not found"}, status_code=404)
                response = self._media_response(media_id, processing_status=206)
                media["pending_polls"] = max(0, media["pending_polls"] - 1)
            return response

        @app.get("/media/{name}")
        async def media_file(name: str):
            return Response(MEDIA_BYTES, media_type="image/png")

        @app.get("/_fake/posts")
        async def fake_posts(since: int = 0):
            return self.received(max(0, since))

        @app.get("/_fake/stats")
        async def fake_stats():
            return self.stats()

        return app

    def _answer_status(self, token: str | None, key: str | None, text: str, visibility: str, media_ids: list[str],
                       fault: Fault | None) -> tuple[Response, dict[str, Any] | None]:
        if fault and not fault.after_create:
            return _fault_response(fault), None
        if token is None:
            return JSONResponse(INVALID_TOKEN, status_code=401), None
        with self._lock:
            status = self._by_key.get((token, key)) if key else None
            if status is None:
                unknown = [m for m in media_ids if self._media.get(m, {}).get("token") != token]
                if unknown:
                    return JSONResponse({"error": f"Record not found: media {unknown}"}, status_code=404), None
                if any(self._media[m]["pending_polls"] for m in media_ids):
                    return JSONResponse({"error": "Cannot attach files that have not finished processing. "
                                                  "Try again in a moment!"}, status_code=422), None
                if not text.strip() and not media_ids:
                    return JSONResponse({"error": "Validation failed: Text can't be blank"}, status_code=422), None
                status = self._create(token, key, text, visibility, media_ids)
        if fault:
            return _fault_response(fault), status
        return JSONResponse(self._public(status)), status

    def _create(self, token: str, key: str | None, text: str, visibility: str, media_ids: list[str]) -> dict[str, Any]:
        status_id = str(next(self._ids))
        status = {"id": status_id, "token": token, "idempotency_key": key, "text": text, "visibility": visibility,
                  "media_ids": media_ids, "created_at": datetime.now(UTC).isoformat(),
                  "url": f"{self.base_url}/@user/{status_id}"}
        self._statuses.append(status)
        if key:
            self._by_key[(token, key)] = status
        self._texts[(token, text)] += 1
        if self._texts[(token, text)] > 1:
            self._double_by_text += 1
        return status

    def _public(self, status: dict[str, Any]) -> dict[str, Any]:
        return {"id": status["id"], "created_at": status["created_at"], "url": status["url"],
                "uri": status["url"], "visibility": status["visibility"], "content": f"<p>{status['text']}</p>",
                "media_attachments": [self._public_media(m) for m in status["media_ids"]]}

    def _media_response(self, media_id: str, processing_status: int) -> JSONResponse:
        if self._media[media_id]["pending_polls"]:
            return JSONResponse({**self._public_media(media_id), "url": None}, status_code=processing_status)
        return JSONResponse(self._public_media(media_id))

    def _public_media(self, media_id: str) -> dict[str, Any]:
        return {"id": media_id, "type": "image", "url": f"{self.base_url}/system/media/{media_id}.png",
                "preview_url": None, "description": None}


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


async def _status_params(request: Request) -> tuple[str, str, list[str]]:
    if request.headers.get("content-type", "").startswith("application/json"):
        body = await request.json()
        media_ids = [str(m) for m in body.get("media_ids") or []]
        return str(body.get("status") or ""), str(body.get("visibility") or "public"), media_ids
    form = await _form(request)
    status, visibility = form.get("status", [""]), form.get("visibility", ["public"])
    return str(status[0]), str(visibility[0]), [str(m) for m in form.get("media_ids[]", [])]


@dataclass(frozen=True)
class _Upload:
    filename: str | None
    content_type: str
    content: bytes


async def _form(request: Request) -> dict[str, list[Any]]:
    """Form bodies with the standard library only (Starlette's request.form() needs python-multipart)."""
    content_type = request.headers.get("content-type", "")
    body = await request.body()
    fields: dict[str, list[Any]] = {}
    if content_type.startswith("multipart/form-data"):
        message = BytesParser(policy=email_policy).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True) or b""
            filename = part.get_filename()
            value = _Upload(filename, part.get_content_type(), payload) if filename is not None else payload.decode()
            fields.setdefault(name, []).append(value)
    else:
        for name, values in parse_qs(body.decode(), keep_blank_values=True).items():
            fields[name] = list(values)
    return fields


def _fault_response(fault: Fault) -> Response:
    if fault.drop_connection:
        return _DroppedResponse()
    return JSONResponse(fault.body, status_code=fault.status, headers=fault.headers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.mastodon_server",
                                     description="Run the fake Mastodon instance as a process until SIGTERM/SIGINT.")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (see --port-file)")
    parser.add_argument("--latency-ms", type=float, default=0, help="hold every status post this long")
    parser.add_argument("--port-file", type=Path, help="write the bound port here once it accepts connections")
    parser.add_argument("--token", action="append", default=[],
                        help="a valid bearer token (repeatable); none given: any bearer token is valid")
    parser.add_argument("--media-processing-polls", type=int, default=0)
    args = parser.parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server = FakeMastodon(args.token, args.media_processing_polls, latency_ms=args.latency_ms,
                          accept_any_token=not args.token, port=args.port)
    with server:
        if args.port_file:
            partial = args.port_file.with_name(args.port_file.name + ".partial")
            partial.write_text(f"{server.port}\n")
            os.replace(partial, args.port_file)  # readers never see a half-written port
        print(f"fake Mastodon at {server.base_url} (latency {args.latency_ms:g} ms)", file=sys.stderr, flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
