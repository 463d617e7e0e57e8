"""LinkedIn adapter: the versioned Posts API (``POST /rest/posts``) as a member or an organization.

Docs followed:
- Posts API: https://learn.microsoft.com/en-us/linkedin/marketing/community-management/shares/posts-api
  — ``POST https://api.linkedin.com/rest/posts`` with ``LinkedIn-Version: YYYYMM`` and
  ``X-Restli-Protocol-Version: 2.0.0``; body ``author`` (urn:li:person:… or urn:li:organization:…),
  ``commentary``, ``visibility``, ``distribution`` (``feedDistribution: MAIN_FEED``, empty
  ``targetEntities`` and ``thirdPartyDistributionChannels``), ``lifecycleState: PUBLISHED``,
  ``isReshareDisabledByAuthor``; an image is ``content.media.id``, 2–20 images are
  ``content.multiImage.images`` (https://learn.microsoft.com/en-us/linkedin/marketing/community-management/shares/multiimage-post-api).
  201 Created, the post's URN in the ``x-restli-id`` header. Reading: ``GET /rest/posts?author=…&q=author``
  (finder; needs r_member_social / r_organization_social).
- Images API: https://learn.microsoft.com/en-us/linkedin/marketing/community-management/shares/images-api
  — ``POST /rest/images?action=initializeUpload`` with ``{"initializeUploadRequest": {"owner": author}}``
  answers ``value.uploadUrl`` and ``value.image`` (urn:li:image:…); the bytes go to the upload URL
  with ``PUT``. Herald downloads each media URL through the SSRF guard and uploads it. Videos (the
  multi-part Videos API) are not sent by this adapter.
- Commentary is "little text": https://learn.microsoft.com/en-us/linkedin/marketing/community-management/shares/little-text-format
  — the reserved characters ``| { } @ [ ] ( ) < > # \\ * _ ~`` are escaped with a backslash;
  hashtags become the ``{hashtag|\\#|word}`` template so they stay hashtags.
- Errors: ``{"status", "serviceErrorCode", "code", "message"}`` with the HTTP status meaning what it
  says (401 EXPIRED_ACCESS_TOKEN, 403 ACCESS_DENIED, 422 invalid or duplicate, 429 throttled):
  ``classify_http_error``.
- Tokens: https://learn.microsoft.com/en-us/linkedin/shared/authentication/authorization-code-flow
  (authorization and token endpoints; access tokens live 60 days) and
  .../programmatic-refresh-tokens (a refresh token, for apps LinkedIn enables it for, through the
  standard refresh-token grant).
- Rate limits: https://learn.microsoft.com/en-us/linkedin/shared/api-guide/concepts/rate-limits — per
  member and per application per day, shown in each app's Developer Portal rather than published;
  Herald keeps to 150 posts a day per member, the figure LinkedIn gave for member shares.

Settings: ``author_urn`` (required): urn:li:person:<id> for a member, urn:li:organization:<id> to post
as a Page the member administers (w_organization_social).

No idempotency key: reconcile reads the author's recent posts (finder ``q=author``) and takes the
one with this commentary. Without the read permission LinkedIn answers 403: reconcile then says it
cannot tell, and the unknown outcome goes to an admin.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import httpx

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
from processors.platforms.http_call import call, check_content, download, json_of, media_kind

API_URL = "https://api.linkedin.com"
LINKEDIN_VERSION = "202511"
RECENT_POSTS = 20
AUTHOR = re.compile(r"^urn:li:(person|organization):[A-Za-z0-9_-]+$")
_RESERVED = re.compile(r"([\\|{}@\[\]()<>#*_~])")
_HASHTAG = re.compile(r"(?<![\w#])#(\w+)")


def little_text(text: str) -> str:
    """``text`` as LinkedIn's little text: reserved characters escaped, hashtags as templates."""
    out, position = [], 0
    for match in _HASHTAG.finditer(text):
        out.append(_RESERVED.sub(r"\\\1", text[position:match.start()]))
        out.append("{hashtag|\\#|" + _RESERVED.sub(r"\\\1", match.group(1)) + "}")
        position = match.end()
    out.append(_RESERVED.sub(r"\\\1", text[position:]))
    return "".join(out)


