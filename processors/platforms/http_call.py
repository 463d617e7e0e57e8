"""One platform HTTP call as the adapters make it: what was never sent is transient, what was sent
and got no answer is unknown (for a request that may have acted: the platform may have posted),
an error answer is classified by the platform's classifier (``classify_http_error`` unless the
platform has its own error bodies), and a media download goes only through the SSRF guard.

A 5xx answer to a request that may have acted is unknown too, not transient: these platforms take
no idempotency key, a server error can come after the post was made, and trying again would post it
twice. The engine then reconciles (looks the post up) before anything is sent again."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import httpx

from domain.post.platform_rules import MediaRef, check
from herald.net.safe_fetch import FetchRefused, SafeFetcher
from processors.platforms.base import ErrorKind, PublishError, classify_http_error

Classifier = Callable[[int, Mapping[str, str], str], PublishError]


def call(http: httpx.Client, method: str, url: str, *, timeout_s: float, classify: Classifier = classify_http_error,
         acts: bool | None = None, **kwargs: Any) -> httpx.Response:
    """The 2xx response, or PublishError. ``acts``: whether the request may change something at the
    platform (default: any method but GET), so that no answer to it is an unknown outcome."""
    acts = method != "GET" if acts is None else acts
    try:
        response = http.request(method, url, timeout=timeout_s, **kwargs)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:  # nothing was sent
        raise PublishError(ErrorKind.transient, f"{method} {_path(url)}: {type(error).__name__}") from None
    except httpx.HTTPError as error:  # sent, then no answer: the platform may have acted on it
        kind = ErrorKind.unknown if acts else ErrorKind.transient
        raise PublishError(kind, f"{method} {_path(url)}: {type(error).__name__}: {error}") from None
    if response.status_code >= 400:
        error = classify(response.status_code, response.headers, response.text)
        if acts and response.status_code >= 500 and error.kind is ErrorKind.transient:
            raise PublishError(ErrorKind.unknown, f"{error.detail} (the platform may have posted before failing)",
                               error.retry_after_s, error.status_code)
        raise error
    return response


def json_of(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise PublishError(ErrorKind.transient, f"{what}: HTTP {response.status_code} with a non-JSON body") from None
    if not isinstance(body, dict):
        raise PublishError(ErrorKind.transient, f"{what}: HTTP {response.status_code} with an unexpected body")
    return body


@dataclass(frozen=True)
class Media:
    filename: str
    content: bytes
    content_type: str


def download(media: SafeFetcher, url: str) -> Media:
    """A client's media URL, fetched through the SSRF guard. A refusal is invalid content, except
    what may pass later (timeouts, network errors, 5xx and 429 from the media host)."""
    try:
        fetched = media.fetch(url)
    except FetchRefused as refused:
        if refused.reason in ("timeout", "network"):
            raise PublishError(ErrorKind.transient, f"could not fetch media {url}: {refused.detail}") from None
        if refused.status_code is not None:
            error = classify_http_error(refused.status_code, {}, "")
            retryable = error.kind in (ErrorKind.transient, ErrorKind.rate_limited)
            kind = ErrorKind.transient if retryable else ErrorKind.invalid_content
            raise PublishError(kind, f"media {url} answered HTTP {refused.status_code}") from None
        raise PublishError(ErrorKind.invalid_content, f"media {url} refused: {refused}") from None
    filename = url.rsplit("/", 1)[-1].split("?", 1)[0] or "media"
    return Media(filename, fetched.content, fetched.content_type)


def check_content(platform: str, text: str, media_urls: tuple[str, ...], *, skip: frozenset[str] = frozenset()) -> None:
    """The domain's content rules (domain/post/platform_rules.py) once more before calling: a post
    edited or scheduled before a rule existed must not reach the platform to fail there."""
    broken = [v for v in check(platform, text, media_urls) if str(v.code) not in skip]
    if broken:
        raise PublishError(ErrorKind.invalid_content, "; ".join(v.message for v in broken)[:1000])


def media_kind(url: str) -> str:
    """image, video, gif or unknown, from the URL's extension (as the content rules read it)."""
    return str(MediaRef(url).resolved_kind)


def _path(url: str) -> str:
    """The URL without its query: queries may carry tokens on some platforms, details are logged."""
    return url.split("?", 1)[0]
