"""A fake Anthropic Messages API: a real HTTP server (tests/fakes/http_fake.py) checking each
request against the documented shape, with scripted answers and fault injection.

    POST /v1/messages   headers `x-api-key` (a wrong one answers 401 authentication_error),
                        `anthropic-version` (required), `content-type: application/json`; body
                        `model` (string), `max_tokens` (integer ≥ 1), `messages` (non-empty, first
                        role user, roles alternating user/assistant, string or block content),
                        `system` (optional string or text blocks; no "system" role in messages),
                        `stream` absent or false. Answers a `message` object: `content` [text
                        block], `stop_reason: "end_turn"`, `usage.input_tokens/output_tokens`.

Errors are `{"type": "error", "error": {"type", "message"}}`: 429 rate_limit_error (send a
``retry-after`` header with ``fail_next``), 529 overloaded_error, 500 api_error. Faults:
``fail_next("messages", 429, headers={"retry-after": "1"})``, ``fail_next("messages", 500)``,
``fail_next("messages", 200, hang_s=2)``; ``answer_next("not json")`` scripts the "model".

Docs: https://docs.anthropic.com/en/api/messages, https://docs.anthropic.com/en/api/errors,
https://docs.anthropic.com/en/api/versioning (the anthropic-version header is required).
"""

from __future__ import annotations

import itertools

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.fakes.ai_common import AiFake

_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}


def _error(status: int, message: str) -> Response:
    return JSONResponse({"type": "error", "error": {"type": _ERROR_TYPES.get(status, "api_error"), "message": message}},
                        status_code=status)


class FakeAnthropic(AiFake):
    name = "anthropic"

    def routes(self, app: FastAPI) -> None:
        ids = itertools.count(1)

        @app.post("/v1/messages")
        async def messages(request: Request) -> Response:
            if request.headers.get("x-api-key") not in self.valid_tokens:
                return _error(401, f"invalid x-api-key {request.headers.get('x-api-key')}")  # echoed: see the tests
            if not request.headers.get("anthropic-version"):
                return self.violation(request, "the anthropic-version header is required")
            if not request.headers.get("content-type", "").startswith("application/json"):
                return self.violation(request, "the body must be application/json")
            try:
                body = await request.json()
            except ValueError:
                return self.violation(request, "the body is not JSON")
            problem = self._check(body)
            if problem:
                return self.violation(request, problem)
            self.bodies.append(body)
            fault = self.take_fault("messages")
            if fault is not None:
                return await self.answer_fault(fault, {"type": "error", "error": {
                    "type": _ERROR_TYPES.get(fault.status, "api_error"), "message": f"fault {fault.status}"}})
            user = "\n".join(_text(m["content"]) for m in body["messages"] if m["role"] == "user")
            text = self.model_text(user)
            return JSONResponse({
                "id": f"msg_{next(ids):024d}", "type": "message", "role": "assistant", "model": body["model"],
                "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
                "usage": {"input_tokens": len(user.split()) + len(_text(body.get("system", "")).split()),
                          "output_tokens": len(text.split())},
            })

    def _check(self, body: object) -> str | None:
        if not isinstance(body, dict):
            return "the body must be a JSON object"
        if not isinstance(body.get("model"), str) or not body["model"]:
            return "model is required (string)"
        if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
            return "max_tokens is required (integer ≥ 1)"
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return "messages is required (non-empty array)"
        roles = [m.get("role") if isinstance(m, dict) else None for m in messages]
        if roles[0] != "user" or any(r not in ("user", "assistant") for r in roles):
            return f"messages must start with user and hold only user/assistant turns: {roles}"
        if any(a == b for a, b in zip(roles, roles[1:])):
            return f"roles must alternate: {roles}"
        for message in messages:
            if not isinstance(message.get("content"), (str, list)):
                return "content must be a string or an array of blocks"
        if "system" in body and not isinstance(body["system"], (str, list)):
            return "system must be a string or text blocks"
        if body.get("stream") not in (None, False):
            return "streaming is not what Herald asks for"
        return None


def _text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(b.get("text", "") for b in content if isinstance(b, dict))
    return ""