class LinkedInAdapter:
    platform = "linkedin"
    rate_budgets = (RateBudget(150, 86_400.0, "account",
                               "https://learn.microsoft.com/en-us/linkedin/shared/api-guide/concepts/rate-limits"),)
    token_refresh = TokenRefresh(
        token_endpoint=lambda _: "https://www.linkedin.com/oauth/v2/accessToken", tokens_expire=True,
        source="https://learn.microsoft.com/en-us/linkedin/shared/authentication/programmatic-refresh-tokens",
        authorization_endpoint=lambda _: "https://www.linkedin.com/oauth/v2/authorization",
        scopes=("w_member_social", "w_organization_social"), pkce=Pkce.none, client_auth=("client_secret_post",),
        connect_source="https://learn.microsoft.com/en-us/linkedin/shared/authentication/authorization-code-flow")
    required_settings = ("author_urn",)
    capabilities = Capabilities.from_rules(
        "linkedin", threads=False, reconcile=Reconcile.lookup, media_kinds=("gif", "image"),
        doc_url="https://learn.microsoft.com/en-us/linkedin/marketing/community-management/shares/posts-api",
        notes="member (urn:li:person) or organization (urn:li:organization) authors; images uploaded through the "
              "Images API; videos are not sent; reconcile needs r_member_social or r_organization_social")

    def __init__(self, http: httpx.Client, base_url: str = API_URL, timeout_s: float = 10,
                 media: SafeFetcher | None = None, version: str = LINKEDIN_VERSION) -> None:
        self.http, self.base_url, self.timeout_s, self.version = http, base_url.rstrip("/"), timeout_s, version
        self.media = media or SafeFetcher(timeout_s=timeout_s)

    def publish(self, request: PublishRequest) -> PublishResult:
        check_content(self.platform, request.text, request.media_urls)
        author = self._author(request)
        if any(media_kind(url) not in ("image", "gif") for url in request.media_urls):
            raise PublishError(ErrorKind.invalid_content, "Herald's LinkedIn adapter sends images only, not videos")
        images = [self._upload(request, author, url) for url in request.media_urls]
        body: dict[str, Any] = {
            "author": author, "commentary": little_text(request.text), "visibility": "PUBLIC",
            "distribution": {"feedDistribution": "MAIN_FEED", "targetEntities": [],
                             "thirdPartyDistributionChannels": []},
            "lifecycleState": "PUBLISHED", "isReshareDisabledByAuthor": False}
        if len(images) == 1:
            body["content"] = {"media": {"id": images[0]}}
        elif images:
            body["content"] = {"multiImage": {"images": [{"id": image} for image in images]}}
        response = call(self.http, "POST", f"{self.base_url}/rest/posts", timeout_s=self.timeout_s,
                        headers=self._headers(request), json=body)
        urn = response.headers.get("x-restli-id")
        if not urn:
            raise PublishError(ErrorKind.unknown, "LinkedIn created the post but named no x-restli-id")
        return PublishResult(urn, f"https://www.linkedin.com/feed/update/{urn}/")

    def reconcile(self, request: PublishRequest) -> PublishResult | None:
        author = self._author(request)
        try:
            response = call(self.http, "GET", f"{self.base_url}/rest/posts?q=author&author={quote(author, safe='')}"
                            f"&count={RECENT_POSTS}&sortBy=LAST_MODIFIED", timeout_s=self.timeout_s,
                            headers={**self._headers(request), "X-RestLi-Method": "FINDER"})
        except PublishError as error:
            if error.status_code == 403:
                raise PublishError(ErrorKind.unknown, "LinkedIn does not let Herald read this author's posts "
                                   "(r_member_social / r_organization_social): an admin must check the feed",
                                   status_code=403) from None
            raise
        commentary = little_text(request.text)
        posts = json_of(response, "GET /rest/posts").get("elements") or []
        found = next((p for p in posts if isinstance(p, dict) and p.get("commentary") == commentary), None)
        if found is None:
            return None
        return PublishResult(str(found["id"]), f"https://www.linkedin.com/feed/update/{found['id']}/")

    def _author(self, request: PublishRequest) -> str:
        author = request.account.setting("author_urn")
        if not AUTHOR.match(author):
            raise PublishError(ErrorKind.permanent, f"author_urn {author!r} is neither urn:li:person:… nor "
                               "urn:li:organization:…")
        return author

    def _headers(self, request: PublishRequest) -> dict[str, str]:
        return {"Authorization": f"Bearer {request.account.access_token}", "LinkedIn-Version": self.version,
                "X-Restli-Protocol-Version": "2.0.0"}

    def _upload(self, request: PublishRequest, author: str, url: str) -> str:
        media = download(self.media, url)
        started = call(self.http, "POST", f"{self.base_url}/rest/images?action=initializeUpload",
                       timeout_s=self.timeout_s, acts=False, headers=self._headers(request),
                       json={"initializeUploadRequest": {"owner": author}})
        value = json_of(started, "initializeUpload").get("value") or {}
        upload_url, image = value.get("uploadUrl"), value.get("image")
        if not isinstance(upload_url, str) or not isinstance(image, str):
            raise PublishError(ErrorKind.transient, "initializeUpload answered without uploadUrl and image")
        call(self.http, "PUT", upload_url, timeout_s=self.timeout_s, acts=False, content=media.content,
             headers={"Authorization": f"Bearer {request.account.access_token}",
                      "Content-Type": media.content_type or "application/octet-stream"})
        return image
