"""Pinterest adapter: API v5, POST /v5/pins on the account's board (setting ``board_id``).

Docs followed:
- Create Pin: https://developers.pinterest.com/docs/api/v5/pins-create (board_id, title, description,
  note, media_source: ``image_url`` for one image, ``multiple_image_urls`` for a carousel of 2–5);
  creating boards and Pins needs scopes boards:read, pins:read, pins:write
  (https://developers.pinterest.com/docs/work-with-organic-content-and-users/create-boards-and-pins/).
- List Pins on board: GET /v5/boards/{board_id}/pins (``items``, ``bookmark`` for the next page).
- Rate limits: https://developers.pinterest.com/docs/reference/rate-limits/ (Standard access: 100
  requests per second per user per app across all endpoints; categories below that; Trial access
  1,000 a day per app). 429 answers are rate-limited (``Retry-After`` when given).
- OAuth: https://developers.pinterest.com/docs/getting-started/authentication-and-scopes/ (authorize
  at https://www.pinterest.com/oauth/, code and refresh-token grants at POST /v5/oauth/token with
  HTTP Basic client authentication; access tokens expire, refresh tokens too, later).
- Errors answer ``{"code": n, "message": ...}``: 401 auth, 400 invalid content, 404 (the board is
  gone or not the user's) permanent.

Text: the first line is the Pin title when the text has more than one line, the rest its description
(``split_title(title_optional=True)``, as domain/post/platform_rules.py counts it: title ≤ 100,
description ≤ 500). Media: images are passed to Pinterest by URL (Pinterest fetches them), after the
SSRF guard's check; a video Pin needs Pinterest's separate media-upload flow, which this adapter does
not do yet (refused as invalid content).

Idempotency: Pinterest has no idempotency key. Each Pin carries a private ``note`` (visible to the
Pin's owner only) naming the attempt (``herald:<attempt key>``); reconcile pages through the board's
Pins (newest first, up to ``RECONCILE_PAGES`` pages) for that note: found, or provably not on the
board's newest Pins → None.
"""

from __future__ import annotations

from typing import Any

import httpx

from domain.post.platform_rules import MediaKind, MediaRef, split_title, utf16_length
from herald.net.safe_fetch import SafeFetcher
from processors.platforms.base import (
    ErrorKind,
    Pkce,
    PublishError,
    PublishRequest,
    PublishResult,
    RateBudget,
    TokenRefresh,
)
from processors.platforms.http_calls import check_media_url, http_error, json_body, send, setting

DEFAULT_BASE = "https://api.pinterest.com"
DOC = "https://developers.pinterest.com/docs/api/v5/pins-create"
MAX_TITLE, MAX_DESCRIPTION, MAX_IMAGES = 100, 500, 5
RECONCILE_PAGES = 3
PAGE_SIZE = 100
SCOPES = ("boards:read", "pins:read", "pins:write")

CAPABILITIES = {"media_kinds": ["image"], "max_length": MAX_DESCRIPTION, "threads": False, "reconcile": True,
                "doc": DOC}


def note_for(attempt_key: str) -> str:
    return f"herald:{attempt_key}"


