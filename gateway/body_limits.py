"""Request bodies the gateway will read: at most ``max_bytes``, and text as JSON requires.

A body larger than the limit answers 413 before the application reads it (by its
Content-Length, or counted while it streams in when there is none), so a client cannot make
the gateway buffer without end. JSON is UTF-8 (RFC 8259 §8.1,
https://www.rfc-editor.org/rfc/rfc8259#section-8.1); a body that is not answers 422 like any
other malformed JSON, instead of the framework's undocumented 400.
"""

from __future__ import annotations

from typing import Any

from gateway.problems import problem_response

DEFAULT_MAX_BYTES = 1024 * 1024
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


class BodyLimits:
    """ASGI middleware: buffers a request body up to ``max_bytes``, then hands it on unchanged."""

    def __init__(self, app: Any, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in _WITH_BODY:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._too_large(scope, receive, send)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body and b"json" in headers.get(b"content-type", b"application/json"):
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as error:
                response = problem_response(
                    422, "validation_error", "the request is not valid; see errors",
                    errors=[{"loc": ["body"], "msg": f"JSON must be UTF-8 (byte {error.start} is not)",
                             "type": "json_invalid"}])
                await response(scope, receive, send)
                return

        delivered = False

        async def replay() -> dict:
            nonlocal delivered
            if delivered:
                return await receive()  # waits for the disconnect, as the server would
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, scope: dict, receive: Any, send: Any) -> None:
        response = problem_response(413, "body_too_large", f"the request body is larger than {self.max_bytes} bytes",
                                    {"Connection": "close"})
        await response(scope, receive, send)
