"""Pinterest adapter: API v5, POST /v5/pins on the account's board (setting ``board_id``).

Docs followed:
- Create Pin: https://developers.pinterest.com/docs/api/v5/pins-create (board_id, title, description,
  note, media_source: ``image_url`` for one image, ``multiple_image_urls`` for a carousel of 2–5);
  creating boards and Pins needs scopes boards:read, pins:read, pins:write
  (https://developers.pinterest.com/docs/work-with-organic-content-and-users/create-boards-and-pins/).
- Video Pins: POST /v5/media {media_type: video} → media_id, upload_url and upload_parameters (an
  S3 form: every parameter as a field, the file last); GET /v5/media/{media_id} until ``succeeded``;
  then media_source ``video_id`` {media_id, cover_image_url or cover_image_key_frame_time}
  (https://developers.pinterest.com/docs/api/v5/media-create, …/media-get).
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
SSRF guard's check; a video is downloaded through the guard and uploaded (one video, and an image
with it becomes its cover; otherwise the first frame is).

Idempotency: Pinterest has no idempotency key. Each Pin carries a private ``note`` (visible to the
Pin's owner only) naming the attempt (``herald:<attempt key>``); reconcile pages through the board's
Pins (newest first, up to ``RECONCILE_PAGES`` pages) for that note: found, or provably not on the
board's newest Pins → None.
"""

from __future__ import annotations

from typing import Any

import httpx
from tenacity import Retrying, retry_if_result, stop_after_attempt, wait_fixed

from domain.post.platform_rules import MediaKind, MediaRef, split_title, utf16_length
from herald.net.safe_fetch import SafeFetcher
from processors.platforms.base import (
    Capabilities,
    ErrorKind,
    Pkce,
    PublishError,
    PublishRequest,
    PublishResult,
    RateBudget,
    Reconcile,
    TokenRefresh,
)
from processors.platforms.http_calls import (
    check_media_url,
    fetch_media,
    filename_of,
    http_error,
    json_body,
    send,
    setting,
)

DEFAULT_BASE = "https://api.pinterest.com"
DOC = "https://developers.pinterest.com/docs/api/v5/pins-create"
MAX_TITLE, MAX_DESCRIPTION, MAX_IMAGES = 100, 500, 5
RECONCILE_PAGES = 3
MEDIA_POLLS = 10
MEDIA_POLL_WAIT_S = 2.0
PAGE_SIZE = 100
SCOPES = ("boards:read", "pins:read", "pins:write")



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
    capabilities = Capabilities.from_rules(
        "pinterest", threads=False, reconcile=Reconcile.lookup, doc_url=DOC,
        notes="the first line is the title when the text has two or more; images by URL, a video uploaded; a private "
              "note herald:<attempt key> is looked for among the board's newest Pins")

    def __init__(self, http: httpx.Client, base_url: str = DEFAULT_BASE, timeout_s: float = 10,
                 media: SafeFetcher | None = None) -> None:
        self.http, self.base_url, self.timeout_s = http, base_url.rstrip("/"), timeout_s
        self.media = media or SafeFetcher(timeout_s=timeout_s, max_bytes=256 * 1024 * 1024)

    def publish(self, request: PublishRequest) -> PublishResult:
        board_id = setting(request.account.settings, "board_id", "Pinterest")
        title, description = split_title(request.text, title_optional=True)
        if utf16_length(title) > MAX_TITLE or utf16_length(description) > MAX_DESCRIPTION:
            raise PublishError(ErrorKind.invalid_content, f"Pinterest allows a title of {MAX_TITLE} and a "
                               f"description of {MAX_DESCRIPTION} characters")
        body: dict[str, Any] = {"board_id": board_id, "note": note_for(request.attempt_key),
                                "media_source": self._media_source(request)}
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

    def _media_source(self, request: PublishRequest) -> dict[str, Any]:
        urls = request.media_urls
        if not urls:
            raise PublishError(ErrorKind.invalid_content, "a Pin needs an image or a video")
        kinds = [MediaRef(u).resolved_kind for u in urls]
        videos = [u for u, k in zip(urls, kinds, strict=True) if k is MediaKind.video]
        if videos:
            images = [u for u, k in zip(urls, kinds, strict=True) if k is not MediaKind.video]
            if len(videos) > 1 or len(images) > 1:
                raise PublishError(ErrorKind.invalid_content, "a video Pin is one video, with at most one cover image")
            return self._video_source(request, videos[0], images[0] if images else None)
        if len(urls) > MAX_IMAGES:
            raise PublishError(ErrorKind.invalid_content, f"a Pin carousel holds at most {MAX_IMAGES} images")
        for url in urls:
            check_media_url(self.media, url)
        if len(urls) == 1:
            return {"source_type": "image_url", "url": urls[0]}
        return {"source_type": "multiple_image_urls", "items": [{"url": u} for u in urls]}

    def _video_source(self, request: PublishRequest, video_url: str, cover_url: str | None) -> dict[str, Any]:
        """Register an upload (POST /v5/media), POST the bytes to the S3 form it names, wait until
        Pinterest has processed them (tenacity), and name the media id as the Pin's source."""
        if cover_url is not None:
            check_media_url(self.media, cover_url)
        video = fetch_media(self.media, video_url)
        registered = self._ok(send(self.http, "POST", f"{self.base_url}/v5/media", timeout_s=self.timeout_s,
                                   creates=False, headers=self._auth(request), json={"media_type": "video"}))
        media_id, upload_url = str(registered["media_id"]), str(registered["upload_url"])
        fields = {str(k): str(v) for k, v in (registered.get("upload_parameters") or {}).items()}
        uploaded = send(self.http, "POST", upload_url, timeout_s=self.timeout_s, creates=False, data=fields,
                        files={"file": (filename_of(video_url, "video.mp4"), video.content, video.content_type)})
        if uploaded.status_code >= 300:
            kind = ErrorKind.transient if uploaded.status_code >= 500 else ErrorKind.invalid_content
            raise PublishError(kind, f"the video upload answered HTTP {uploaded.status_code}: {uploaded.text[:300]}")
        polling = Retrying(retry=retry_if_result(lambda m: m.get("status") in ("registered", "processing")),
                           stop=stop_after_attempt(MEDIA_POLLS), wait=wait_fixed(MEDIA_POLL_WAIT_S),
                           retry_error_callback=lambda state: state.outcome.result())
        status = polling(lambda: self._ok(send(self.http, "GET", f"{self.base_url}/v5/media/{media_id}",
                                               timeout_s=self.timeout_s, creates=False, headers=self._auth(request))))
        if status.get("status") == "failed":
            raise PublishError(ErrorKind.invalid_content, f"Pinterest could not process the video {video_url}")
        if status.get("status") != "succeeded":
            raise PublishError(ErrorKind.transient, f"Pinterest is still processing video media {media_id}")
        source: dict[str, Any] = {"source_type": "video_id", "media_id": media_id}
        if cover_url is not None:
            source["cover_image_url"] = cover_url
        else:
            source["cover_image_key_frame_time"] = 0
        return source

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
