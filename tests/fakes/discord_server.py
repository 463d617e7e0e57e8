"""A fake Discord API for webhook executes, checked against the docs, with faults.

    POST /webhooks/{id}/{token}?wait=true
        JSON {content ≤ 2000, allowed_mentions, …} or multipart: payload_json (the same JSON, with
        ``attachments`` [{id, filename}] naming each part) + files[n] → 200 the message object

Every answer carries X-RateLimit-Limit/Remaining/Reset/Reset-After/Bucket; a 429 (``rate_limited()``)
also Retry-After and {"message", "retry_after", "global"}. An unknown webhook is 404 code 10015, a
wrong token 401 code 50027. Steps for faults: "execute".

Docs: https://discord.com/developers/docs/resources/webhook#execute-webhook,
https://discord.com/developers/docs/reference#uploading-files, https://discord.com/developers/docs/topics/rate-limits.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.fakes.platform_server import FakePlatform, Fault, Upload, fault_response, form_fields

WEBHOOK_ID = "1234567890123456789"
WEBHOOK_TOKEN = "aBcDeFgHiJkLmNoPqRsTuVwXyZ_0123456789-abcdefghijklmnopqrstuvwxyzABCDEF"
GUILD_ID, CHANNEL_ID = "111111111111111111", "222222222222222222"
_PAYLOAD_FIELDS = {"content", "username", "avatar_url", "tts", "embeds", "allowed_mentions", "components",
                   "attachments", "flags", "thread_name", "applied_tags", "poll"}


def bucket_headers(remaining: int = 4, reset_after: float = 2.0) -> dict[str, str]:
    return {"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}", "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": "abcd1234"}


def rate_limited(retry_after: float = 1.5) -> Fault:
    return Fault(429, {**bucket_headers(0, retry_after), "Retry-After": str(int(retry_after + 0.999)),
                       "X-RateLimit-Scope": "user"},
                 {"message": "You are being rate limited.", "retry_after": retry_after, "global": False})


class FakeDiscord(FakePlatform):
    name = "discord"

    def __init__(self) -> None:
        self.webhooks = {WEBHOOK_ID: WEBHOOK_TOKEN}
        self.messages: list[dict[str, Any]] = []
        self._ids = itertools.count(1_300_000_000_000_000_001)
        super().__init__()

    def inject(self, fault: Fault) -> None:
        self.fail_next("execute", fault.status, fault.headers, fault.body, after_create=fault.after_create,
                       delay_s=fault.delay_s)

    def routes(self, app: FastAPI) -> None:
        @app.post("/webhooks/{webhook_id}/{token}")
        async def execute(request: Request, webhook_id: str, token: str, wait: str | None = None):
            self.seen(request, "execute")
            if webhook_id not in self.webhooks:
                return JSONResponse({"message": "Unknown Webhook", "code": 10015}, status_code=404)
            if token != self.webhooks[webhook_id]:
                return JSONResponse({"message": "Invalid Webhook Token", "code": 50027}, status_code=401)
            if wait != "true":
                return self.violation("Herald needs wait=true to learn the message id")
            payload, files, problem = await self._payload(request)
            if problem:
                return self.violation(problem, body={"code": 50035, "message": "Invalid Form Body"})
            if len(payload.get("content") or "") > 2000:
                return JSONResponse({"code": 50035, "message": "Invalid Form Body", "errors": {"content": {
                    "_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}]}}},
                    status_code=400)
            fault = self.take_fault("execute")
            if fault and not fault.after_create and not fault.delay_s:
                return fault_response(fault)
            with self.lock:
                message = {"id": str(next(self._ids)), "type": 0, "content": payload.get("content", ""),
                           "channel_id": CHANNEL_ID, "guild_id": GUILD_ID, "webhook_id": webhook_id,
                           "attachments": [{"id": str(i), "filename": f.filename, "size": len(f.content),
                                            "content_type": f.content_type} for i, f in enumerate(files)],
                           "allowed_mentions": payload.get("allowed_mentions")}
                self.messages.append(message)
            return await self.answer(fault, JSONResponse(message, headers=bucket_headers()))

    async def _payload(self, request: Request) -> tuple[dict[str, Any], list[Upload], str | None]:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("application/json"):
            payload, files = await request.json(), []
        elif content_type.startswith("multipart/form-data"):
            form = await form_fields(request)
            if "payload_json" not in form:
                return {}, [], "multipart executes carry the JSON in payload_json"
            payload = json.loads(form.pop("payload_json")[0])
            names = sorted(form, key=lambda n: int(n[6:-1]) if n.startswith("files[") and n.endswith("]") else -1)
            if any(not (n.startswith("files[") and n.endswith("]")) for n in names):
                return {}, [], f"file parts are named files[n], got {names}"
            files = [form[n][0] for n in names]
            declared = {(a.get("id"), a.get("filename")) for a in payload.get("attachments") or []}
            sent = {(int(n[6:-1]), form[n][0].filename) for n in names}
            if declared != sent:
                return {}, [], f"payload_json.attachments {sorted(declared)} do not name the parts {sorted(sent)}"
            if len(files) > 10:
                return {}, [], "at most 10 files"
        else:
            return {}, [], f"JSON or multipart/form-data, not {content_type!r}"
        unknown = set(payload) - _PAYLOAD_FIELDS
        if unknown:
            return {}, [], f"unknown execute fields {sorted(unknown)}"
        if not payload.get("content") and not files and not payload.get("embeds"):
            return {}, [], "a message needs content, embeds or files"
        return payload, files, None
