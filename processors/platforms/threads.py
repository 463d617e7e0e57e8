"""Threads adapter: the Threads API's two-step publishing (host graph.threads.net).

Docs followed:
- https://developers.facebook.com/docs/threads/posts: "Publishing a single image, video, or text
  post is a two-step process": ``POST /{threads-user-id}/threads`` creates a media container
  (``media_type`` TEXT, IMAGE or VIDEO, ``text``, ``image_url`` / ``video_url`` on a public server,
  which Threads fetches), then ``POST /{threads-user-id}/threads_publish`` with ``creation_id``.
  Carousels: item containers with ``is_carousel_item=true``, then a ``media_type=CAROUSEL``
  container with ``children`` and the text. Text posts are limited to 500 characters, "emojis are
  counted as the number of UTF-8 bytes" (domain/post/platform_rules.py counts so).
- https://developers.facebook.com/documentation/threads/reference/publishing: the parameters, and
  ``GET /{container-id}?fields=status,error_message`` (IN_PROGRESS, FINISHED, ERROR, EXPIRED,
  PUBLISHED), polled (tenacity) until FINISHED before publishing.
- Rate limit: 250 API-published posts per profile in 24 hours
  (https://developers.facebook.com/docs/threads/overview#rate-limiting). Errors: Graph-style bodies,
  processors/platforms/graph.py.

Settings: ``threads_user_id`` (required). Tokens: Threads long-lived tokens (60 days) are renewed
with ``GET /refresh_access_token?grant_type=th_refresh_token``, not the RFC 6749 refresh grant
Herald's refresher speaks, so Herald does not refresh them: a refused token marks the account
``needs_reconnect`` (renewing them is not done; see docs/platforms.md).

No idempotency key: reconcile reads the profile's recent threads (GET /{threads-user-id}/threads
with text) and takes the one with this text.
"""

from __future__ import annotations

from typing import Any

import httpx

from processors.platforms.base import (
    Capabilities,
    ErrorKind,
    PublishError,
    PublishRequest,
    PublishResult,
    RateBudget,
    Reconcile,
)
from processors.platforms.graph import classify_graph_error, wait_until_ready
from processors.platforms.http_call import call, check_content, json_of, media_kind

THREADS_URL = "https://graph.threads.net/v1.0"
RECENT_THREADS = 25
STATUS_POLLS = 30
POLL_INTERVAL_S = 2.0


class ThreadsAdapter:
    platform = "threads"
    rate_budgets = (RateBudget(250, 86_400.0, "account", "https://developers.facebook.com/docs/threads/overview"),)
    token_refresh = None
    required_settings = ("threads_user_id",)
    capabilities = Capabilities.from_rules(
        "threads", threads=False, reconcile=Reconcile.lookup,
        doc_url="https://developers.facebook.com/docs/threads/posts",
        notes="text, JPEG/PNG images and videos; 2 to 10 items make a carousel; Threads fetches the media from their "
              "URLs")

    def __init__(self, http: httpx.Client, base_url: str = THREADS_URL, timeout_s: float = 10,
                 poll_interval_s: float = POLL_INTERVAL_S, status_polls: int = STATUS_POLLS) -> None:
        self.http, self.base_url, self.timeout_s = http, base_url.rstrip("/"), timeout_s
        self.poll_interval_s, self.status_polls = poll_interval_s, status_polls

    def publish(self, request: PublishRequest) -> PublishResult:
        check_content(self.platform, request.text, request.media_urls)
        user = request.account.setting("threads_user_id")
        if not request.media_urls:
            container = self._container(request, user, {"media_type": "TEXT", "text": request.text})
        elif len(request.media_urls) == 1:
            container = self._container(request, user, {**_item(request.media_urls[0]), "text": request.text})
        else:
            children = [self._container(request, user, {**_item(url), "is_carousel_item": "true"})
                        for url in request.media_urls]
            for child in children:
                self._wait(request, child)
            container = self._container(request, user, {"media_type": "CAROUSEL", "children": ",".join(children),
                                                        "text": request.text})
        self._wait(request, container)
        published = json_of(self._call(request, "POST", f"/{user}/threads_publish", data={"creation_id": container}),
                            "POST /{threads-user-id}/threads_publish")
        if "id" not in published:
            raise PublishError(ErrorKind.unknown, "threads_publish answered without a media id")
        media_id = str(published["id"])
        return PublishResult(media_id, self._permalink(request, media_id))

    def reconcile(self, request: PublishRequest) -> PublishResult | None:
        user = request.account.setting("threads_user_id")
        answer = json_of(self._call(request, "GET", f"/{user}/threads",
                                    params={"fields": "id,text,permalink,timestamp", "limit": str(RECENT_THREADS)}),
                         "GET /{threads-user-id}/threads")
        found = next((t for t in answer.get("data") or [] if isinstance(t, dict) and t.get("text") == request.text),
                     None)
        return None if found is None else PublishResult(str(found["id"]), found.get("permalink"))

    def _container(self, request: PublishRequest, user: str, form: dict[str, str]) -> str:
        created = json_of(self._call(request, "POST", f"/{user}/threads", data=form), "POST /{threads-user-id}/threads")
        if "id" not in created:
            raise PublishError(ErrorKind.transient, "POST /{threads-user-id}/threads answered without a container id")
        return str(created["id"])

    def _wait(self, request: PublishRequest, container: str) -> None:
        def status() -> dict[str, Any]:
            return json_of(self._call(request, "GET", f"/{container}", params={"fields": "status,error_message"}),
                           "GET /{container-id}")

        wait_until_ready(status, field="status", polls=self.status_polls, interval_s=self.poll_interval_s,
                         what=f"Threads container {container}")

    def _permalink(self, request: PublishRequest, media_id: str) -> str | None:
        try:
            answer = json_of(self._call(request, "GET", f"/{media_id}", params={"fields": "permalink"}),
                             "GET /{threads-media-id}")
        except PublishError:  # published already: a missing link must not turn it into a failure
            return None
        link = answer.get("permalink")
        return link if isinstance(link, str) else None

    def _call(self, request: PublishRequest, method: str, path: str, **kwargs: Any) -> httpx.Response:
        # A container is not a post: only threads_publish may have posted.
        return call(self.http, method, f"{self.base_url}{path}", timeout_s=self.timeout_s,
                    classify=classify_graph_error, acts=path.endswith("/threads_publish"),
                    headers={"Authorization": f"Bearer {request.account.access_token}"}, **kwargs)


def _item(url: str) -> dict[str, str]:
    kind = media_kind(url)
    if kind == "video":
        return {"media_type": "VIDEO", "video_url": url}
    if kind == "image":
        return {"media_type": "IMAGE", "image_url": url}
    raise PublishError(ErrorKind.invalid_content, f"Threads takes images and videos, not {url}")
