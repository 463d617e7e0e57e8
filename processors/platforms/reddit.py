"""Reddit adapter: POST /api/submit on https://oauth.reddit.com with a user's OAuth2 bearer token, to
the subreddit of the account's setting ``subreddit`` (optional ``flair_id``).

Docs followed:
- Submit: https://www.reddit.com/dev/api/#POST_api_submit (form body: api_type=json, sr, kind
  self|link, title ≤ 300, text or url, flair_id, resubmit, sendreplies). Errors of a submit come
  back in ``json.errors`` as ``[CODE, message, field]`` (often with HTTP 200), e.g.
  SUBREDDIT_NOEXIST, SUBMIT_VALIDATION_FLAIR_REQUIRED, RATELIMIT ("Take a break for 5 minutes").
- OAuth2 and its rules: https://github.com/reddit-archive/reddit/wiki/OAuth2 (authorize at
  https://www.reddit.com/api/v1/authorize with duration=permanent to get a refresh token; code and
  refresh grants at https://www.reddit.com/api/v1/access_token with HTTP Basic client auth; access
  tokens last one hour) and https://github.com/reddit-archive/reddit/wiki/API (a unique, descriptive
  User-Agent — ``<platform>:<app ID>:<version> (by /u/<user>)`` — on every request; responses carry
  X-Ratelimit-Used, X-Ratelimit-Remaining and X-Ratelimit-Reset, the last in *seconds until the
  period ends*).
- Budget: 100 queries per minute per OAuth client id, averaged over 10 minutes
  (https://support.reddithelp.com/hc/en-us/articles/16160319875092-Reddit-Data-API-Wiki).
- Own submissions: GET /user/{username}/submitted (scope ``history``), a Listing of t3 things.

Text: the first line is the title (required), the rest the self-text (domain/post/platform_rules.py:
title ≤ 300, body ≤ 40,000). Media: Reddit's native image upload (a media-asset lease to S3) is not
done here; a post without body text and one media URL becomes a link post to it (Reddit previews
images); with body text, the media URLs are appended to the self-text as links. Galleries are not
made.

Reconcile: Reddit has no idempotency key. The account's newest submissions are read and a post to
the same subreddit with the same title and the same text (or URL) is taken as this attempt's; none
among them → None. A post of identical content made by other means in the meantime would be taken
for this one.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from domain.post.platform_rules import split_title, utf16_length
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
from processors.platforms.http_calls import check_media_url, http_error, json_body, seconds, send, setting

DEFAULT_BASE = "https://oauth.reddit.com"
DEFAULT_USER_AGENT = "server:herald:0.1.0 (by /u/herald-app)"
DOC = "https://www.reddit.com/dev/api/#POST_api_submit"
MAX_TITLE, MAX_BODY = 300, 40_000
RECONCILE_LIMIT = 25
SCOPES = ("identity", "submit", "history")
OAUTH_DOC = "https://github.com/reddit-archive/reddit/wiki/OAuth2"


_INVALID = {"NO_TEXT", "NO_SELFS", "NO_LINKS", "TOO_LONG", "BAD_URL", "ALREADY_SUB", "DOMAIN_BANNED",
            "INVALID_OPTION", "BAD_FLAIR_TARGET", "SUBMIT_VALIDATION_TITLE_REQUIREMENT"}
_PERMANENT = {"SUBREDDIT_NOEXIST", "SUBREDDIT_NOTALLOWED", "SUBREDDIT_REQUIRED", "NO_SR_TO_SR_LINK"}
_WAIT = re.compile(r"(\d+)\s*(minute|second|hour)", re.IGNORECASE)


class RedditAdapter:
    platform = "reddit"
    rate_budgets = (RateBudget(1000, 600.0, "app",
                               "https://support.reddithelp.com/hc/en-us/articles/16160319875092-Reddit-Data-API-Wiki"),)
    token_refresh = TokenRefresh(
        token_endpoint=lambda _: "https://www.reddit.com/api/v1/access_token", tokens_expire=True, source=OAUTH_DOC,
        # duration=permanent: without it Reddit grants no refresh token (the endpoint's query is kept)
        authorization_endpoint=lambda _: "https://www.reddit.com/api/v1/authorize?duration=permanent",
        scopes=SCOPES, pkce=Pkce.none,
        client_auth=("client_secret_basic",), connect_source=OAUTH_DOC)
    required_settings: tuple[str, ...] = ("subreddit",)
    capabilities = Capabilities.from_rules(
        "reddit", threads=False, reconcile=Reconcile.lookup, doc_url=DOC, optional_settings=("flair_id",),
        notes="the first line is the title; one media URL goes as a link post, with body text the URLs go into the "
              "self-text (no native uploads or galleries); reconcile looks among the user's newest submissions")

    def __init__(self, http: httpx.Client, base_url: str = DEFAULT_BASE, timeout_s: float = 10,
                 media: SafeFetcher | None = None, user_agent: str = DEFAULT_USER_AGENT) -> None:
        self.http, self.base_url, self.timeout_s = http, base_url.rstrip("/"), timeout_s
        self.media = media or SafeFetcher(timeout_s=timeout_s)
        self.user_agent = user_agent

    def publish(self, request: PublishRequest) -> PublishResult:
        form = self._submission(request)
        response = send(self.http, "POST", f"{self.base_url}/api/submit", timeout_s=self.timeout_s, creates=True,
                        headers=self._headers(request), data=form)
        body = self._ok(response)
        answer = body.get("json") if isinstance(body, dict) else None
        if not isinstance(answer, dict):
            raise PublishError(ErrorKind.transient, f"Reddit answered the submit without json: {response.text[:300]}")
        if answer.get("errors"):
            raise _submit_error(answer["errors"])
        data = answer.get("data") or {}
        if "id" not in data:
            raise PublishError(ErrorKind.transient, "Reddit answered the submit without the post's id")
        return PublishResult(str(data.get("name") or f"t3_{data['id']}"), data.get("url"))

    def reconcile(self, request: PublishRequest) -> PublishResult | None:
        form = self._submission(request)
        username = request.account.handle.removeprefix("u/").removeprefix("/u/")
        response = send(self.http, "GET", f"{self.base_url}/user/{username}/submitted", timeout_s=self.timeout_s,
                        creates=False, headers=self._headers(request),
                        params={"sort": "new", "limit": RECONCILE_LIMIT, "raw_json": 1})
        listing = self._ok(response)
        for child in (listing.get("data") or {}).get("children") or []:
            post = child.get("data") or {}
            same_place = str(post.get("subreddit", "")).lower() == form["sr"].lower()
            same_content = post.get("title") == form["title"] and (
                post.get("selftext", "") == form["text"] if form["kind"] == "self" else post.get("url") == form["url"])
            if same_place and same_content:
                permalink = post.get("permalink")
                return PublishResult(str(post.get("name") or f"t3_{post['id']}"),
                                     f"https://www.reddit.com{permalink}" if permalink else post.get("url"))
        return None

    def _submission(self, request: PublishRequest) -> dict[str, str]:
        subreddit = setting(request.account.settings, "subreddit", "Reddit").removeprefix("r/").removeprefix("/r/")
        title, body = split_title(request.text)
        if not title:
            raise PublishError(ErrorKind.invalid_content, "Reddit needs a title: the text's first line")
        if utf16_length(title) > MAX_TITLE:
            raise PublishError(ErrorKind.invalid_content, f"Reddit titles hold at most {MAX_TITLE} characters")
        for url in request.media_urls:
            check_media_url(self.media, url)
        form = {"api_type": "json", "sr": subreddit, "title": title, "resubmit": "true", "sendreplies": "true"}
        if len(request.media_urls) == 1 and not body:
            form.update(kind="link", url=request.media_urls[0])
        else:
            text = "\n\n".join([body, *request.media_urls]) if body else "\n\n".join(request.media_urls)
            if utf16_length(text) > MAX_BODY:
                raise PublishError(ErrorKind.invalid_content, f"Reddit self-text holds at most {MAX_BODY} characters")
            form.update(kind="self", text=text)
        flair = (request.account.settings.get("flair_id") or "").strip()
        if flair:
            form["flair_id"] = flair
        return form

    def _headers(self, request: PublishRequest) -> dict[str, str]:
        return {"Authorization": f"bearer {request.account.access_token}", "User-Agent": self.user_agent}

    @staticmethod
    def _ok(response: httpx.Response) -> Any:
        if response.status_code < 400:
            body = json_body(response)
            if body is None:
                raise PublishError(ErrorKind.transient, f"Reddit answered HTTP {response.status_code} without JSON")
            return body
        # X-Ratelimit-Reset is seconds until the period ends, not an epoch: read it here, not in the port.
        return_after = seconds(response.headers.get("x-ratelimit-reset")) if response.status_code == 429 else None
        raise http_error(response, return_after)


def _submit_error(errors: list[Any]) -> PublishError:
    code, message = (str(errors[0][0]), str(errors[0][1])) if errors and len(errors[0]) >= 2 else ("", str(errors))
    detail = f"Reddit refused the submission: {errors}"[:800]
    if code == "RATELIMIT":
        match = _WAIT.search(message)
        wait = None
        if match:
            wait = int(match.group(1)) * {"second": 1, "minute": 60, "hour": 3600}[match.group(2).lower()]
        return PublishError(ErrorKind.rate_limited, detail, wait)
    if code in _PERMANENT or code == "USER_REQUIRED":
        return PublishError(ErrorKind.auth if code == "USER_REQUIRED" else ErrorKind.permanent, detail)
    if code in _INVALID or code.startswith("SUBMIT_VALIDATION"):
        return PublishError(ErrorKind.invalid_content, detail)
    return PublishError(ErrorKind.permanent, detail)
