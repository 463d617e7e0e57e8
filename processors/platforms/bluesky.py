"""Bluesky adapter: the AT Protocol XRPC API of the account's PDS (default https://bsky.social).

Docs followed:
- Sessions: com.atproto.server.createSession (identifier + app password → accessJwt, refreshJwt,
  did) and com.atproto.server.refreshSession (Bearer refreshJwt), an expired access token being
  answered 400 ``ExpiredToken``: https://docs.bsky.app/docs/api/com-atproto-server-create-session,
  https://docs.bsky.app/docs/api/com-atproto-server-refresh-session
- Posting: com.atproto.repo.createRecord of an app.bsky.feed.post record (text, createdAt, facets,
  embed): https://docs.bsky.app/docs/advanced-guides/posts
- Rich text: facets address UTF-8 byte ranges (byteStart inclusive, byteEnd exclusive); links carry
  the URI, mentions the DID resolved with com.atproto.identity.resolveHandle:
  https://docs.bsky.app/docs/advanced-guides/post-richtext
- Images: com.atproto.repo.uploadBlob (raw bytes, Content-Type the MIME type), then an
  app.bsky.embed.images embed; at most 4 images of at most 1,000,000 bytes (lexicon
  app.bsky.embed.images).
- Video: https://docs.bsky.app/docs/tutorials/video, its "simple method": uploadBlob the file to the
  PDS and embed it as app.bsky.embed.video (≤ 100 MB, lexicon app.bsky.embed.video); the video
  service's pre-processing (getServiceAuth + app.bsky.video.uploadVideo) is not used, so a new post
  may show its video a few seconds late. A GIF is sent as an image (Bluesky's own app converts GIFs
  to video first; Herald does not transcode).
- Limits: 300 graphemes, 3000 UTF-8 bytes (lexicon app.bsky.feed.post; domain/post/platform_rules.py).
- Rate limits (https://docs.bsky.app/docs/advanced-guides/rate-limits): 5,000 points per hour and
  35,000 per day per account, a created record costing 3 (1,666 posts an hour, 11,666 a day);
  createSession 30 per 5 minutes and 300 a day per handle, so sessions are kept and refreshed, not
  re-created per post. 429 answers carry ``RateLimit-Reset`` (Unix seconds).

The account's secret (``access_token``) is an app password; its ``handle`` is the login identifier.
Herald's OAuth connect flow is not used (Bluesky's OAuth needs DPoP and PAR): ``token_refresh`` is
None and the session tokens live only in this process's memory.

Idempotency: the record key (rkey) is derived from the attempt key as a TID, so one destination
always writes the same record. Reconciling is then an exact look-up (com.atproto.repo.getRecord):
found, or ``RecordNotFound`` → provably not posted. A publish refused with 400 looks the rkey up
too, so a retry after a 5xx that had in fact posted returns that post. The TID's timestamp part comes from a hash, not
the clock (a fixed 2024 window); Bluesky orders feeds by createdAt, not by rkey.
"""

from __future__ import annotations

import hashlib
import re
import threading
from datetime import UTC, datetime
from typing import Any

import httpx
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

from domain.post.platform_rules import MediaKind, MediaRef, graphemes, utf8_length
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
from processors.platforms.http_calls import fetch_media, json_body, send, seconds_until_epoch

DEFAULT_PDS = "https://bsky.social"
COLLECTION = "app.bsky.feed.post"
MAX_GRAPHEMES = 300
MAX_BYTES = 3000
MAX_IMAGES = 4
MAX_IMAGE_BYTES = 1_000_000
MAX_VIDEO_BYTES = 100_000_000
DOC = "https://docs.bsky.app/docs/advanced-guides/posts"


# https://docs.bsky.app/docs/advanced-guides/post-richtext (its Python example, on UTF-8 bytes)
_MENTION = re.compile(rb"(?:^|[$|\W])(@(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+"
                      rb"[a-zA-Z](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)")
_URL = re.compile(rb"(?:^|[$|\W])(https?://(?:www\.)?[-a-zA-Z0-9@:%._+~#=]{1,256}\.[a-zA-Z0-9()]{1,6}\b"
                  rb"(?:[-a-zA-Z0-9()@:%_+.~#?&/=]*[-a-zA-Z0-9@%_+~#/=])?)")

_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
_TID_EPOCH_US = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z


def tid_for(attempt_key: str) -> str:
    """A valid TID (13 base32-sortable characters, top bit 0) that depends only on the attempt key."""
    h = int.from_bytes(hashlib.sha256(attempt_key.encode()).digest()[:8], "big")
    micros = _TID_EPOCH_US + (h >> 10) % (1 << 40)
    value = (micros << 10) | (h & 0x3FF)
    return "".join(_TID_ALPHABET[(value >> (5 * i)) & 31] for i in reversed(range(13)))