class PinterestAdapter:
    platform = "pinterest"
    rate_budgets = (RateBudget(100, 1.0, "account", "https://developers.pinterest.com/docs/reference/rate-limits/"),)
    token_refresh = TokenRefresh(
        token_endpoint=lambda _: f"{DEFAULT_BASE}/v5/oauth/token", tokens_expire=True,
        source="https://developers.pinterest.com/docs/getting-started/authentication-and-scopes/",
        authorization_endpoint=lambda _: "https://www.pinterest.com/oauth/", scopes=SCOPES, pkce=Pkce.none,
        client_auth=("client_secret_basic",),
        connect_source="https://developers.pinterest.com/docs/getting-started/authentication-and-scopes/")
    required_settings: tuple[str, ...] = ("board_id",)
    capabilities = CAPABILITIES

    def __init__(self, http: httpx.Client, base_url: str = DEFAULT_BASE, timeout_s: float = 10,
                 media: SafeFetcher | None = None) -> None:
        self.http, self.base_url, self.timeout_s = http, base_url.rstrip("/"), timeout_s
        self.media = media or SafeFetcher(timeout_s=timeout_s)

    def publish(self, request: PublishRequest) -> PublishResult:
        board_id = setting(request.account.settings, "board_id", "Pinterest")
        title, description = split_title(request.text, title_optional=True)
        if utf16_length(title) > MAX_TITLE or utf16_length(description) > MAX_DESCRIPTION:
            raise PublishError(ErrorKind.invalid_content, f"Pinterest allows a title of {MAX_TITLE} and a "
                               f"description of {MAX_DESCRIPTION} characters")
        body: dict[str, Any] = {"board_id": board_id, "note": note_for(request.attempt_key),
                                "media_source": self._media_source(request.media_urls)}
        if title:
            body["title"] = title
        if description:
            body["description"] = description
        response = send(self.http, "POST", f"{self.base_url}/v5/pins", timeout_s=self.timeout_s, creates=True,
                        headers=self._auth(request), json=body)
        pin = self._ok(response)
        return _result(pin)

    def reconcile(self, request: PublishRequest) -> PublishResult | None:
        board_id = setting(request.account.settings, "board_id", "Pinterest")
        note, bookmark = note_for(request.attempt_key), None
        for _ in range(RECONCILE_PAGES):
            params: dict[str, Any] = {"page_size": PAGE_SIZE}
            if bookmark:
                params["bookmark"] = bookmark
            response = send(self.http, "GET", f"{self.base_url}/v5/boards/{board_id}/pins", timeout_s=self.timeout_s,
                            creates=False, headers=self._auth(request), params=params)
            page = self._ok(response)
            for pin in page.get("items") or []:
                if pin.get("note") == note:
                    return _result(pin)
            bookmark = page.get("bookmark")
            if not bookmark:
                return None
        raise PublishError(ErrorKind.transient, f"no Pin with note {note!r} among the board's newest "
                           f"{RECONCILE_PAGES * PAGE_SIZE}; cannot tell whether it was posted")

    def _media_source(self, urls: tuple[str, ...]) -> dict[str, Any]:
        if not urls:
            raise PublishError(ErrorKind.invalid_content, "a Pin needs an image")
        if any(MediaRef(u).resolved_kind not in (MediaKind.image, MediaKind.gif, MediaKind.unknown) for u in urls):
            raise PublishError(ErrorKind.invalid_content, "video Pins are not supported by this adapter yet")
        if len(urls) > MAX_IMAGES:
            raise PublishError(ErrorKind.invalid_content, f"a Pin carousel holds at most {MAX_IMAGES} images")
        for url in urls:
            check_media_url(self.media, url)
        if len(urls) == 1:
            return {"source_type": "image_url", "url": urls[0]}
        return {"source_type": "multiple_image_urls", "items": [{"url": u} for u in urls]}

    @staticmethod
    def _auth(request: PublishRequest) -> dict[str, str]:
        return {"Authorization": f"Bearer {request.account.access_token}"}

    @staticmethod
    def _ok(response: httpx.Response) -> dict[str, Any]:
        body = json_body(response)
        if response.status_code < 400:
            if not isinstance(body, dict):
                raise PublishError(ErrorKind.transient, f"Pinterest answered HTTP {response.status_code} without JSON")
            return body
        if response.status_code == 404:  # the board is gone, or not this user's
            raise http_error(response, kind=ErrorKind.permanent)
        raise http_error(response)


def _result(pin: dict[str, Any]) -> PublishResult:
    pin_id = str(pin["id"])
    return PublishResult(pin_id, f"https://www.pinterest.com/pin/{pin_id}/")
