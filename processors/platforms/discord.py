"""Discord adapter: execute a channel webhook, POST /webhooks/{webhook.id}/{webhook.token}?wait=true.

Docs followed:
- Execute Webhook: https://discord.com/developers/docs/resources/webhook#execute-webhook (``wait=true``
  makes Discord confirm the message and answer it, instead of 204; ``content`` up to 2,000
  characters; files as multipart ``files[n]`` with ``payload_json`` naming them in ``attachments``,
  up to 10; ``allowed_mentions`` — Herald sends ``{"parse": []}`` so a scheduled post never pings
  @everyone or roles by accident).
- Uploading files: https://discord.com/developers/docs/reference#uploading-files.
- Rate limits: https://discord.com/developers/docs/topics/rate-limits (``X-RateLimit-Limit``,
  ``-Remaining``, ``-Reset`` (epoch seconds), ``-Reset-After``, ``-Bucket``; a 429 carries
  ``Retry-After`` and a JSON body with ``retry_after`` seconds and ``global``). Discord documents no
  per-route numbers and asks clients to read the headers; the budget declared here (5 per 2 s per
  webhook) is the bucket those headers report for webhook executes.
- Errors: ``{"code", "message"}`` JSON error codes
  (https://discord.com/developers/docs/topics/opcodes-and-status-codes#json): 10015 Unknown Webhook
  (404) and 50027 Invalid Webhook Token (401) mean the webhook is gone: reconnect; 50035 Invalid
  Form Body (400) is invalid content.

The webhook URL (or ``{id}/{token}``) is the account's secret ``access_token``; only its id and token
are used, always against Discord's API host (the constructor's ``base_url``), so a stored URL can
never point the adapter elsewhere. No OAuth: ``token_refresh`` is None.

Reconcile: webhook executes have no idempotency key or nonce, and a webhook can read back only a
message whose id it knows. After an unknown outcome the adapter cannot tell whether the message was
posted, and says so (transient).
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from domain.post.platform_rules import utf16_length
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
from processors.platforms.http_calls import fetch_media, filename_of, http_error, json_body, seconds, send

DEFAULT_BASE = "https://discord.com/api/v10"
DOC = "https://discord.com/developers/docs/resources/webhook#execute-webhook"
MAX_CONTENT, MAX_FILES = 2000, 10


_WEBHOOK = re.compile(r"(?:^|/webhooks/)(\d{5,25})/([A-Za-z0-9_.\-]{10,})/?$")
_GONE = {10015, 50027}


def webhook_parts(secret: str) -> tuple[str, str]:
    """(id, token) from a webhook URL or ``id/token``; never echoes the secret in an error."""
    match = _WEBHOOK.search(secret.strip().split("?", 1)[0])
    if match is None:
        raise PublishError(ErrorKind.auth, "the account's Discord webhook is not a webhook URL or id/token")
    return match.group(1), match.group(2)


class DiscordAdapter:
    platform = "discord"
    rate_budgets = (RateBudget(5, 2.0, "account", "https://discord.com/developers/docs/topics/rate-limits"),)
    token_refresh = None  # a webhook: nothing to refresh; a refused one needs a new webhook URL
    required_settings: tuple[str, ...] = ()
    capabilities = Capabilities.from_rules(
        "discord", threads=False, reconcile=Reconcile.none, doc_url=DOC, media_kinds=("file", "gif", "image", "video"),
        notes="webhook execute with wait=true; the webhook URL (or id/token) is the sealed access_token; no mentions "
              "are parsed; Discord has no idempotency key or look-up, so an unknown outcome goes to an admin")

    def __init__(self, http: httpx.Client, base_url: str = DEFAULT_BASE, timeout_s: float = 10,
                 media: SafeFetcher | None = None) -> None:
        self.http, self.base_url, self.timeout_s = http, base_url.rstrip("/"), timeout_s
        self.media = media or SafeFetcher(timeout_s=timeout_s)

    def publish(self, request: PublishRequest) -> PublishResult:
        if utf16_length(request.text) > MAX_CONTENT:
            raise PublishError(ErrorKind.invalid_content, f"Discord messages hold at most {MAX_CONTENT} characters")
        if not request.text.strip() and not request.media_urls:
            raise PublishError(ErrorKind.invalid_content, "a Discord message needs content or files")
        if len(request.media_urls) > MAX_FILES:
            raise PublishError(ErrorKind.invalid_content, f"a Discord message takes at most {MAX_FILES} files")
        webhook_id, token = webhook_parts(request.account.access_token)
        payload: dict[str, Any] = {"content": request.text, "allowed_mentions": {"parse": []}}
        url = f"{self.base_url}/webhooks/{webhook_id}/{token}"
        if request.media_urls:
            files = []
            for index, media_url in enumerate(request.media_urls):
                media = fetch_media(self.media, media_url)
                files.append((f"files[{index}]", (filename_of(media_url, f"file{index}"), media.content,
                                                   media.content_type)))
            payload["attachments"] = [{"id": i, "filename": f[1][0]} for i, f in enumerate(files)]
            response = send(self.http, "POST", url, timeout_s=self.timeout_s, creates=True, params={"wait": "true"},
                            data={"payload_json": json.dumps(payload)}, files=files)
        else:
            response = send(self.http, "POST", url, timeout_s=self.timeout_s, creates=True, params={"wait": "true"},
                            json=payload)
        message = self._ok(response)
        guild = message.get("guild_id")
        link = f"https://discord.com/channels/{guild}/{message.get('channel_id')}/{message['id']}" if guild else None
        return PublishResult(str(message["id"]), link)

    def reconcile(self, request: PublishRequest) -> PublishResult | None:
        raise PublishError(ErrorKind.transient, "Discord webhooks have no idempotency key and cannot look a message "
                           "up without its id: cannot tell whether it was posted")

    @staticmethod
    def _ok(response: httpx.Response) -> dict[str, Any]:
        body = json_body(response)
        if response.status_code < 400:
            if not isinstance(body, dict) or "id" not in body:
                raise PublishError(ErrorKind.transient, f"Discord answered HTTP {response.status_code} without a "
                                   "message (was wait=true dropped?)")
            return body
        code = body.get("code") if isinstance(body, dict) else None
        if code in _GONE:  # the webhook was deleted or its token changed: the account must be reconnected
            raise PublishError(ErrorKind.auth, f"HTTP {response.status_code}: {response.text[:300]}",
                               status_code=response.status_code)
        retry = None
        if response.status_code == 429 and isinstance(body, dict):
            retry = seconds(str(body.get("retry_after"))) if body.get("retry_after") is not None else None
        raise http_error(response, retry)

