"""The common part of the part-B platform fakes: a real HTTP server (FastAPI on uvicorn in a
background thread, on a free 127.0.0.1 port) with fault injection, a record of every request and a
list of ``violations``: requests that do not match the platform's documented API. A fake answers a
violation as the platform would refuse it (400, or its own error shape) and records it; the test
fixtures assert the list is empty, so a request that does not match the docs fails the test.

Faults are queued per step (``fail_next("create", ...)``) and taken by the next request to that step:

- ``status`` (+ ``headers``, ``body``): answered instead of doing the step;
- ``after_create=True``: the step is done (the post exists), then the fault is answered;
- ``delay_s``: the step is done, then the answer is held that long (a client with a shorter
  timeout gives up: the post exists and the client cannot know).

A stand-in media host serves ``GET /media/<name>`` (PNG for .png/.jpg, MP4 bytes for .mp4), so
adapters have something to download.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.fakes.local_server import LocalServer

# Form bodies parsed with the standard library (Starlette's request.form() needs python-multipart): one
# parser for every fake, the Mastodon fake's.
from tests.fakes.mastodon_server import _form as form_fields
from tests.fakes.mastodon_server import _Upload as Upload

__all__ = ["Fault", "FakePlatform", "MP4_BYTES", "PNG_BYTES", "Upload", "bearer", "fault_response", "form_fields"]

PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"fake image bytes " * 8
MP4_BYTES = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8  # 2,060 bytes: enough for chunked uploads


@dataclass(frozen=True)
class Fault:
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    after_create: bool = False
    delay_s: float = 0.0


class _QuietDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "without completing response" not in record.getMessage()


logging.getLogger("uvicorn.error").addFilter(_QuietDrops())


class FakePlatform(LocalServer):
    name = "platform"

    def __init__(self) -> None:
        self.violations: list[str] = []
        self.requests: list[dict[str, Any]] = []  # method, path, step
        self._faults: dict[str, deque[Fault]] = defaultdict(deque)
        self.lock = threading.Lock()
        super().__init__()
        app = FastAPI()

        @app.get("/media/{name}")
        async def media_file(name: str):
            if name.endswith(".mp4"):
                return Response(MP4_BYTES, media_type="video/mp4")
            if name.endswith((".png", ".jpg", ".jpeg")):
                return Response(PNG_BYTES, media_type="image/png")
            return JSONResponse({"error": "no such media"}, status_code=404)

        self.routes(app)
        self.serve(app, graceful_s=2)

    def routes(self, app: FastAPI) -> None:
        raise NotImplementedError

    def media_url(self, name: str = "photo.png") -> str:
        return f"{self.base_url}/media/{name}"

    # faults

    def fail_next(self, step: str, status: int = 500, headers: dict[str, str] | None = None, body: Any = None,
                  *, after_create: bool = False, delay_s: float = 0.0, n: int = 1) -> None:
        with self.lock:
            self._faults[step].extend([Fault(status, dict(headers or {}), body, after_create, delay_s)] * n)

    def take_fault(self, step: str) -> Fault | None:
        with self.lock:
            queue = self._faults.get(step)
            return queue.popleft() if queue else None

    # recording

    def seen(self, request: Request, step: str) -> None:
        with self.lock:
            self.requests.append({"method": request.method, "path": request.url.path, "step": step})

    def steps(self) -> list[str]:
        with self.lock:
            return [r["step"] for r in self.requests]

    def violation(self, message: str, status: int = 400, body: Any = None) -> Response:
        with self.lock:
            self.violations.append(message)
        return JSONResponse(body if body is not None else {"error": "InvalidRequest", "message": message},
                            status_code=status)

    @staticmethod
    async def answer(fault: Fault | None, normal: Response) -> Response:
        """What a created post's request is answered: normally, late, or with the injected fault."""
        if fault is None:
            return normal
        if fault.delay_s:
            await asyncio.sleep(fault.delay_s)
            return normal
        return fault_response(fault)


def fault_response(fault: Fault) -> Response:
    body = fault.body if fault.body is not None else {"error": "injected failure"}
    return JSONResponse(body, status_code=fault.status, headers=fault.headers)


def bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None
