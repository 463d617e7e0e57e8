"""X adapter: API v2 ``POST /2/tweets`` with a user's OAuth 2.0 token, media upload, and long texts
as a thread of replies.

Docs followed:
- Posting: https://docs.x.com/x-api/posts/create-post — ``POST https://api.x.com/2/tweets``, JSON
  ``text``, ``media.media_ids`` (up to 4 photos, 1 GIF or 1 video:
  https://docs.x.com/x-api/media/quickstart/best-practices), ``reply.in_reply_to_tweet_id``; 201 with
  ``data.id``. A thread is a chain of replies to one's own posts.
- Media: https://docs.x.com/x-api/media/upload-media — ``POST /2/media/upload``, multipart ``media``
  (the bytes) with ``media_category`` tweet_image, tweet_gif or tweet_video; the answer's
  ``data.id`` is the media id, and ``data.processing_info`` (videos, GIFs) is followed with
  ``GET /2/media/upload?command=STATUS&media_id=…`` until ``succeeded`` (tenacity).
- Reading back: https://docs.x.com/x-api/users/get-my-user (``GET /2/users/me``) and
  https://docs.x.com/x-api/posts/get-posts-by-user (``GET /2/users/{id}/tweets``, newest first,
  ``tweet.fields=referenced_tweets``); texts come back with links as t.co links and ``&``, ``<``,
  ``>`` HTML-escaped, so reconcile compares them with links and escapes normalised.
- Counting: https://docs.x.com/resources/fundamentals/counting-characters (280 weighted characters;
  domain/post/platform_rules.py ``x_weighted_length``).
- OAuth 2.0 Authorization Code with PKCE:
  https://docs.x.com/resources/fundamentals/authentication/oauth-2-0/authorization-code — authorize
  at ``https://x.com/i/oauth2/authorize`` with ``code_challenge`` (S256), exchange and refresh at
  ``POST https://api.x.com/2/oauth2/token`` (confidential clients authenticate with HTTP Basic);
  access tokens last two hours, ``offline.access`` gives a refresh token.
- Rate limits: https://docs.x.com/x-api/fundamentals/rate-limits — POST /2/tweets 100 requests per
  15 minutes per user and 10,000 per 24 hours per app; answers carry ``x-rate-limit-limit``,
  ``x-rate-limit-remaining`` and ``x-rate-limit-reset`` (epoch seconds), and a spent daily user cap
  ``x-user-limit-24hour-remaining: 0`` with ``x-user-limit-24hour-reset``.

Threads: a text over 280 weighted characters is split at whitespace into parts of at most 280
(a word longer than a post is cut between grapheme clusters); the first part carries the media, each
next part replies to the one before. The content rules (domain/post/platform_rules.py, X's
``thread_posts``) accept such a text at schedule time when it splits into at most 25 posts.

No idempotency key on X: once any part may have been posted, a failure is an unknown outcome, and
reconcile reads the user's recent posts, finds the parts already there (first part by text, each
next one by text and ``replied_to`` the one before) and posts only the missing rest. X refuses the
same text twice from one account (403 "duplicate content"): a publish refused so looks the post up
the same way and answers with it, since an earlier attempt whose answer was lost made it.
"""

from __future__ import annotations

import html
import re
import time
from typing import Any

import httpx
from tenacity import RetryError, Retrying, retry_if_result, stop_after_attempt, wait_fixed

from domain.post.platform_rules import X_WEIGHTED
from domain.post.platform_rules import thread_parts as rules_thread_parts
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
    classify_http_error,
    header,
)
from processors.platforms.http_call import call, check_content, download, json_of, media_kind

API_URL = "https://api.x.com"
AUTHORIZE_URL = "https://x.com/i/oauth2/authorize"
MAX_WEIGHT = 280
MAX_PARTS = 25
RECENT_POSTS = 100
STATUS_POLLS = 30
POLL_INTERVAL_S = 2.0
SCOPES = ("tweet.read", "tweet.write", "users.read", "media.write", "offline.access")
CATEGORY = {"image": "tweet_image", "gif": "tweet_gif", "video": "tweet_video"}
_URL = re.compile(r"https?://\S+")
DUPLICATE = "HTTP 403 duplicate content"


def thread_parts(text: str, limit: int = MAX_WEIGHT) -> list[str]:
    """The text as posts of at most ``limit`` weighted characters, split at whitespace (the same
    split the content rules count a thread's posts with)."""
    return rules_thread_parts(text, X_WEIGHTED, limit)


