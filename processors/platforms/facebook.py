"""Facebook Pages adapter: the Graph API, posting as a Page with a Page access token.

Docs followed:
- Posting: https://developers.facebook.com/docs/pages/getting-started ("send a POST request to the
  /page_id/feed endpoint … with the message parameter … and the access_token parameter set to the
  Page access token"; the answer is ``{"id": "{page_id}_{post_id}"}``) and the Page Feed reference
  https://developers.facebook.com/docs/graph-api/reference/page/feed (also what reconcile reads).
- Photos: https://developers.facebook.com/docs/graph-api/reference/page/photos (``url`` of a public
  image and ``caption``; ``published=false`` uploads one without a post, and a feed post takes those
  as ``attached_media[i]={"media_fbid": …}`` for a multi-photo post).
- Video: https://developers.facebook.com/docs/graph-api/reference/page/videos (``file_url``,
  ``description``).
- Errors and rate limits: processors/platforms/graph.py.

Settings: ``page_id`` (required): the Page the account posts to. The account's token is that Page's
access token (a Page token got from a long-lived user token does not expire; the Graph API has no
refresh-token grant, so Herald does not refresh it: a refused token marks the account
``needs_reconnect``). Connecting is with a token obtained elsewhere (Facebook Login's user token
is not the Page's token: GET /me/accounts turns one into the other).

Media are fetched by Facebook from their URLs (``url``, ``file_url``), not uploaded by Herald.

No idempotency key: after an unknown outcome, reconcile reads the Page's recent posts
(GET /{page-id}/feed?fields=id,message) and takes the one with this text.
"""

from __future__ import annotations

import json
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
from processors.platforms.graph import classify_graph_error
from processors.platforms.http_call import call, check_content, json_of, media_kind

GRAPH_URL = "https://graph.facebook.com/v23.0"
RECENT_POSTS = 25  # the posts reconcile reads


class FacebookAdapter:
    platform = "facebook"
    # https://developers.facebook.com/docs/graph-api/overview/rate-limiting: Platform Rate Limits,
    # "200 × number of users" calls per rolling hour; each account is one user's Page.
    rate_budgets = (RateBudget(200, 3600.0, "account",
                               "https://developers.facebook.com/docs/graph-api/overview/rate-limiting"),)
    token_refresh = None
    required_settings = ("page_id",)
    capabilities = Capabilities.from_rules(
        "facebook", threads=False, reconcile=Reconcile.lookup,
        doc_url="https://developers.facebook.com/docs/graph-api/reference/page/feed",
        notes="posts as a Page with its Page access token; photos and videos are fetched by Facebook from their URLs")

    def __init__(self, http: httpx.Client, base_url: str = GRAPH_URL, timeout_s: float = 10) -> None:
        self.http, self.base_url, self.timeout_s = http, base_url.rstrip("/"), timeout_s

    def publish(self, request: PublishRequest) -> PublishResult:
        check_content(self.platform, request.text, request.media_urls)
        page = request.account.setting("page_id")
        kinds = [media_kind(url) for url in request.media_urls]
        if not request.media_urls:
            return self._feed_post(request, page, {"message": request.text})
        if kinds == ["video"]:
            video = self._post(request, f"/{page}/videos", {"file_url": request.media_urls[0],
                                                             "description": request.text})
            return PublishResult(str(video["id"]), f"https://www.facebook.com/{page}/videos/{video['id']}")
        if len(request.media_urls) == 1:
            photo = self._post(request, f"/{page}/photos", {"url": request.media_urls[0], "caption": request.text})
            post_id = str(photo.get("post_id") or photo["id"])
            return PublishResult(post_id, _post_url(post_id))
        # Several photos: uploaded unpublished, then one feed post that attaches them all.
        photo_ids = [str(self._post(request, f"/{page}/photos", {"url": url, "published": "false"})["id"])
                     for url in request.media_urls]
        form: dict[str, str] = {"message": request.text}
        for i, photo_id in enumerate(photo_ids):
            form[f"attached_media[{i}]"] = json.dumps({"media_fbid": photo_id})
        return self._feed_post(request, page, form)

    def reconcile(self, request: PublishRequest) -> PublishResult | None:
        page = request.account.setting("page_id")
        response = call(self.http, "GET", f"{self.base_url}/{page}/feed", timeout_s=self.timeout_s,
                        classify=classify_graph_error, headers=_auth(request),
                        params={"fields": "id,message,created_time", "limit": str(RECENT_POSTS)})
        posts = json_of(response, "GET /{page-id}/feed").get("data") or []
        found = next((p for p in posts if isinstance(p, dict) and p.get("message") == request.text), None)
        if found is None:
            return None
        return PublishResult(str(found["id"]), _post_url(str(found["id"])))

    def _feed_post(self, request: PublishRequest, page: str, form: dict[str, str]) -> PublishResult:
        post = self._post(request, f"/{page}/feed", form)
        return PublishResult(str(post["id"]), _post_url(str(post["id"])))

    def _post(self, request: PublishRequest, path: str, form: dict[str, str]) -> dict[str, Any]:
        response = call(self.http, "POST", f"{self.base_url}{path}", timeout_s=self.timeout_s,
                        classify=classify_graph_error, headers=_auth(request), data=form)
        body = json_of(response, f"POST {path}")
        if "id" not in body:
            raise PublishError(ErrorKind.transient, f"POST {path} answered without an id")
        return body


def _auth(request: PublishRequest) -> dict[str, str]:
    return {"Authorization": f"Bearer {request.account.access_token}"}


def _post_url(post_id: str) -> str:
    return f"https://www.facebook.com/{post_id}"
