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

from processors.platforms.base import Capabilities, ErrorKind, PublishError, RateBudget, Reconcile
from processors.platforms.containers import ContainerAdapter
from processors.platforms.http_call import media_kind

THREADS_URL = "https://graph.threads.net/v1.0"


class ThreadsAdapter(ContainerAdapter):
    platform = "threads"
    rate_budgets = (RateBudget(250, 86_400.0, "account", "https://developers.facebook.com/docs/threads/overview"),)
    token_refresh = None
    required_settings = ("threads_user_id",)
    capabilities = Capabilities.from_rules(
        "threads", threads=False, reconcile=Reconcile.lookup,
        doc_url="https://developers.facebook.com/docs/threads/posts",
        notes="text, JPEG/PNG images and videos; 2 to 10 items make a carousel; Threads fetches the media from their "
              "URLs")

    label, user_setting, container_edge, publish_edge = "Threads", "threads_user_id", "threads", "threads_publish"
    default_url = THREADS_URL
    text_field, status_field, status_fields = "text", "status", "status,error_message"

    def item(self, url: str, *, carousel: bool) -> dict[str, str]:
        kind = media_kind(url)
        if kind == "video":
            item = {"media_type": "VIDEO", "video_url": url}
        elif kind == "image":
            item = {"media_type": "IMAGE", "image_url": url}
        else:
            raise PublishError(ErrorKind.invalid_content, f"Threads takes images and videos, not {url}")
        if carousel:
            item["is_carousel_item"] = "true"
        return item
