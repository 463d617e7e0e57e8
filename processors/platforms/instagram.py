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

from processors.platforms.base import Capabilities, ErrorKind, PublishError, RateBudget, Reconcile
from processors.platforms.containers import ContainerAdapter
from processors.platforms.http_call import media_kind

GRAPH_URL = "https://graph.facebook.com/v23.0"


class InstagramAdapter(ContainerAdapter):
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

    label, user_setting, container_edge, publish_edge = "Instagram", "ig_user_id", "media", "media_publish"
    default_url = GRAPH_URL
    text_field, status_field, status_fields = "caption", "status_code", "status_code,status"

    def item(self, url: str, *, carousel: bool) -> dict[str, str]:
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
