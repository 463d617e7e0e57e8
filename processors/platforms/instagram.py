"""Instagram adapter: the Instagram Graph API's container publishing (Instagram API with Facebook
Login, host graph.facebook.com; the Instagram Login host graph.instagram.com takes the same calls).

Docs followed:
- https://developers.facebook.com/docs/instagram-platform/content-publishing: a post is a media
  container, ``POST /{ig-user-id}/media`` with ``image_url`` (JPEG) or ``video_url`` with
  ``media_type=REELS`` (single feed videos are shared as reels) and ``caption``; then
  ``POST /{ig-user-id}/media_publish`` with ``creation_id``. Carousels: one container per item with
  ``is_carousel_item=true`` (videos ``media_type=VIDEO``), then a ``media_type=CAROUSEL`` container
  with ``children`` (comma-separated ids, up to 10) and the caption, published the same way.
  "We cURL media used in publishing attempts": Instagram fetches the media URLs itself.
- https://developers.facebook.com/docs/instagram-platform/instagram-graph-api/reference/ig-container:
  ``GET /{container-id}?fields=status_code`` — IN_PROGRESS, FINISHED, ERROR, EXPIRED (not published
  within 24 hours), PUBLISHED. Herald polls it (tenacity) until FINISHED before publishing.
- Rate limit: 100 API-published posts per account in a moving 24 hours (a carousel counts one), the
  content publishing page above; over it, error subcode 2207042. Errors: processors/platforms/graph.py.

Settings: ``ig_user_id`` (required), the Instagram professional account's id. The token is the user
access token with instagram_content_publish (or instagram_business_content_publish); the Graph API
has no refresh-token grant, so a refused token marks the account ``needs_reconnect``.

No idempotency key: reconcile reads the account's recent media (GET /{ig-user-id}/media with
caption) and takes the one with this caption. A container left unpublished expires by itself.
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

GRAPH_URL = "https://graph.facebook.com/v23.0"
RECENT_MEDIA = 25
STATUS_POLLS = 30
POLL_INTERVAL_S = 2.0


class InstagramAdapter:
    platform = "instagram"
    rate_budgets = (RateBudget(100, 86_400.0, "account",
                               "https://developers.facebook.com/docs/instagram-platform/content-publishing"),)
    token_refresh = None
    required_settings = ("ig_user_id",)
    capabilities = Capabilities.from_rules(
        "instagram", threads=False, reconcile=Reconcile.lookup,
        doc_url="https://developers.facebook.com/docs/instagram-platform/content-publishing",
        notes="media required (JPEG images, videos as reels); 2 to 10 items make a carousel; Instagram fetches the "
              "media from their URLs")

    def __init__(self, http: httpx.Client, base_url: str = GRAPH_URL, timeout_s: float = 10,
                 poll_interval_s: float = POLL_INTERVAL_S, status_polls: int = STATUS_POLLS) -> None:
        self.http, self.base_url, self.timeout_s = http, base_url.rstrip("/"), timeout_s
        self.poll_interval_s, self.status_polls = poll_interval_s, status_polls

    def publish(self, request: PublishRequest) -> PublishResult:
        check_content(self.platform, request.text, request.media_urls)
        ig = request.account.setting("ig_user_id")
        if len(request.media_urls) == 1:
            container = self._container(request, ig, {**_item(request.media_urls[0], carousel=False),
                                                      "caption": request.text})
        else:
            children = [self._container(request, ig, _item(url, carousel=True)) for url in request.media_urls]
            for child in children:
                self._wait(request, child)
            container = self._container(request, ig, {"media_type": "CAROUSEL", "children": ",".join(children),
                                                      "caption": request.text})
        self._wait(request, container)
        published = json_of(self._call(request, "POST", f"/{ig}/media_publish", data={"creation_id": container}),
                            "POST /{ig-user-id}/media_publish")
        if "id" not in published:
            raise PublishError(ErrorKind.unknown, "media_publish answered without a media id")
        media_id = str(published["id"])
        return PublishResult(media_id, self._permalink(request, media_id))

    def reconcile(self, request: PublishRequest) -> PublishResult | None:
        ig = request.account.setting("ig_user_id")
        answer = json_of(self._call(request, "GET", f"/{ig}/media",
                                    params={"fields": "id,caption,permalink,timestamp", "limit": str(RECENT_MEDIA)}),
                         "GET /{ig-user-id}/media")
        found = next((m for m in answer.get("data") or [] if isinstance(m, dict) and m.get("caption") == request.text),
                     None)
        return None if found is None else PublishResult(str(found["id"]), found.get("permalink"))

    def _container(self, request: PublishRequest, ig: str, form: dict[str, str]) -> str:
        created = json_of(self._call(request, "POST", f"/{ig}/media", data=form), "POST /{ig-user-id}/media")
        if "id" not in created:
            raise PublishError(ErrorKind.transient, "POST /{ig-user-id}/media answered without a container id")
        return str(created["id"])

    def _wait(self, request: PublishRequest, container: str) -> None:
        def status() -> dict[str, Any]:
            return json_of(self._call(request, "GET", f"/{container}", params={"fields": "status_code,status"}),
                           "GET /{container-id}")

        wait_until_ready(status, field="status_code", polls=self.status_polls, interval_s=self.poll_interval_s,
                         what=f"Instagram container {container}")

    def _permalink(self, request: PublishRequest, media_id: str) -> str | None:
        try:
            answer = json_of(self._call(request, "GET", f"/{media_id}", params={"fields": "permalink"}),
                             "GET /{media-id}")
        except PublishError:  # published already: a missing link must not turn it into a failure
            return None
        link = answer.get("permalink")
        return link if isinstance(link, str) else None

    def _call(self, request: PublishRequest, method: str, path: str, **kwargs: Any) -> httpx.Response:
        # Creating a container changes nothing anyone sees: only media_publish may have posted.
        acts = path.endswith("/media_publish")
        return call(self.http, method, f"{self.base_url}{path}", timeout_s=self.timeout_s,
                    classify=classify_graph_error, acts=acts,
                    headers={"Authorization": f"Bearer {request.account.access_token}"}, **kwargs)


def _item(url: str, *, carousel: bool) -> dict[str, str]:
    kind = media_kind(url)
    if kind == "video":
        item = {"media_type": "VIDEO" if carousel else "REELS", "video_url": url}
    elif kind == "image":
        item = {"image_url": url}
    else:
        raise PublishError(ErrorKind.invalid_content, f"Instagram takes JPEG images and videos, not {url}")
    if carousel:
        item["is_carousel_item"] = "true"
    return item
