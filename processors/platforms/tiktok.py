"""TikTok adapter: the Content Posting API, direct post of one video or of photos.

Docs followed:
- Direct post: https://developers.tiktok.com/doc/content-posting-api-reference-direct-post
  1. POST /v2/post/publish/creator_info/query/ → privacy_level_options (the post's privacy level must
     be one of them); 2. POST /v2/post/publish/video/init/ with post_info (title = the caption,
     ≤ 2,200 UTF-16 units; privacy_level) and source_info: FILE_UPLOAD (video_size, chunk_size,
     total_chunk_count) → publish_id + upload_url, or PULL_FROM_URL (video_url on a domain verified
     for the app) → publish_id. Each user token: 6 init requests a minute.
- Media transfer: https://developers.tiktok.com/doc/content-posting-api-media-transfer-guide (PUT
  each chunk to upload_url with ``Content-Range: bytes first-last/total`` and Content-Type
  video/mp4; chunks of 5–64 MB, the last one taking the remainder, a video under 5 MB in one chunk;
  206 for a partial upload, 201 when complete).
- Status: https://developers.tiktok.com/doc/content-posting-api-reference-get-video-status (POST
  /v2/post/publish/status/fetch/ {publish_id} → PROCESSING_UPLOAD, PROCESSING_DOWNLOAD,
  SEND_TO_USER_INBOX, PUBLISH_COMPLETE (publicaly_available_post_id once moderated) or FAILED
  with fail_reason; 30 requests a minute per token).
- Photo posts: https://developers.tiktok.com/doc/content-posting-api-reference-photo-post (POST
  /v2/post/publish/content/init/ with media_type PHOTO, post_mode DIRECT_POST, post_info.description
  ≤ 4,000 and source_info PULL_FROM_URL photo_images, 1–35 JPEG or WebP URLs on a verified domain,
  photo_cover_index). Herald sends the text as the description (held to 2,200 like a caption).
- Errors: every answer carries ``error: {code, message, log_id}``; code ``ok`` is success, otherwise
  e.g. access_token_invalid / scope_not_authorized (401), rate_limit_exceeded (429),
  spam_risk_too_many_posts, privacy_level_option_mismatch, url_ownership_unverified, invalid_param.
- OAuth: https://developers.tiktok.com/doc/oauth-user-access-token-management (authorize at
  https://www.tiktok.com/v2/auth/authorize/, tokens at https://open.tiktokapis.com/v2/oauth/token/
  with ``client_key`` and client_secret in the form; access tokens last 24 hours, refresh tokens a
  year), scopes user.info.basic and video.publish.

Settings (optional): ``privacy_level`` (default SELF_ONLY, the only level unaudited apps may post
with) and ``source`` (FILE_UPLOAD, the default: Herald downloads the video through the SSRF guard
and uploads it; PULL_FROM_URL: TikTok fetches the URL, which must be on a domain verified for
Herald's app). Photo posts always use PULL_FROM_URL (the only source TikTok takes for photos).

After the upload, the status is polled briefly (tenacity). TikTok only names the post once
moderation is done, which can take hours: a post still processing is reported with its publish_id
as the platform post id.

Reconcile: TikTok has no idempotency key or look-up by client key. The publish_id of each attempt
is remembered in this process; reconcile fetches its status (completed or processing → the post;
FAILED or an upload that never finished → provably not posted). Without it (another process, a
restart) the adapter cannot tell and says so (transient).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any

import httpx
from tenacity import Retrying, retry_if_exception_type, retry_if_result, stop_after_attempt, wait_fixed

from domain.post.platform_rules import MediaKind, MediaRef, utf16_length
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
from processors.platforms.http_calls import check_media_url, fetch_media, http_error, json_body, send

DEFAULT_BASE = "https://open.tiktokapis.com"
DOC = "https://developers.tiktok.com/doc/content-posting-api-reference-direct-post"
OAUTH_DOC = "https://developers.tiktok.com/doc/oauth-user-access-token-management"
MAX_CAPTION = 2200
MAX_PHOTOS = 35
PHOTO_FORMATS = ("jpg", "jpeg", "webp")
MIN_CHUNK, CHUNK_SIZE = 5 * 1024 * 1024, 10 * 1024 * 1024
CHUNK_ATTEMPTS = 3
CHUNK_WAIT_S = 0.5
STATUS_POLLS = 5
STATUS_WAIT_S = 2.0
KEPT = 1000
SCOPES = ("user.info.basic", "video.publish")


_PROCESSING = {"PROCESSING_UPLOAD", "PROCESSING_DOWNLOAD", "SEND_TO_USER_INBOX"}
_RATE = {"rate_limit_exceeded", "spam_risk_too_many_pending_share", "reached_active_user_cap"}
_AUTH = {"access_token_invalid", "scope_not_authorized", "scope_permission_missed", "auth_removed"}
_INVALID = {"invalid_param", "file_format_check_failed", "duration_check_failed", "frame_rate_check_failed",
            "picture_size_check_failed", "video_pull_failed", "invalid_file_upload"}
_PERMANENT = {"spam_risk_too_many_posts", "spam_risk_user_banned_from_posting", "privacy_level_option_mismatch",
              "url_ownership_unverified", "unaudited_client_can_only_post_to_private_accounts"}


class _Retry(Exception):
    """A chunk did not arrive (5xx or no answer): send it again."""


class TikTokAdapter:
    platform = "tiktok"
    rate_budgets = (RateBudget(6, 60.0, "account", DOC),)
    token_refresh = TokenRefresh(
        token_endpoint=lambda _: f"{DEFAULT_BASE}/v2/oauth/token/", tokens_expire=True, source=OAUTH_DOC,
        authorization_endpoint=lambda _: "https://www.tiktok.com/v2/auth/authorize/", scopes=SCOPES, pkce=Pkce.none,
        client_auth=("client_secret_post",), connect_source="https://developers.tiktok.com/doc/login-kit-web")
    required_settings: tuple[str, ...] = ()
    capabilities = Capabilities.from_rules(
        "tiktok", threads=False, reconcile=Reconcile.lookup, doc_url=DOC, optional_settings=("privacy_level", "source"),
        notes="direct post of one video (uploaded, or pulled from its URL) or 1-35 photos; SELF_ONLY unless "
              "privacy_level says otherwise; reconcile by publish_id only in the process that made the attempt")

    def __init__(self, http: httpx.Client, base_url: str = DEFAULT_BASE, timeout_s: float = 60,
                 media: SafeFetcher | None = None) -> None:
        self.http, self.base_url, self.timeout_s = http, base_url.rstrip("/"), timeout_s
        self.media = media or SafeFetcher(timeout_s=timeout_s, max_bytes=512 * 1024 * 1024, content_types=("video/",))
        self._attempts: OrderedDict[str, tuple[str, int | None]] = OrderedDict()  # key → (publish_id, size)
        self._lock = threading.Lock()

    def publish(self, request: PublishRequest) -> PublishResult:
        photos = self._check(request)
        settings = request.account.settings
        privacy = settings.get("privacy_level") or "SELF_ONLY"
        source = settings.get("source") or "FILE_UPLOAD"
        if source not in ("FILE_UPLOAD", "PULL_FROM_URL"):
            raise PublishError(ErrorKind.permanent, "TikTok source setting must be FILE_UPLOAD or PULL_FROM_URL")
        creator = self._api(request, "/v2/post/publish/creator_info/query/", None, creates=False)
        options = creator.get("privacy_level_options") or []
        if privacy not in options:
            raise PublishError(ErrorKind.permanent, f"privacy level {privacy} is not one this creator may post with "
                               f"({', '.join(options)})")
        if photos:
            for url in request.media_urls:
                check_media_url(self.media, url)
            init = self._api(request, "/v2/post/publish/content/init/", creates=True, body={
                "post_info": {"description": request.text, "privacy_level": privacy},
                "source_info": {"source": "PULL_FROM_URL", "photo_cover_index": 0,
                                "photo_images": list(request.media_urls)},
                "post_mode": "DIRECT_POST", "media_type": "PHOTO"})
            self._remember(request.attempt_key, str(init["publish_id"]), None)
            return self._settle(request, str(init["publish_id"]))
        url = request.media_urls[0]
        post_info = {"title": request.text, "privacy_level": privacy}
        if source == "PULL_FROM_URL":
            check_media_url(self.media, url)
            init = self._api(request, "/v2/post/publish/video/init/", creates=True, body={
                "post_info": post_info, "source_info": {"source": "PULL_FROM_URL", "video_url": url}})
            self._remember(request.attempt_key, str(init["publish_id"]), None)
        else:
            video = fetch_media(self.media, url)
            size = len(video.content)
            chunk = size if size < MIN_CHUNK else CHUNK_SIZE
            count = max(1, size // chunk)
            init = self._api(request, "/v2/post/publish/video/init/", creates=False, body={
                "post_info": post_info, "source_info": {"source": "FILE_UPLOAD", "video_size": size,
                                                        "chunk_size": chunk, "total_chunk_count": count}})
            self._remember(request.attempt_key, str(init["publish_id"]), size)
            self._upload(str(init["upload_url"]), video.content, video.content_type, chunk, count)
        return self._settle(request, str(init["publish_id"]))

    def reconcile(self, request: PublishRequest) -> PublishResult | None:
        with self._lock:
            kept = self._attempts.get(request.attempt_key)
        if kept is None:
            raise PublishError(ErrorKind.transient, "TikTok has no look-up by client key and this process holds no "
                               "publish_id for the attempt: cannot tell whether it was posted")
        publish_id, size = kept
        status = self._status(request, publish_id)
        state = status.get("status")
        if state == "FAILED":
            return None
        if state == "PROCESSING_UPLOAD" and size is not None and int(status.get("uploaded_bytes") or 0) < size:
            return None  # the bytes never all arrived: TikTok posts nothing, the upload URL expires
        return self._result(request, publish_id, status)

    # steps

    def _upload(self, upload_url: str, data: bytes, content_type: str, chunk: int, count: int) -> None:
        for index in range(count):
            first = index * chunk
            last = len(data) - 1 if index == count - 1 else first + chunk - 1
            final = index == count - 1

            def put() -> None:
                try:
                    response = send(self.http, "PUT", upload_url, timeout_s=self.timeout_s, creates=final,
                                    headers={"Content-Type": content_type,
                                             "Content-Range": f"bytes {first}-{last}/{len(data)}"},
                                    content=data[first:last + 1])
                except PublishError as error:
                    if error.kind is ErrorKind.unknown:
                        raise  # the last chunk may have completed the upload: that is reconcile's to find out
                    raise _Retry(error.detail) from None
                if response.status_code >= 500:
                    raise _Retry(f"HTTP {response.status_code}")
                if response.status_code not in (200, 201, 206):
                    raise self._error(response)

            retrying = Retrying(retry=retry_if_exception_type(_Retry), stop=stop_after_attempt(CHUNK_ATTEMPTS),
                                wait=wait_fixed(CHUNK_WAIT_S), reraise=True)
            try:
                retrying(put)
            except _Retry as error:
                raise PublishError(ErrorKind.transient, f"chunk {index + 1}/{count} did not upload: {error}") from None

    def _settle(self, request: PublishRequest, publish_id: str) -> PublishResult:
        polling = Retrying(retry=retry_if_result(lambda s: s.get("status") in _PROCESSING),
                           stop=stop_after_attempt(STATUS_POLLS), wait=wait_fixed(STATUS_WAIT_S),
                           retry_error_callback=lambda state: state.outcome.result())
        try:
            status = polling(self._status, request, publish_id)
        except PublishError as error:  # the post was handed over: asking again must not post it twice
            raise PublishError(ErrorKind.unknown, f"TikTok took the post ({publish_id}) but its status could not "
                               f"be read: {error.detail}") from None
        if status.get("status") == "FAILED":
            raise _failure(str(status.get("fail_reason") or "unknown"), f"TikTok failed the post: {status}")
        return self._result(request, publish_id, status)

    def _status(self, request: PublishRequest, publish_id: str) -> dict[str, Any]:
        return self._api(request, "/v2/post/publish/status/fetch/", creates=False, body={"publish_id": publish_id})

    def _result(self, request: PublishRequest, publish_id: str, status: dict[str, Any]) -> PublishResult:
        posted = status.get("publicaly_available_post_id") or []
        if status.get("status") == "PUBLISH_COMPLETE" and posted:
            post_id = str(posted[0])
            return PublishResult(post_id, f"https://www.tiktok.com/@{request.account.handle}/video/{post_id}")
        return PublishResult(publish_id, None)

    def _remember(self, key: str, publish_id: str, size: int | None) -> None:
        with self._lock:
            self._attempts[key] = (publish_id, size)
            while len(self._attempts) > KEPT:
                self._attempts.popitem(last=False)

    def _api(self, request: PublishRequest, path: str, body: dict[str, Any] | None, *, creates: bool) -> dict[str, Any]:
        response = send(self.http, "POST", f"{self.base_url}{path}", timeout_s=self.timeout_s, creates=creates,
                        headers={"Authorization": f"Bearer {request.account.access_token}",
                                 "Content-Type": "application/json; charset=UTF-8"},
                        content=b"" if body is None else json.dumps(body).encode())
        answer = json_body(response)
        error = (answer.get("error") or {}) if isinstance(answer, dict) else {}
        if response.status_code >= 400 or error.get("code") not in (None, "ok"):
            raise self._error(response)
        if not isinstance(answer, dict) or not isinstance(answer.get("data"), dict):
            raise PublishError(ErrorKind.transient, f"TikTok answered {path} without data")
        return answer["data"]

    @staticmethod
    def _error(response: httpx.Response) -> PublishError:
        answer = json_body(response)
        code = str(((answer.get("error") or {}) if isinstance(answer, dict) else {}).get("code") or "")
        detail = f"HTTP {response.status_code}: {response.text[:500]}"
        if code in _RATE:
            return http_error(response, kind=ErrorKind.rate_limited)
        if code in _AUTH:
            return http_error(response, kind=ErrorKind.auth)
        if code in _INVALID or code in _PERMANENT:
            return _failure(code, detail, response.status_code)
        return http_error(response)

    @staticmethod
    def _check(request: PublishRequest) -> bool:
        """Whether this is a photo post (1–35 JPEG/WebP images) rather than one video; refuses anything else."""
        if utf16_length(request.text) > MAX_CAPTION:
            raise PublishError(ErrorKind.invalid_content, f"TikTok captions hold at most {MAX_CAPTION} characters")
        kinds = {MediaRef(u).resolved_kind for u in request.media_urls}
        if kinds == {MediaKind.image}:
            if len(request.media_urls) > MAX_PHOTOS:
                raise PublishError(ErrorKind.invalid_content, f"a TikTok photo post holds at most {MAX_PHOTOS} photos")
            wrong = [u for u in request.media_urls if _extension(u) not in PHOTO_FORMATS]
            if wrong:
                raise PublishError(ErrorKind.invalid_content, f"TikTok takes photos as JPEG or WebP only: {wrong[:3]}")
            return True
        if len(request.media_urls) != 1 or not kinds <= {MediaKind.video, MediaKind.unknown}:
            raise PublishError(ErrorKind.invalid_content, "a TikTok post is one video or 1–35 photos")
        return False

def _extension(url: str) -> str:
    name = url.split("?", 1)[0].rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def _failure(code: str, detail: str, status_code: int | None = None) -> PublishError:
    if code in _AUTH:
        return PublishError(ErrorKind.auth, detail, status_code=status_code)
    if code in _INVALID:
        return PublishError(ErrorKind.invalid_content, detail, status_code=status_code)
    if code in _PERMANENT:
        return PublishError(ErrorKind.permanent, detail, status_code=status_code)
    return PublishError(ErrorKind.transient, detail, status_code=status_code)
