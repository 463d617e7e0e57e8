"""A fake Telegram Bot API: the methods Herald uses, checked against the docs, with faults.

    POST /bot<token>/sendMessage     chat_id, text (1–4096) — JSON or form
    POST /bot<token>/sendPhoto       multipart: chat_id, caption (≤ 1024), photo (a file part)
    POST /bot<token>/sendVideo       multipart: chat_id, caption, video
    POST /bot<token>/sendMediaGroup  multipart: chat_id, media (JSON array of 2–10 {type photo|video,
                                     media "attach://<part>", caption?}), one part per attach:// name

Answers are ``{"ok": true, "result": Message}`` or ``{"ok": false, "error_code", "description",
"parameters"}``: 401 Unauthorized for a wrong token, 400 "Bad Request: chat not found", 403 "Forbidden:
bot is not a member of the channel chat" (``kick_bot``), 429 "Too Many Requests: retry after N" with
parameters.retry_after (``flood(n)``). Steps for faults: "send".

Docs: https://core.telegram.org/bots/api#making-requests, #sendmessage, #sendphoto, #sendmediagroup,
#sending-files.
"""

from __future__ import annotations

import itertools
import json
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.fakes.platform_server import FakePlatform, Fault, Upload, fault_response, form_fields

BOT_TOKEN = "7000000001:AAFakeBotTokenForHeraldTests_abcdefghij"
CHANNEL = "@heraldnews"
CHANNEL_ID = -1001234567890


def telegram_error(code: int, description: str, **parameters: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return body


def flood(retry_after: int) -> Fault:
    return Fault(429, {}, telegram_error(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after))


class FakeTelegram(FakePlatform):
    name = "telegram"

    def __init__(self) -> None:
        self.bot_in_channel = True
        self.messages: list[dict[str, Any]] = []
        self._ids = itertools.count(101)
        super().__init__()

    def kick_bot(self) -> None:
        self.bot_in_channel = False

    def inject(self, fault: Fault) -> None:
        self.fail_next("send", fault.status, fault.headers, fault.body, after_create=fault.after_create,
                       delay_s=fault.delay_s)

    def routes(self, app: FastAPI) -> None:
        @app.post("/bot{token}/{method}")
        async def call(request: Request, token: str, method: str):
            self.seen(request, "send")
            if token != BOT_TOKEN:
                return JSONResponse(telegram_error(401, "Unauthorized"), status_code=401)
            if method not in ("sendMessage", "sendPhoto", "sendVideo", "sendMediaGroup"):
                return self.violation(f"unexpected method {method}", status=404,
                                      body=telegram_error(404, "Not Found: method not found"))
            params = await self._params(request)
            problem = self._check(method, params)
            if problem:
                return self.violation(problem, body=telegram_error(400, f"Bad Request: {problem}"))
            if str(params["chat_id"]) not in (CHANNEL, str(CHANNEL_ID)):
                return JSONResponse(telegram_error(400, "Bad Request: chat not found"), status_code=400)
            if not self.bot_in_channel:
                return JSONResponse(telegram_error(403, "Forbidden: bot is not a member of the channel chat"),
                                    status_code=403)
            fault = self.take_fault("send")
            if fault and not fault.after_create and not fault.delay_s:
                return fault_response(fault)
            with self.lock:
                result = self._create(method, params)
            return await self.answer(fault, JSONResponse({"ok": True, "result": result}))

    def _create(self, method: str, params: dict[str, Any]) -> Any:
        chat = {"id": CHANNEL_ID, "title": "Herald News", "username": CHANNEL[1:], "type": "channel"}
        if method == "sendMediaGroup":
            group = str(next(self._ids))
            created = []
            for item in json.loads(params["media"]):
                part = params[item["media"].removeprefix("attach://")]
                message = {"message_id": next(self._ids), "chat": chat, "date": 1764849600, "media_group_id": group,
                           "kind": item["type"], "caption": item.get("caption"), "file": part.filename}
                created.append(message)
            self.messages.extend(created)
            return created
        message = {"message_id": next(self._ids), "chat": chat, "date": 1764849600}
        if method == "sendMessage":
            message.update(kind="text", text=params["text"])
        else:
            field = "photo" if method == "sendPhoto" else "video"
            message.update(kind=field, caption=params.get("caption"), file=params[field].filename)
        self.messages.append(message)
        return message

    @staticmethod
    async def _params(request: Request) -> dict[str, Any]:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("application/json"):
            return await request.json()
        if content_type.startswith("multipart/form-data"):
            return {k: v[0] for k, v in (await form_fields(request)).items()}
        return {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}

    @staticmethod
    def _check(method: str, params: dict[str, Any]) -> str | None:
        if "chat_id" not in params:
            return "chat_id is required"
        if method == "sendMessage":
            text = params.get("text")
            if not isinstance(text, str) or not 1 <= len(text.encode("utf-16-le")) // 2 <= 4096:
                return "message text is empty or longer than 4096"
            return None
        if len(str(params.get("caption") or "").encode("utf-16-le")) // 2 > 1024:
            return "message caption is too long"
        if method in ("sendPhoto", "sendVideo"):
            field = "photo" if method == "sendPhoto" else "video"
            if not isinstance(params.get(field), Upload) or not params[field].content:
                return f"{field} must be a file part here"
            return None
        try:
            media = json.loads(params.get("media") or "")
        except ValueError:
            return "media must be a JSON array"
        if not isinstance(media, list) or not 2 <= len(media) <= 10:
            return "sendMediaGroup takes 2–10 items"
        for item in media:
            name = str(item.get("media", "")).removeprefix("attach://")
            if item.get("type") not in ("photo", "video") or not isinstance(params.get(name), Upload):
                return f"media item {item} must be a photo or video naming an uploaded part with attach://"
        return None