def classify_x_error(status_code: int, headers: Any, body_text: str) -> PublishError:
    if status_code == 403 and "duplicate content" in body_text:
        return PublishError(ErrorKind.invalid_content, f"{DUPLICATE}: {body_text[:500]}", status_code=status_code)
    error = classify_http_error(status_code, headers, body_text)
    if status_code == 429 and header(headers, "x-user-limit-24hour-remaining") == "0":
        daily = header(headers, "x-user-limit-24hour-reset")
        error.retry_after_s = _until(daily) if daily else error.retry_after_s
    return error


def _until(epoch: str) -> float | None:
    try:
        return max(0.0, float(epoch) - time.time())
    except ValueError:
        return None


def _normalised(text: str) -> str:
    return _URL.sub("<link>", html.unescape(text)).strip()


class XAdapter:
    platform = "x"
    rate_budgets = (RateBudget(100, 900.0, "account", "https://docs.x.com/x-api/fundamentals/rate-limits"),
                    RateBudget(10_000, 86_400.0, "app", "https://docs.x.com/x-api/fundamentals/rate-limits"))
    required_settings: tuple[str, ...] = ()
    capabilities = Capabilities.from_rules(
        "x", threads=True, reconcile=Reconcile.lookup, doc_url="https://docs.x.com/x-api/posts/create-post",
        notes="OAuth 2.0 with PKCE; a text over 280 weighted characters goes out as a thread of replies")

    def __init__(self, http: httpx.Client, base_url: str = API_URL, timeout_s: float = 10,
                 media: SafeFetcher | None = None, poll_interval_s: float = POLL_INTERVAL_S,
                 status_polls: int = STATUS_POLLS) -> None:
        self.http, self.base_url, self.timeout_s = http, base_url.rstrip("/"), timeout_s
        self.default_base_url = self.base_url  # where the token endpoint is (OAuth connect and refresh)
        self.media = media or SafeFetcher(timeout_s=timeout_s)
        self.poll_interval_s, self.status_polls = poll_interval_s, status_polls
        authorize = AUTHORIZE_URL if self.base_url == API_URL else f"{self.base_url}/i/oauth2/authorize"
        self.token_refresh = TokenRefresh(
            token_endpoint=lambda base: f"{(base or API_URL).rstrip('/')}/2/oauth2/token", tokens_expire=True,
            source="https://docs.x.com/resources/fundamentals/authentication/oauth-2-0/authorization-code",
            authorization_endpoint=lambda _: authorize, scopes=SCOPES, pkce=Pkce.required,
            client_auth=("client_secret_basic",),
            connect_source="https://docs.x.com/resources/fundamentals/authentication/oauth-2-0/authorization-code")

    def publish(self, request: PublishRequest) -> PublishResult:
        parts = self._parts(request)
        media_ids = [self._upload(request, url) for url in request.media_urls]
        try:
            head = self._tweet(request, parts[0], media_ids=media_ids)
        except PublishError as error:
            if not error.detail.startswith(DUPLICATE):
                raise
            # X refuses the same text twice from one account: an earlier attempt whose answer was
            # lost posted it. Take that post (and finish its thread) instead of failing.
            found = self.reconcile(request)
            if found is None:
                raise
            return found
        self._reply_chain(request, head, parts[1:])
        return PublishResult(head, _url(head))

    def reconcile(self, request: PublishRequest) -> PublishResult | None:
        parts = self._parts(request)
        me = json_of(self._get(request, "/2/users/me"), "GET /2/users/me").get("data") or {}
        timeline = json_of(self._get(request, f"/2/users/{me.get('id')}/tweets",
                                     params={"max_results": str(RECENT_POSTS), "tweet.fields": "referenced_tweets"}),
                           "GET /2/users/{id}/tweets")
        posts = [p for p in timeline.get("data") or [] if isinstance(p, dict)]
        head = _find(posts, parts[0], replying_to=None)
        if head is None:
            return None
        previous, done = head, 1
        for part in parts[1:]:
            found = _find(posts, part, replying_to=previous)
            if found is None:
                break
            previous, done = found, done + 1
        self._reply_chain(request, previous, parts[done:], already=done)
        return PublishResult(head, _url(head))

    def account_handle(self, instance_url: str | None, access_token: str) -> str:
        """``@username`` of the token's user, from GET /2/users/me (needs users.read)."""
        base = (instance_url or self.base_url).rstrip("/")
        response = call(self.http, "GET", f"{base}/2/users/me", timeout_s=self.timeout_s, classify=classify_x_error,
                        headers={"Authorization": f"Bearer {access_token}"})
        username = (json_of(response, "GET /2/users/me").get("data") or {}).get("username")
        if not isinstance(username, str) or not username:
            raise PublishError(ErrorKind.transient, "GET /2/users/me answered without a username")
        return f"@{username}"

    def _parts(self, request: PublishRequest) -> list[str]:
        check_content(self.platform, request.text, request.media_urls, skip=frozenset({"text_too_long"}))
        parts = thread_parts(request.text)
        if len(parts) > MAX_PARTS:
            raise PublishError(ErrorKind.invalid_content, f"{len(parts)} posts in a thread; Herald sends at most "
                               f"{MAX_PARTS}")
        return parts

    def _reply_chain(self, request: PublishRequest, previous: str, parts: list[str], already: int = 1) -> None:
        for i, part in enumerate(parts):
            try:
                previous = self._tweet(request, part, reply_to=previous)
            except PublishError as error:  # part of the thread is out: never start it again from the top
                raise PublishError(ErrorKind.unknown, f"thread part {already + i + 1} of {already + len(parts)} "
                                   f"failed after the first was posted: {error.detail}",
                                   error.retry_after_s, error.status_code) from None

    def _tweet(self, request: PublishRequest, text: str, *, media_ids: list[str] | None = None,
               reply_to: str | None = None) -> str:
        body: dict[str, Any] = {"text": text}
        if media_ids:
            body["media"] = {"media_ids": media_ids}
        if reply_to is not None:
            body["reply"] = {"in_reply_to_tweet_id": reply_to}
        response = call(self.http, "POST", f"{self.base_url}/2/tweets", timeout_s=self.timeout_s,
                        classify=classify_x_error, headers=_auth(request), json=body)
        created = json_of(response, "POST /2/tweets").get("data") or {}
        if "id" not in created:
            raise PublishError(ErrorKind.unknown, "POST /2/tweets answered without data.id")
        return str(created["id"])

    def _upload(self, request: PublishRequest, url: str) -> str:
        kind = media_kind(url)
        if kind not in CATEGORY:
            raise PublishError(ErrorKind.invalid_content, f"X takes images, GIFs and videos, not {url}")
        media = download(self.media, url)
        response = call(self.http, "POST", f"{self.base_url}/2/media/upload", timeout_s=self.timeout_s, acts=False,
                        classify=classify_x_error, headers=_auth(request),
                        files={"media": (media.filename, media.content, media.content_type)},
                        data={"media_category": CATEGORY[kind], "media_type": media.content_type})
        uploaded = json_of(response, "POST /2/media/upload").get("data") or {}
        if "id" not in uploaded:
            raise PublishError(ErrorKind.transient, "POST /2/media/upload answered without data.id")
        media_id = str(uploaded["id"])
        if (uploaded.get("processing_info") or {}).get("state") not in (None, "succeeded"):
            self._await_processing(request, media_id)
        return media_id

    def _await_processing(self, request: PublishRequest, media_id: str) -> None:
        def state() -> str:
            answer = json_of(self._get(request, "/2/media/upload", params={"command": "STATUS", "media_id": media_id}),
                             "GET /2/media/upload STATUS")
            return str(((answer.get("data") or {}).get("processing_info") or {}).get("state"))

        poll = Retrying(retry=retry_if_result(lambda s: s in ("pending", "in_progress")),
                        wait=wait_fixed(self.poll_interval_s), stop=stop_after_attempt(self.status_polls))
        try:
            final = poll(state)
        except RetryError:
            raise PublishError(ErrorKind.transient, f"X is still processing media {media_id}") from None
        if final != "succeeded":
            raise PublishError(ErrorKind.invalid_content, f"X could not process media {media_id} ({final})")

    def _get(self, request: PublishRequest, path: str, **kwargs: Any) -> httpx.Response:
        return call(self.http, "GET", f"{self.base_url}{path}", timeout_s=self.timeout_s, classify=classify_x_error,
                    headers=_auth(request), **kwargs)


def _find(posts: list[dict[str, Any]], text: str, *, replying_to: str | None) -> str | None:
    wanted = _normalised(text)
    for post in reversed(posts):  # oldest first: the first post of a thread before a later repeat
        replied = [r.get("id") for r in post.get("referenced_tweets") or [] if r.get("type") == "replied_to"]
        if _normalised(str(post.get("text", ""))) == wanted and (replying_to is None or replying_to in replied):
            return str(post["id"])
    return None


def _auth(request: PublishRequest) -> dict[str, str]:
    return {"Authorization": f"Bearer {request.account.access_token}"}


def _url(post_id: str) -> str:
    return f"https://x.com/i/web/status/{post_id}"