def facets(text: str, resolve: Any) -> list[dict[str, Any]]:
    """Link and mention facets with UTF-8 byte offsets; a handle that does not resolve gets none."""
    data = text.encode("utf-8")
    found: list[dict[str, Any]] = []
    for match in _URL.finditer(data):
        found.append({"index": {"byteStart": match.start(1), "byteEnd": match.end(1)},
                      "features": [{"$type": "app.bsky.richtext.facet#link", "uri": match.group(1).decode()}]})
    for match in _MENTION.finditer(data):
        did = resolve(match.group(1)[1:].decode())
        if did:
            found.append({"index": {"byteStart": match.start(1), "byteEnd": match.end(1)},
                          "features": [{"$type": "app.bsky.richtext.facet#mention", "did": did}]})
    return sorted(found, key=lambda f: f["index"]["byteStart"])


class _Expired(Exception):
    """The access token expired: refresh the session and try once more."""


class BlueskyAdapter:
    platform = "bluesky"
    rate_budgets = (RateBudget(1666, 3600.0, "account", "https://docs.bsky.app/docs/advanced-guides/rate-limits"),
                    RateBudget(11666, 86400.0, "account", "https://docs.bsky.app/docs/advanced-guides/rate-limits"))
    token_refresh = None  # app passwords; sessions are created and refreshed here, in memory
    required_settings: tuple[str, ...] = ()
    capabilities = Capabilities.from_rules(
        "bluesky", threads=False, reconcile=Reconcile.lookup, doc_url=DOC,
        notes="an app password (handle = login); links and mentions as facets; a GIF goes as an image; the record key "
              "derives from the attempt, so getRecord tells whether a post was made")

    def __init__(self, http: httpx.Client, base_url: str = DEFAULT_PDS, timeout_s: float = 10,
                 media: SafeFetcher | None = None) -> None:
        self.http, self.base_url, self.timeout_s = http, base_url.rstrip("/"), timeout_s
        self.media = media or SafeFetcher(timeout_s=timeout_s, max_bytes=MAX_VIDEO_BYTES)
        self._sessions: dict[str, tuple[str, dict[str, Any]]] = {}  # account id → (password digest, session)
        self._lock = threading.Lock()

    # the port

    def publish(self, request: PublishRequest) -> PublishResult:
        length, size = graphemes(request.text), utf8_length(request.text)
        if length > MAX_GRAPHEMES or size > MAX_BYTES:
            raise PublishError(ErrorKind.invalid_content, f"{length} graphemes, {size} bytes; Bluesky allows "
                               f"{MAX_GRAPHEMES} graphemes and {MAX_BYTES} bytes")
        if not request.text.strip() and not request.media_urls:
            raise PublishError(ErrorKind.invalid_content, "Bluesky needs text or media")
        kinds = {MediaRef(u).resolved_kind for u in request.media_urls}
        if MediaKind.video in kinds and len(request.media_urls) > 1:
            raise PublishError(ErrorKind.invalid_content, "a Bluesky post takes one video alone, or images")
        if len(request.media_urls) > MAX_IMAGES:
            raise PublishError(ErrorKind.invalid_content, f"Bluesky takes at most {MAX_IMAGES} images")
        return self._with_session(request, self._create)

    def reconcile(self, request: PublishRequest) -> PublishResult | None:
        return self._with_session(request, self._look_up)

    # steps

    def _create(self, request: PublishRequest, session: dict[str, Any]) -> PublishResult:
        base, auth = self._base(request), {"Authorization": f"Bearer {session['accessJwt']}"}
        record: dict[str, Any] = {"$type": COLLECTION, "text": request.text,
                                  "createdAt": datetime.now(UTC).isoformat().replace("+00:00", "Z")}
        found = facets(request.text, lambda handle: self._resolve(base, auth, handle))
        if found:
            record["facets"] = found
        if request.media_urls:
            blobs = [self._upload(base, auth, url) for url in request.media_urls]
            if str(blobs[0].get("mimeType", "")).startswith("video/"):
                record["embed"] = {"$type": "app.bsky.embed.video", "video": blobs[0]}
            else:
                record["embed"] = {"$type": "app.bsky.embed.images",
                                   "images": [{"alt": "", "image": blob} for blob in blobs]}
        rkey = tid_for(request.attempt_key)
        response = send(self.http, "POST", f"{base}/xrpc/com.atproto.repo.createRecord", timeout_s=self.timeout_s,
                        creates=True, headers=auth,
                        json={"repo": session["did"], "collection": COLLECTION, "rkey": rkey, "record": record})
        try:
            body = self._ok(response)
        except PublishError as refused:
            # A record at our rkey is ours: an earlier attempt that answered 5xx or nothing made it.
            if refused.status_code == 400:
                earlier = self._look_up(request, session)
                if earlier is not None:
                    return earlier
            raise
        return PublishResult(str(body["uri"]), _post_url(session, rkey))

    def _look_up(self, request: PublishRequest, session: dict[str, Any]) -> PublishResult | None:
        base, rkey = self._base(request), tid_for(request.attempt_key)
        response = send(self.http, "GET", f"{base}/xrpc/com.atproto.repo.getRecord", timeout_s=self.timeout_s,
                        creates=False, headers={"Authorization": f"Bearer {session['accessJwt']}"},
                        params={"repo": session["did"], "collection": COLLECTION, "rkey": rkey})
        body = json_body(response)
        if response.status_code == 400 and isinstance(body, dict) and body.get("error") == "RecordNotFound":
            return None
        body = self._ok(response)
        return PublishResult(str(body["uri"]), _post_url(session, rkey))

    def _upload(self, base: str, auth: dict[str, str], url: str) -> dict[str, Any]:
        media = fetch_media(self.media, url)
        video = media.content_type.startswith("video/")
        if not (video or media.content_type.startswith("image/")):
            raise PublishError(ErrorKind.invalid_content, f"media {url} is {media.content_type}")
        limit = MAX_VIDEO_BYTES if video else MAX_IMAGE_BYTES
        if len(media.content) > limit:
            raise PublishError(ErrorKind.invalid_content, f"media {url} is {len(media.content)} bytes; "
                               f"Bluesky takes {'videos' if video else 'images'} up to {limit}")
        response = send(self.http, "POST", f"{base}/xrpc/com.atproto.repo.uploadBlob", timeout_s=self.timeout_s,
                        creates=False, headers={**auth, "Content-Type": media.content_type}, content=media.content)
        return self._ok(response)["blob"]

    def _resolve(self, base: str, auth: dict[str, str], handle: str) -> str | None:
        response = send(self.http, "GET", f"{base}/xrpc/com.atproto.identity.resolveHandle", timeout_s=self.timeout_s,
                        creates=False, headers=auth, params={"handle": handle})
        if response.status_code == 400:  # an unknown handle stays plain text, as Bluesky's own client does
            return None
        did = self._ok(response).get("did")
        return did if isinstance(did, str) else None

    # sessions

    def _with_session(self, request: PublishRequest, step: Any) -> Any:
        def attempt() -> Any:
            return step(request, self._session(request))

        for_expired = Retrying(retry=retry_if_exception_type(_Expired), stop=stop_after_attempt(2),
                               before_sleep=lambda _: self._renew(request), reraise=True)
        try:
            return for_expired(attempt)
        except _Expired:
            raise PublishError(ErrorKind.auth, "Bluesky refused the session even after refreshing it") from None

    def _session(self, request: PublishRequest) -> dict[str, Any]:
        digest = hashlib.sha256(request.account.access_token.encode()).hexdigest()
        with self._lock:
            kept = self._sessions.get(request.account.account_id)
        if kept is not None and kept[0] == digest:
            return kept[1]
        response = send(self.http, "POST", f"{self._base(request)}/xrpc/com.atproto.server.createSession",
                        timeout_s=self.timeout_s, creates=False,
                        json={"identifier": request.account.handle, "password": request.account.access_token})
        session = self._ok(response)
        with self._lock:
            self._sessions[request.account.account_id] = (digest, session)
        return session

    def _renew(self, request: PublishRequest) -> None:
        """refreshSession with the refresh token; if that is refused too, a new session next time."""
        with self._lock:
            digest, session = self._sessions.pop(request.account.account_id, (None, None))
        if session is None:
            return
        response = send(self.http, "POST", f"{self._base(request)}/xrpc/com.atproto.server.refreshSession",
                        timeout_s=self.timeout_s, creates=False,
                        headers={"Authorization": f"Bearer {session['refreshJwt']}"})
        try:
            fresh = self._ok(response)
        except (_Expired, PublishError) as error:
            if isinstance(error, PublishError) and error.kind is not ErrorKind.auth:
                raise
            return
        with self._lock:
            self._sessions[request.account.account_id] = (digest, {**session, **fresh})

    # answers

    def _base(self, request: PublishRequest) -> str:
        return (request.account.instance_url or self.base_url).rstrip("/")

    def _ok(self, response: httpx.Response) -> dict[str, Any]:
        body = json_body(response)
        if response.status_code < 400:
            if not isinstance(body, dict):
                raise PublishError(ErrorKind.transient, f"Bluesky answered HTTP {response.status_code} without JSON")
            return body
        error = body.get("error") if isinstance(body, dict) else None
        detail = f"HTTP {response.status_code}: {response.text[:500]}"
        if response.status_code == 400 and error in ("ExpiredToken", "InvalidToken"):
            raise _Expired(detail)
        if response.status_code == 429:
            raise PublishError(ErrorKind.rate_limited, detail,
                               seconds_until_epoch(response.headers.get("ratelimit-reset")), 429)
        if response.status_code == 401 or error in ("AuthenticationRequired", "AccountTakedown"):
            raise PublishError(ErrorKind.auth, detail, status_code=response.status_code)
        if response.status_code in (400, 413):
            raise PublishError(ErrorKind.invalid_content, detail, status_code=response.status_code)
        if response.status_code >= 500:
            raise PublishError(ErrorKind.transient, detail, status_code=response.status_code)
        raise PublishError(ErrorKind.permanent, detail, status_code=response.status_code)


def _post_url(session: dict[str, Any], rkey: str) -> str:
    return f"https://bsky.app/profile/{session.get('handle') or session['did']}/post/{rkey}"
