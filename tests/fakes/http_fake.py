"""What every platform fake shares: a real HTTP server (FastAPI on uvicorn, background thread, free
127.0.0.1 port), fault injection per route, and a record of requests that broke the documented API.

A platform fake subclasses ``HttpFake`` and adds its routes in ``routes(app)``. In a route:

- ``self.violation(request, "…")`` answers 400 and records what the request got wrong against the
  platform's documentation; tests fail on any (``assert_no_violations``, called by the fixtures),
  so a request that does not match the docs fails the test even where the adapter coped with the 400.
- ``fault = self.take_fault("route")`` pops the next injected fault for that route (None: none);
  ``await self.answer_fault(fault, created=...)`` applies it: an error status with headers and body,
  or, with ``after_create``, the post is kept and then the answer is an error (``status``) or, with
  ``hang_s``, arrives only after the client gave up (a timeout after the post was created).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections import defaultdict, deque
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import default as email_policy
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.fakes.local_server import LocalServer

MEDIA_BYTES = b"\x89PNG\r\n\x1a\n fake image bytes"
VIDEO_BYTES = b"\x00\x00\x00\x18ftypmp42 fake video bytes"


@dataclass(frozen=True)
class Fault:
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    after_create: bool = False  # the platform acted (created the post), then the answer failed or came late
    hang_s: float = 0.0  # hold the answer this long (longer than the client's timeout: it gives up)


@dataclass(frozen=True)
class Upload:
    filename: str | None
    content_type: str
    content: bytes


class HttpFake(LocalServer):
    name = "platform"

    def __init__(self, token: str = "fake-token") -> None:
        self.token = token
        self.valid_tokens = {token}
        self.violations: list[str] = []
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request, in order
        self._faults: dict[str, deque[Fault]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._ids = itertools.count(1_000_001)
        super().__init__()
        app = FastAPI()

        @app.middleware("http")
        async def record(request: Request, call_next):  # noqa: ANN001, ANN202 - Starlette's signature
            with self._lock:
                self.requests.append((request.method, request.url.path))
            return await call_next(request)

        @app.get("/_media/{name}")
        def media(name: str) -> Response:  # a stand-in media host, for adapters that download media
            body = VIDEO_BYTES if name.endswith(".mp4") else MEDIA_BYTES
            kind = "video/mp4" if name.endswith(".mp4") else "image/png" if name.endswith(".png") else "image/jpeg"
            return Response(body, media_type=kind)

        self.routes(app)
        self.serve(app, graceful_s=1)

    def routes(self, app: FastAPI) -> None:
        raise NotImplementedError

    # faults

    def fail_next(self, route: str, status: int = 500, *, headers: dict[str, str] | None = None, body: Any = None,
                  after_create: bool = False, hang_s: float = 0.0, n: int = 1) -> None:
        with self._lock:
            self._faults[route].extend([Fault(status, dict(headers or {}), body, after_create, hang_s)] * n)

    def take_fault(self, route: str) -> Fault | None:
        with self._lock:
            queue = self._faults.get(route)
            return queue.popleft() if queue else None

    async def answer_fault(self, fault: Fault, default_body: Any) -> Response:
        if fault.hang_s:
            await asyncio.sleep(fault.hang_s)
        body = fault.body if fault.body is not None else default_body
        return JSONResponse(body, status_code=fault.status, headers=fault.headers)

    # documentation checks

    def violation(self, request: Request, problem: str, status: int = 400) -> Response:
        with self._lock:
            self.violations.append(f"{request.method} {request.url.path}: {problem}")
        return JSONResponse({"fake_violation": problem}, status_code=status)

    def assert_no_violations(self) -> None:
        assert self.violations == [], f"requests that do not match the {self.name} docs: {self.violations}"

    def next_id(self) -> str:
        with self._lock:
            return str(next(self._ids))

    def media_url(self, name: str = "picture.jpg") -> str:
        return f"{self.base_url}/_media/{name}"


def bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


async def form(request: Request) -> dict[str, list[Any]]:
    """A urlencoded or multipart body as name → values (files as ``Upload``), standard library only."""
    content_type = request.headers.get("content-type", "")
    body = await request.body()
    fields: dict[str, list[Any]] = {}
    if content_type.startswith("multipart/form-data"):
        message = BytesParser(policy=email_policy).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True) or b""
            filename = part.get_filename()
            value = Upload(filename, part.get_content_type(), payload) if filename is not None else payload.decode()
            fields.setdefault(name, []).append(value)
    elif content_type.startswith("application/x-www-form-urlencoded"):
        for name, values in parse_qs(body.decode(), keep_blank_values=True).items():
            fields[name] = list(values)
    return fields


def first(fields: dict[str, list[Any]], name: str) -> Any:
    values = fields.get(name)
    return values[0] if values else None
