"""Generic outgoing webhook: a signed JSON POST to the account's URL (setting ``url``), for platforms
Herald does not know, following the Standard Webhooks specification.

Spec followed: https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
(https://www.standardwebhooks.com/):
- headers ``webhook-id`` (the message's unique id, the *same* on every retry of it, so receivers can
  drop duplicates: the idempotency key), ``webhook-timestamp`` (integer Unix seconds) and
  ``webhook-signature`` (``v1,<base64 HMAC-SHA256>`` over ``<id>.<timestamp>.<body>``, space-separated
  when several);
- the secret is ``whsec_`` + base64 of 24–64 random bytes; the HMAC key is the decoded bytes;
- the payload is ``{"type", "timestamp", "data"}``; a 2xx answer is delivery, 410 Gone asks the
  sender to stop (permanent), 429/5xx/timeouts are retried.

The secret is the account's sealed ``access_token``, never a setting. The URL is the client's, so
every delivery goes through the SSRF guard (herald/net/safe_fetch.py): the host is resolved and
every address checked, the connection pinned to the checked address (Host and TLS SNI keep the
name), redirects not followed, proxies from the environment ignored.

Payload: ``type`` ``post.publish``, ``data`` = {attempt_key, account (handle), text, media_urls}. The
receiver may answer JSON ``{"id": …, "url": …}`` to name what it made; otherwise the webhook-id
stands for the post.

Reconcile: the webhook-id is derived from the attempt key, so reconciling re-delivers the same
message with the same id; a receiver following the spec recognises it and does not act twice. That
is the receiver's promise, not Herald's: one that ignores webhook-id may act twice.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime

import httpx

from herald.net.safe_fetch import FetchRefused, SafeFetcher
from processors.platforms.base import (
    Capabilities,
    ErrorKind,
    PublishError,
    PublishRequest,
    PublishResult,
    RateBudget,
    Reconcile,
)
from processors.platforms.http_calls import http_error, json_body, send, setting

DOC = "https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md"
MAX_BODY_TEXT = 100_000  # Herald's own cap: the receiver's limits are unknown
EVENT_TYPE = "post.publish"



def message_id(attempt_key: str) -> str:
    return "msg_" + hashlib.sha256(attempt_key.encode()).hexdigest()[:32]


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret; a malformed secret is an auth problem (reconnect)."""
    if not secret.startswith("whsec_"):
        raise PublishError(ErrorKind.auth, "the webhook secret is not a whsec_ secret")
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        raise PublishError(ErrorKind.auth, "the webhook secret is not valid base64 after whsec_") from None
    if not key:
        raise PublishError(ErrorKind.auth, "the webhook secret is empty")
    return key


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = msg_id.encode() + b"." + str(timestamp).encode() + b"." + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


class WebhookAdapter:
    platform = "webhook"
    rate_budgets: tuple[RateBudget, ...] = ()  # the receiver's limits are not known; 429s are honoured
    token_refresh = None  # a shared secret, no OAuth
    required_settings: tuple[str, ...] = ("url",)
    capabilities = Capabilities.from_rules(
        "webhook", threads=False, reconcile=Reconcile.idempotency_key, doc_url=DOC,
        media_kinds=("file", "gif", "image", "video"),
        notes="a Standard Webhooks signed JSON POST to the url setting (media as URLs); the whsec_ secret is the "
              "sealed access_token; reconcile re-delivers with the same webhook-id, which the spec makes the receiver's "
              "idempotency key")

    def __init__(self, http: httpx.Client | None = None, timeout_s: float = 10, guard: SafeFetcher | None = None,
                 clock=time.time) -> None:
        # Proxies would connect on our behalf, unchecked: a client of our own ignores them.
        self.http = http or httpx.Client(trust_env=False, follow_redirects=False)
        self.timeout_s = timeout_s
        self.guard = guard or SafeFetcher(timeout_s=timeout_s)
        self.clock = clock

    def publish(self, request: PublishRequest) -> PublishResult:
        url = setting(request.account.settings, "url", "webhook")
        key = secret_key(request.account.access_token)
        if len(request.text) > MAX_BODY_TEXT:
            raise PublishError(ErrorKind.invalid_content, f"Herald sends at most {MAX_BODY_TEXT} characters by webhook")
        msg_id = message_id(request.attempt_key)
        timestamp = int(self.clock())
        body = json.dumps({"type": EVENT_TYPE,
                           "timestamp": datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z"),
                           "data": {"attempt_key": request.attempt_key, "account": request.account.handle,
                                    "text": request.text, "media_urls": list(request.media_urls)}},
                          separators=(",", ":"), ensure_ascii=False).encode()
        headers = {"content-type": "application/json", "webhook-id": msg_id, "webhook-timestamp": str(timestamp),
                   "webhook-signature": sign(key, msg_id, timestamp, body)}
        response = self._post(url, headers, body)
        if 300 <= response.status_code < 400:
            raise PublishError(ErrorKind.permanent, f"the webhook answered a redirect (HTTP {response.status_code}); "
                               "webhooks are not redirected", status_code=response.status_code)
        if response.status_code == 410:
            raise PublishError(ErrorKind.permanent, "the webhook answered 410 Gone: it asks not to be called again",
                               status_code=410)
        if response.status_code >= 400:
            raise http_error(response)
        answer = json_body(response)
        answer = answer if isinstance(answer, dict) else {}
        post_id = answer.get("id")
        link = answer.get("url")
        return PublishResult(str(post_id) if post_id not in (None, "") else msg_id,
                             link if isinstance(link, str) else None)

    def reconcile(self, request: PublishRequest) -> PublishResult | None:
        # Same webhook-id: a receiver following the spec drops it as a duplicate and answers 2xx.
        return self.publish(request)

    def _post(self, url: str, headers: dict[str, str], body: bytes) -> httpx.Response:
        try:
            parsed, address = self.guard.check(url)
        except FetchRefused as refused:
            kind = ErrorKind.transient if refused.reason == "unresolvable" else ErrorKind.permanent
            raise PublishError(kind, f"the webhook URL is refused: {refused}") from None
        host = parsed.host if parsed.port is None else f"{parsed.host}:{parsed.port}"
        pinned = str(parsed.copy_with(host=str(address)))
        extensions = {"sni_hostname": parsed.host} if parsed.scheme == "https" else {}
        return send(self.http, "POST", pinned, timeout_s=self.timeout_s, creates=True,
                    headers={**headers, "host": host}, content=body, extensions=extensions, follow_redirects=False)
