"""YouTube adapter: the Data API v3 resumable upload of one video (videos.insert).

Docs followed:
- Resumable upload protocol: https://developers.google.com/youtube/v3/guides/using_resumable_upload_protocol
  Step 1: POST /upload/youtube/v3/videos?uploadType=resumable&part=snippet,status with the video
  resource as JSON and X-Upload-Content-Length / X-Upload-Content-Type; the session URL comes back
  in ``Location``. Step 2: PUT the bytes to it; 201 (or 200) answers the video resource. After an
  interruption (5xx, a dropped or timed-out PUT): PUT an empty body with ``Content-Range: bytes */N``;
  308 with ``Range: bytes=0-k`` says how much arrived (resume from k+1 with ``Content-Range:
  bytes k+1-(N-1)/N``), 200/201 says the upload completed and returns the video.
- The video resource: https://developers.google.com/youtube/v3/docs/videos (snippet.title ≤ 100
  characters, required; description ≤ 5000 bytes; neither may contain < or >; status.privacyStatus).
- Errors: https://developers.google.com/youtube/v3/docs/errors (``error.errors[].reason``:
  quotaExceeded / uploadLimitExceeded → rate limited; authError / 401 → auth; invalidTitle,
  invalidDescription, … 400 → invalid content).
- Quota: 10,000 units a day per project, videos.insert costs 1,600
  (https://developers.google.com/youtube/v3/determine_quota_cost): about 6 uploads a day per app.
- OAuth: https://developers.google.com/identity/protocols/oauth2/web-server (authorize at
  https://accounts.google.com/o/oauth2/v2/auth with access_type=offline for a refresh token, PKCE
  S256 supported; tokens at https://oauth2.googleapis.com/token; access tokens last one hour), scope
  https://www.googleapis.com/auth/youtube.upload.

Text: the first line is the title, the rest the description. Settings (optional):
``privacy_status`` (private, unlisted, public; default private — uploads by unverified API projects
are private anyway) and ``category_id`` (default 22, People & Blogs). The video is downloaded from
the post's media URL through the SSRF guard and streamed to YouTube in one PUT, resumed in-process
(tenacity) after interruptions.

Reconcile: YouTube has no idempotency key, and a video exists only once its upload completed. The
session URL of an interrupted upload is remembered in this process; reconcile asks that session
(completed → the video; incomplete → provably no video). Without it (another process, a restart)
it reads the channel's uploads playlist (channels.list mine=true → contentDetails.relatedPlaylists.
uploads, then playlistItems.list, 1 quota unit each; scope youtube.readonly) for a video with the
same title and description: found → that video; not found → cannot tell (transient), since a fresh
upload is listed only after a while. https://developers.google.com/youtube/v3/docs/channels/list,
https://developers.google.com/youtube/v3/docs/playlistItems/list
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import httpx
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_fixed

from domain.post.platform_rules import MediaKind, MediaRef, split_title, utf16_length, utf8_length
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
from processors.platforms.http_calls import fetch_media, http_error, json_body, send

DEFAULT_BASE = "https://www.googleapis.com"
DOC = "https://developers.google.com/youtube/v3/guides/using_resumable_upload_protocol"
OAUTH_DOC = "https://developers.google.com/identity/protocols/oauth2/web-server"
MAX_TITLE, MAX_DESCRIPTION_BYTES = 100, 5000
UPLOAD_ATTEMPTS = 4
RESUME_WAIT_S = 0.5
KEPT_SESSIONS = 1000
RECONCILE_UPLOADS = 25
# upload, and read the channel's own uploads back (reconcile)
SCOPES = ("https://www.googleapis.com/auth/youtube.upload", "https://www.googleapis.com/auth/youtube.readonly")
AUTHORIZE = "https://accounts.google.com/o/oauth2/v2/auth?access_type=offline&prompt=consent"


_RATE = {"quotaExceeded", "uploadLimitExceeded", "rateLimitExceeded", "userRateLimitExceeded"}


class _Interrupted(Exception):
    """The upload stopped short (5xx or no answer): ask the session how far it got, then resume."""


class YouTubeAdapter:
    platform = "youtube"
    rate_budgets = (RateBudget(6, 86400.0, "app", "https://developers.google.com/youtube/v3/determine_quota_cost"),)
    token_refresh = TokenRefresh(
        token_endpoint=lambda _: "https://oauth2.googleapis.com/token", tokens_expire=True, source=OAUTH_DOC,
        # access_type=offline (+ prompt=consent): Google grants a refresh token only then
        authorization_endpoint=lambda _: AUTHORIZE, scopes=SCOPES,
        pkce=Pkce.supported, client_auth=("client_secret_post", "client_secret_basic"), connect_source=OAUTH_DOC)
    required_settings: tuple[str, ...] = ()
    capabilities = Capabilities.from_rules(
        "youtube", threads=False, reconcile=Reconcile.lookup, doc_url=DOC,
        optional_settings=("privacy_status", "category_id"),
        notes="one video by resumable upload; the first line is the title; private unless privacy_status says "
              "otherwise; reconcile asks the upload session, else the channel's newest uploads")

    def __init__(self, http: httpx.Client, base_url: str = DEFAULT_BASE, timeout_s: float = 60,
                 media: SafeFetcher | None = None) -> None:
        self.http, self.base_url, self.timeout_s = http, base_url.rstrip("/"), timeout_s
        # videos are larger than the guard's default cap
        self.media = media or SafeFetcher(timeout_s=timeout_s, max_bytes=256 * 1024 * 1024, content_types=("video/",))
        self._sessions: OrderedDict[str, tuple[str, int]] = OrderedDict()  # attempt key → (session URL, size)
        self._lock = threading.Lock()

    def publish(self, request: PublishRequest) -> PublishResult:
        title, description = split_title(request.text)
        self._check(request, title, description)
        video = fetch_media(self.media, request.media_urls[0])
        if not video.content_type.startswith("video/"):
            raise PublishError(ErrorKind.invalid_content, f"media {request.media_urls[0]} is {video.content_type}")
        settings = request.account.settings
        resource = {"snippet": {"title": title, "description": description,
                                "categoryId": settings.get("category_id") or "22"},
                    "status": {"privacyStatus": settings.get("privacy_status") or "private",
                               "selfDeclaredMadeForKids": False}}
        auth = _auth(request)
        started = send(self.http, "POST", f"{self.base_url}/upload/youtube/v3/videos", timeout_s=self.timeout_s,
                       creates=False, params={"uploadType": "resumable", "part": "snippet,status"},
                       headers={**auth, "Content-Type": "application/json; charset=UTF-8",
                                "X-Upload-Content-Length": str(len(video.content)),
                                "X-Upload-Content-Type": video.content_type},
                       json=resource)
        if started.status_code != 200 or "location" not in started.headers:
            raise self._error(started)
        session_url = started.headers["location"]
        with self._lock:
            self._sessions[request.attempt_key] = (session_url, len(video.content))
            while len(self._sessions) > KEPT_SESSIONS:
                self._sessions.popitem(last=False)
        uploaded = self._upload(auth, session_url, video.content, video.content_type)
        with self._lock:
            self._sessions.pop(request.attempt_key, None)
        return _result(uploaded)

    def reconcile(self, request: PublishRequest) -> PublishResult | None:
        with self._lock:
            kept = self._sessions.get(request.attempt_key)
        if kept is None:
            return self._from_uploads(request)
        session_url, size = kept
        try:
            done, _ = self._status(_auth(request), session_url, size)
        except _Interrupted as interrupted:
            raise PublishError(ErrorKind.transient, f"the upload session did not answer: {interrupted}") from None
        if done is None:
            return None  # an incomplete upload is no video
        with self._lock:
            self._sessions.pop(request.attempt_key, None)
        return _result(done)

    def _from_uploads(self, request: PublishRequest) -> PublishResult:
        """Without the session: the channel's newest uploads, matched by title and description. Found
        is found; not found proves nothing (YouTube lists a video some time after its upload)."""
        title, description = split_title(request.text)
        auth = _auth(request)
        channels = self._get(auth, "/youtube/v3/channels", {"part": "contentDetails", "mine": "true"})
        items = channels.get("items") or []
        details = (items[0].get("contentDetails") or {}) if items else {}
        uploads = (details.get("relatedPlaylists") or {}).get("uploads")
        if not uploads:
            raise PublishError(ErrorKind.transient, "the channel has no uploads playlist: cannot tell")
        listed = self._get(auth, "/youtube/v3/playlistItems",
                           {"part": "snippet", "playlistId": uploads, "maxResults": RECONCILE_UPLOADS})
        for item in listed.get("items") or []:
            snippet = item.get("snippet") or {}
            video_id = (snippet.get("resourceId") or {}).get("videoId")
            if video_id and snippet.get("title") == title and (snippet.get("description") or "") == description:
                return _result({"id": video_id})
        raise PublishError(ErrorKind.transient, f"no video titled {title!r} among the channel's newest "
                           f"{RECONCILE_UPLOADS} uploads and no upload session in this process: cannot tell "
                           "whether it was uploaded")

    def _get(self, auth: dict[str, str], path: str, params: dict[str, Any]) -> dict[str, Any]:
        response = send(self.http, "GET", f"{self.base_url}{path}", timeout_s=self.timeout_s, creates=False,
                        headers=auth, params=params)
        body = json_body(response)
        if response.status_code >= 400 or not isinstance(body, dict):
            raise self._error(response)
        return body

    # the upload

    def _upload(self, auth: dict[str, str], session_url: str, data: bytes, content_type: str) -> dict[str, Any]:
        attempts = 0

        def put_rest() -> dict[str, Any]:
            nonlocal attempts
            attempts += 1
            offset = 0
            if attempts > 1:
                try:
                    done, offset = self._status(auth, session_url, len(data))
                except PublishError as error:  # bytes were sent before: the video may exist
                    raise PublishError(ErrorKind.unknown, f"after an interrupted upload: {error.detail}") from None
                if done is not None:
                    return done
            headers = {**auth, "Content-Type": content_type}
            if offset:
                headers["Content-Range"] = f"bytes {offset}-{len(data) - 1}/{len(data)}"
            try:
                response = send(self.http, "PUT", session_url, timeout_s=self.timeout_s, creates=True,
                                headers=headers, content=data[offset:])
            except PublishError as error:
                raise _Interrupted(error.detail) from None
            if response.status_code in (200, 201):
                return self._json(response)
            if response.status_code >= 500 or response.status_code == 308:
                raise _Interrupted(f"HTTP {response.status_code}")
            raise self._error(response)

        retrying = Retrying(retry=retry_if_exception_type(_Interrupted), stop=stop_after_attempt(UPLOAD_ATTEMPTS),
                            wait=wait_fixed(RESUME_WAIT_S), reraise=True)
        try:
            return retrying(put_rest)
        except _Interrupted as interrupted:
            raise PublishError(ErrorKind.unknown, f"the upload was interrupted ({interrupted}) and its session did not "
                               "say whether it completed: the video may exist") from None

    def _status(self, auth: dict[str, str], session_url: str, size: int) -> tuple[dict[str, Any] | None, int]:
        """(the video, size) when the upload completed, else (None, bytes received)."""
        try:
            response = send(self.http, "PUT", session_url, timeout_s=self.timeout_s, creates=False,
                            headers={**auth, "Content-Range": f"bytes */{size}"}, content=b"")
        except PublishError as error:
            raise _Interrupted(error.detail) from None
        if response.status_code in (200, 201):
            return self._json(response), size
        if response.status_code == 308:
            received = response.headers.get("range", "")  # "bytes=0-k"; absent: nothing arrived
            try:
                return None, int(received.rsplit("-", 1)[1]) + 1 if received else 0
            except (IndexError, ValueError):
                return None, 0
        if response.status_code >= 500:
            raise _Interrupted(f"status query: HTTP {response.status_code}")
        if response.status_code == 404:
            raise PublishError(ErrorKind.transient, "the upload session is gone: cannot tell whether it completed")
        raise self._error(response)

    # checks and answers

    @staticmethod
    def _check(request: PublishRequest, title: str, description: str) -> None:
        if len(request.media_urls) != 1 or MediaRef(request.media_urls[0]).resolved_kind not in (
                MediaKind.video, MediaKind.unknown):
            raise PublishError(ErrorKind.invalid_content, "a YouTube post is exactly one video")
        if not title:
            raise PublishError(ErrorKind.invalid_content, "YouTube needs a title: the text's first line")
        if utf16_length(title) > MAX_TITLE or utf8_length(description) > MAX_DESCRIPTION_BYTES:
            raise PublishError(ErrorKind.invalid_content, f"YouTube allows a title of {MAX_TITLE} characters and a "
                               f"description of {MAX_DESCRIPTION_BYTES} bytes")
        if any(c in request.text for c in "<>"):
            raise PublishError(ErrorKind.invalid_content, "YouTube titles and descriptions may not contain < or >")

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        body = json_body(response)
        if not isinstance(body, dict) or "id" not in body:
            raise PublishError(ErrorKind.transient, f"YouTube answered HTTP {response.status_code} without a video id")
        return body

    @staticmethod
    def _error(response: httpx.Response) -> PublishError:
        body = json_body(response)
        errors = (body.get("error") or {}).get("errors") or [] if isinstance(body, dict) else []
        reasons = {str(e.get("reason")) for e in errors if isinstance(e, dict)}
        if reasons & _RATE:
            return http_error(response, kind=ErrorKind.rate_limited)
        if "authError" in reasons:
            return http_error(response, kind=ErrorKind.auth)
        return http_error(response)


def _auth(request: PublishRequest) -> dict[str, str]:
    return {"Authorization": f"Bearer {request.account.access_token}"}


def _result(video: dict[str, Any]) -> PublishResult:
    return PublishResult(str(video["id"]), f"https://www.youtube.com/watch?v={video['id']}")
