"""Telegram adapter: the Bot API, posting to a channel as its admin bot.

Docs followed:
- https://core.telegram.org/bots/api#making-requests (POST https://api.telegram.org/bot<token>/METHOD;
  every answer is ``{"ok": bool, "result" | "description", "error_code", "parameters"}``;
  ``parameters.retry_after`` on flood control, ``migrate_to_chat_id`` when a group became a supergroup).
- sendMessage (text 1–4096 characters after entity parsing; Herald sends plain text):
  https://core.telegram.org/bots/api#sendmessage
- sendPhoto / sendVideo (caption 0–1024), files as multipart/form-data:
  https://core.telegram.org/bots/api#sendphoto, #sendvideo, #sending-files
- sendMediaGroup (2–10 photos and videos; ``media`` a JSON array whose items name their file parts
  with ``attach://<name>``; the first item's caption is the post's): https://core.telegram.org/bots/api#sendmediagroup
- Limits: https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this (no more
  than 20 messages a minute to one group or channel; about 30 messages a second in all per bot).

The bot token is the account's secret ``access_token`` (it is part of every request's path; errors
never show it); the channel is the setting ``chat_id`` (``@channelusername`` or a numeric id). No
OAuth: ``token_refresh`` is None. Media are downloaded through the SSRF guard and uploaded, never
handed to Telegram as URLs.

Reconcile: the Bot API has no idempotency key and a bot cannot read a channel's history, so after an
unknown outcome the adapter cannot tell whether the message was posted and says so (transient).
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from domain.post.platform_rules import MediaKind, MediaRef, utf16_length
from herald.net.safe_fetch import SafeFetcher
from processors.platforms.base import (
    Capabilities,
    ErrorKind,
    PublishError,
    PublishRequest,
    PublishResult,
    RateBudget,
    Reconcile,
)
from processors.platforms.http_calls import fetch_media, filename_of, json_body, send, setting

DEFAULT_BASE = "https://api.telegram.org"
DOC = "https://core.telegram.org/bots/api#sendmessage"
FAQ = "https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this"
MAX_TEXT, MAX_CAPTION, MAX_GROUP = 4096, 1024, 10



class TelegramAdapter:
    platform = "telegram"
    rate_budgets = (RateBudget(20, 60.0, "account", FAQ), RateBudget(30, 1.0, "app", FAQ))
    token_refresh = None  # a bot token from @BotFather: nothing to refresh
    required_settings: tuple[str, ...] = ("chat_id",)
    capabilities = Capabilities.from_rules(
        "telegram", threads=False, reconcile=Reconcile.none, doc_url=DOC, media_kinds=("image", "video"),
        notes="a bot posts to chat_id; the bot token is the sealed access_token; 1,024 characters with media; a GIF is "
              "refused when published (sendAnimation is not made); a bot cannot read a channel, so an unknown outcome "
              "goes to an admin")

    def __init__(self, http: httpx.Client, base_url: str = DEFAULT_BASE, timeout_s: float = 10,
                 media: SafeFetcher | None = None) -> None:
        self.http, self.base_url, self.timeout_s = http, base_url.rstrip("/"), timeout_s
        self.media = media or SafeFetcher(timeout_s=timeout_s, max_bytes=50 * 1024 * 1024)

    def publish(self, request: PublishRequest) -> PublishResult:
        chat_id = setting(request.account.settings, "chat_id", "Telegram")
        urls = request.media_urls
        limit = MAX_CAPTION if urls else MAX_TEXT
        if utf16_length(request.text) > limit:
            raise PublishError(ErrorKind.invalid_content, f"Telegram takes at most {limit} characters "
                               f"{'in a caption' if urls else 'in a message'}")
        kinds = [MediaRef(u).resolved_kind for u in urls]
        if any(k not in (MediaKind.image, MediaKind.video) for k in kinds):
            raise PublishError(ErrorKind.invalid_content, "Telegram posts here take photos and videos (by extension)")
        if len(urls) > MAX_GROUP:
            raise PublishError(ErrorKind.invalid_content, f"a Telegram album holds at most {MAX_GROUP} items")
        if not urls:
            if not request.text.strip():
                raise PublishError(ErrorKind.invalid_content, "a Telegram message needs text")
            result = self._call(request, "sendMessage", json={"chat_id": chat_id, "text": request.text})
            return _result(result)
        fetched = [fetch_media(self.media, u) for u in urls]
        names = [filename_of(u, f"file{i}") for i, u in enumerate(urls)]
        if len(urls) == 1:
            method, field = ("sendPhoto", "photo") if kinds[0] is MediaKind.image else ("sendVideo", "video")
            data = {"chat_id": chat_id}
            if request.text:
                data["caption"] = request.text
            result = self._call(request, method, data=data,
                                files={field: (names[0], fetched[0].content, fetched[0].content_type)})
            return _result(result)
        media: list[dict[str, Any]] = []
        for index, kind in enumerate(kinds):
            item = {"type": "photo" if kind is MediaKind.image else "video", "media": f"attach://file{index}"}
            if index == 0 and request.text:
                item["caption"] = request.text
            media.append(item)
        files = {f"file{i}": (names[i], f.content, f.content_type) for i, f in enumerate(fetched)}
        result = self._call(request, "sendMediaGroup", data={"chat_id": chat_id, "media": json.dumps(media)},
                            files=files)
        if not isinstance(result, list) or not result:
            raise PublishError(ErrorKind.transient, "Telegram answered sendMediaGroup without the messages")
        return _result(result[0])

    def reconcile(self, request: PublishRequest) -> PublishResult | None:
        raise PublishError(ErrorKind.transient, "the Bot API has no idempotency key and bots cannot read a channel's "
                           "history: cannot tell whether the message was posted")

    def _call(self, request: PublishRequest, method: str, **kwargs: Any) -> Any:
        url = f"{self.base_url}/bot{request.account.access_token}/{method}"
        response = send(self.http, "POST", url, timeout_s=self.timeout_s, creates=True, **kwargs)
        body = json_body(response)
        if isinstance(body, dict) and body.get("ok") is True:
            return body.get("result")
        if not isinstance(body, dict):
            if response.status_code >= 500 or response.status_code < 400:
                raise PublishError(ErrorKind.transient, f"Telegram answered {method} with HTTP {response.status_code}",
                                   status_code=response.status_code)
            body = {"error_code": response.status_code, "description": response.text[:300]}
        raise _error(method, response.status_code, body)


def _error(method: str, status: int, body: dict[str, Any]) -> PublishError:
    code = int(body.get("error_code") or status)
    description = str(body.get("description") or "")
    parameters = body.get("parameters") or {}
    detail = f"{method}: HTTP {code}: {description}"[:600]
    if code == 429:
        retry = parameters.get("retry_after")
        return PublishError(ErrorKind.rate_limited, detail, float(retry) if retry is not None else None, code)
    if code in (401, 404):  # 401 Unauthorized / 404 Not Found: the bot token is wrong or revoked
        return PublishError(ErrorKind.auth, detail, status_code=code)
    if code == 403:  # the bot was removed from the channel or lost its right to post
        return PublishError(ErrorKind.auth, detail, status_code=code)
    if code == 400:
        if "migrate_to_chat_id" in parameters:  # a group became a supergroup: the chat_id setting must change
            moved = f"{detail} (the chat is now {parameters['migrate_to_chat_id']})"
            return PublishError(ErrorKind.permanent, moved, status_code=400)
        if "chat not found" in description.lower():
            return PublishError(ErrorKind.permanent, detail, status_code=400)
        return PublishError(ErrorKind.invalid_content, detail, status_code=400)
    if code >= 500:
        return PublishError(ErrorKind.transient, detail, status_code=code)
    return PublishError(ErrorKind.permanent, detail, status_code=code)


def _result(message: Any) -> PublishResult:
    if not isinstance(message, dict) or "message_id" not in message:
        raise PublishError(ErrorKind.transient, "Telegram answered without a message")
    chat = message.get("chat") or {}
    message_id = message["message_id"]
    if chat.get("username"):
        url = f"https://t.me/{chat['username']}/{message_id}"
    elif str(chat.get("id", "")).startswith("-100"):
        url = f"https://t.me/c/{str(chat['id'])[4:]}/{message_id}"
    else:
        url = None
    return PublishResult(f"{chat.get('id')}:{message_id}", url)
