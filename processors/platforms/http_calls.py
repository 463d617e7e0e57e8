"""What the part-B platform adapters share: sending one platform request with the failure classes of
the adapter port, reading a platform's rate-limit reset, and fetching or checking client-supplied
media URLs through the SSRF guard (herald/net/safe_fetch.py).

A request that was never sent (refused connection, connect or pool timeout) is transient. A request
that was sent and got no answer is ``unknown`` when it ``creates`` the post (the platform may have
acted on it) and transient otherwise (an upload or a look-up that is simply done again).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Mapping

import httpx

from herald.net.safe_fetch import Fetched, FetchRefused, SafeFetcher
from processors.platforms.base import ErrorKind, PublishError, classify_http_error


def send(http: httpx.Client, method: str, url: str, *, timeout_s: float, creates: bool,
         **kwargs: Any) -> httpx.Response:
    """One request; network failures become PublishError, HTTP answers of any status are returned."""
    try:
        return http.request(method, url, timeout=timeout_s, **kwargs)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:  # nothing was sent
        raise PublishError(ErrorKind.transient, f"{method} {_safe(url)}: {type(error).__name__}") from None
    except httpx.HTTPError as error:  # sent, then no answer
        kind = ErrorKind.unknown if creates else ErrorKind.transient
        raise PublishError(kind, f"{method} {_safe(url)}: {type(error).__name__}: {error}") from None


def _safe(url: str) -> str:
    """A URL for an error detail, without its query (which may carry a token) and, for URLs with
    secrets in the path (Telegram's /bot<token>/, Discord's /webhooks/<id>/<token>), cut there."""
    parsed = httpx.URL(url)
    path = parsed.path
    for marker in ("/bot", "/webhooks/"):
        if marker in path:
            path = path[: path.index(marker) + len(marker)] + "…"
    return f"{parsed.scheme}://{parsed.host}{':' + str(parsed.port) if parsed.port else ''}{path}"


def json_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def seconds_until_epoch(value: str | None, now: datetime | None = None) -> float | None:
    """A reset given as Unix seconds (Bluesky's ``RateLimit-Reset``, Discord's ``X-RateLimit-Reset``)."""
    try:
        reset = float(value) if value is not None else None
    except ValueError:
        return None
    if reset is None:
        return None
    return max(0.0, reset - (now or datetime.now(UTC)).timestamp())


def seconds(value: str | None) -> float | None:
    """A delta in seconds (Reddit's ``X-Ratelimit-Reset``, Discord's ``X-RateLimit-Reset-After``)."""
    try:
        return max(0.0, float(value)) if value is not None and value.strip() else None
    except ValueError:
        return None


def http_error(response: httpx.Response, retry_after_s: float | None = None,
               kind: ErrorKind | None = None) -> PublishError:
    """The port's classification of an HTTP error answer, with a platform's own reset and kind."""
    error = classify_http_error(response.status_code, response.headers, response.text)
    if retry_after_s is not None and "retry-after" not in response.headers:
        # the platform's own reset header, read by the adapter, wins over the port's guess at it
        error.retry_after_s = retry_after_s
    if kind is not None:
        error = PublishError(kind, error.detail, error.retry_after_s, response.status_code)
    return error


def fetch_media(media: SafeFetcher, url: str) -> Fetched:
    """Download a client-supplied media URL through the SSRF guard, as the Mastodon adapter does."""
    try:
        return media.fetch(url)
    except FetchRefused as refused:
        raise _refusal(url, refused) from None


def check_media_url(media: SafeFetcher, url: str) -> None:
    """A media URL Herald hands to a platform that fetches it itself (Pinterest, TikTok
    PULL_FROM_URL, Reddit link posts): the same guard, without downloading, so an internal address
    is refused before it is passed on."""
    try:
        media.check(url)
    except FetchRefused as refused:
        raise _refusal(url, refused) from None


def _refusal(url: str, refused: FetchRefused) -> PublishError:
    if refused.reason in ("timeout", "network", "unresolvable"):
        return PublishError(ErrorKind.transient, f"could not fetch media {url}: {refused.detail}")
    if refused.status_code is not None:
        error = classify_http_error(refused.status_code, {}, "")
        retryable = error.kind in (ErrorKind.transient, ErrorKind.rate_limited)
        kind = ErrorKind.transient if retryable else ErrorKind.invalid_content
        return PublishError(kind, f"media {url} answered HTTP {refused.status_code}")
    return PublishError(ErrorKind.invalid_content, f"media {url} refused: {refused}")


def setting(settings: Mapping[str, str], name: str, platform: str) -> str:
    value = (settings.get(name) or "").strip()
    if not value:
        raise PublishError(ErrorKind.permanent, f"the {platform} account has no {name!r} setting")
    return value


def filename_of(url: str, default: str = "media") -> str:
    return url.rsplit("/", 1)[-1].split("?", 1)[0] or default
