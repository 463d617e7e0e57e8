"""A fake OpenAI-compatible Chat Completions server: a real HTTP server (tests/fakes/http_fake.py)
checking each request against the documented shape, with scripted answers and fault injection.

    POST /v1/chat/completions   bearer key; JSON body: `model` (string), `messages` (non-empty; role
                                system/developer/user/assistant, string content), `stream` absent or
                                false, `response_format` absent, `{"type": "json_object"}` or
                                `{"type": "json_schema", "json_schema": {"name": ^[a-zA-Z0-9_-]{1,64}$,
                                "schema": {...}, "strict": bool}}`; with `strict: true` every object in
                                the schema must set `additionalProperties: false` and list all its
                                properties in `required` (Structured Outputs' supported-schema rules).
                                Answers a `chat.completion` object: `choices[0].message.content`,
                                `finish_reason: "stop"`, `usage.prompt_tokens/completion_tokens/total_tokens`.

Errors are `{"error": {"message", "type", "param", "code"}}`; a wrong key answers 401. Faults:
``fail_next("chat", 429, headers={"retry-after": "1"})``, ``fail_next("chat", 500)``,
``fail_next("chat", 200, hang_s=2)`` (the client times out); ``answer_next("not json")`` scripts
what the "model" writes.

Docs: https://platform.openai.com/docs/api-reference/chat/create (request and the chat completion
object), https://platform.openai.com/docs/guides/structured-outputs (json_schema, strict mode and
its schema rules), https://platform.openai.com/docs/guides/error-codes (401, 429, 500).
"""

from __future__ import annotations

import itertools
import re
import time

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.fakes.ai_common import AiFake
from tests.fakes.http_fake import bearer

_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_ROLES = {"system", "developer", "user", "assistant"}


def _error(status: int, message: str, kind: str, code: str | None = None) -> Response:
    return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": code}}, status_code=status)


def strict_schema_problems(schema: object, path: str = "$") -> list[str]:
    if not isinstance(schema, dict):
        return []
    problems = []
    if schema.get("type") == "object":
        properties = schema.get("properties", {})
        if schema.get("additionalProperties") is not False:
            problems.append(f"{path}: strict mode needs additionalProperties: false")
        if sorted(schema.get("required", [])) != sorted(properties):
            problems.append(f"{path}: strict mode needs every property in required")
        for name, sub in properties.items():
            problems += strict_schema_problems(sub, f"{path}.{name}")
    if schema.get("type") == "array":
        problems += strict_schema_problems(schema.get("items"), f"{path}[]")
    return problems


class FakeOpenAI(AiFake):
    name = "openai"

    def routes(self, app: FastAPI) -> None:
        ids = itertools.count(1)

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> Response:
            if bearer(request) not in self.valid_tokens:
                # echoes the key, as some compatible servers do (OpenAI itself masks it)
                return _error(401, f"Incorrect API key provided: {bearer(request)}", "invalid_request_error",
                              "invalid_api_key")
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
            fault = self.take_fault("chat")
            if fault is not None:
                default = {"error": {"message": f"fault {fault.status}", "type": "server_error", "param": None,
                                     "code": None}}
                if fault.status == 429:
                    default = {"error": {"message": "Rate limit reached", "type": "requests", "param": None,
                                         "code": "rate_limit_exceeded"}}
                return await self.answer_fault(fault, default)
            user = "\n".join(m["content"] for m in body["messages"] if m["role"] == "user")
            text = self.model_text(user)
            prompt_tokens = sum(len(m["content"].split()) for m in body["messages"])
            completion_tokens = len(text.split())
            return JSONResponse({
                "id": f"chatcmpl-{next(ids)}", "object": "chat.completion", "created": int(time.time()),
                "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
                             "logprobs": None, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                          "total_tokens": prompt_tokens + completion_tokens},
            })

    def _check(self, body: object) -> str | None:
        if not isinstance(body, dict):
            return "the body must be a JSON object"
        if not isinstance(body.get("model"), str) or not body["model"]:
            return "model is required (string)"
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return "messages is required (non-empty array)"
        for message in messages:
            if not isinstance(message, dict) or message.get("role") not in _ROLES:
                return f"a message needs a role in {sorted(_ROLES)}: {message!r}"
            if not isinstance(message.get("content"), str):
                return "message content must be a string here"
        if body.get("stream") not in (None, False):
            return "streaming is not what Herald asks for"
        response_format = body.get("response_format")
        if response_format is None or response_format == {"type": "json_object"}:
            return None
        if not isinstance(response_format, dict) or response_format.get("type") != "json_schema":
            return f"response_format must be json_schema or json_object: {response_format!r}"
        spec = response_format.get("json_schema")
        if not isinstance(spec, dict) or not _NAME.match(str(spec.get("name", ""))):
            return "json_schema.name is required: a-z, A-Z, 0-9, _ and -, at most 64"
        if not isinstance(spec.get("schema"), dict):
            return "json_schema.schema must be a JSON Schema object"
        if spec.get("strict"):
            problems = strict_schema_problems(spec["schema"])
            if problems:
                return "; ".join(problems)
        return None
