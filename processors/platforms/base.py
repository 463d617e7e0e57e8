"""The platform adapter port: what every adapter offers the publishing engine, the rate budgets
it declares, and how platform HTTP errors are classified.

An adapter is synchronous and stateless between calls; the engine runs many of them at once on
worker threads, bounded per account and per platform, and calls them outside any database
transaction. Each adapter declares its documented rate budgets (``rate_budgets``) so the engine
spends them instead of learning them from 429s.

Connecting an account: an adapter whose ``token_refresh`` is connectable describes its OAuth
authorization flow there, and may offer ``account_handle(instance_url, access_token) -> str`` (the
account's handle, asked of the platform with the new token) for connects that name no handle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Callable, Iterable, Mapping, Protocol


@dataclass(frozen=True)
class AccountCredentials:
    account_id: str
    platform: str
    handle: str
    access_token: str
    instance_url: str | None
    settings: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PublishRequest:
    attempt_key: str  # stable for one attempt of one destination: the platform-side idempotency key
    account: AccountCredentials
    text: str
    media_urls: tuple[str, ...]


@dataclass(frozen=True)
class PublishResult:
    platform_post_id: str
    url: str | None


class ErrorKind(StrEnum):
    rate_limited = "rate_limited"  # 429 or a spent budget: wait (Retry-After), do not count a failure
    auth = "auth"  # the token is refused: refresh or reconnect
    invalid_content = "invalid_content"  # the platform will never take this content
    transient = "transient"  # the platform did not take it; trying again may work
    permanent = "permanent"  # the platform will never take it from this account
    unknown = "unknown"  # sent, but no answer (timeout, dropped connection): it may have posted


class PublishError(Exception):
    def __init__(self, kind: ErrorKind, detail: str, retry_after_s: float | None = None,
                 status_code: int | None = None) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail
        self.retry_after_s = retry_after_s
        self.status_code = status_code


@dataclass(frozen=True)
class RateBudget:
    """A documented request budget: ``requests`` per ``per_s`` seconds, per account or per app
    (Herald's one client registration, shared by every account of that platform)."""

    requests: int
    per_s: float
    scope: str = "account"  # "account" or "app"
    source: str = ""  # the doc page that states it


class Pkce(StrEnum):
    """What a platform's authorization server does with PKCE (RFC 7636). Herald sends an S256
    challenge whenever the platform takes one; ``plain`` is never used."""

    required = "S256 required"
    supported = "S256 supported"
    none = "none"


@dataclass(frozen=True)
class TokenRefresh:
    """How a platform grants and refreshes an account's tokens (OAuth 2.0, processors/platforms/oauth.py).

    Refresh: the refresh-token grant at ``token_endpoint`` (given the account's instance URL, for
    platforms that have instances). ``tokens_expire`` says whether the platform documents expiring
    access tokens; Herald refreshes whenever an account has a refresh token and its token expires
    (or is refused with 401), whatever the platform.

    Connect: the authorization-code grant (RFC 6749 §4.1): the user approves at
    ``authorization_endpoint`` (None: the platform cannot be connected through Herald's OAuth flow,
    only with tokens obtained elsewhere), asked for ``scopes``, with a PKCE S256 challenge as
    ``pkce`` says; the code is exchanged at ``token_endpoint``, Herald authenticating with one of
    ``client_auth`` (RFC 6749 §2.3.1). ``per_instance``: each account names the server it lives on
    (Mastodon), and both endpoints are that server's."""

    token_endpoint: Callable[[str | None], str]
    tokens_expire: bool
    source: str = ""  # the doc page that states it
    authorization_endpoint: Callable[[str | None], str] | None = None
    scopes: tuple[str, ...] = ()
    pkce: Pkce = Pkce.none
    client_auth: tuple[str, ...] = ("client_secret_post",)
    per_instance: bool = False
    connect_source: str = ""  # the doc page of the authorization flow

    @property
    def connectable(self) -> bool:
        return self.authorization_endpoint is not None


class PlatformAdapter(Protocol):
    platform: str
    rate_budgets: tuple[RateBudget, ...]
    # None: no OAuth at all (tokens are neither refreshed nor obtained through Herald's connect
    # flow); a refused token then needs a reconnect.
    token_refresh: TokenRefresh | None

    def publish(self, request: PublishRequest) -> PublishResult:
        """Post it once; raises PublishError. Sends ``request.attempt_key`` as the platform's
        idempotency key where the platform has one."""
        ...

    def reconcile(self, request: PublishRequest) -> PublishResult | None:
        """After an unknown outcome: the post if the platform has it, None if it provably has not.
        Raises PublishError(transient) when it cannot tell."""
        ...


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After in either RFC 9110 form: delta-seconds or an HTTP-date (past dates give 0)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if seconds >= 0 else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 850/asctime forms parse naive; HTTP-dates are always GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def classify_http_error(
    status_code: int, headers: Mapping[str, str], body_text: str, now: datetime | None = None
) -> PublishError:
    retry_after = retry_after_seconds(_header(headers, "retry-after"), now)
    if retry_after is None:
        retry_after = _reset_after(headers, now)
    detail = f"HTTP {status_code}: {body_text[:500]}"
    if status_code == 429:
        return PublishError(ErrorKind.rate_limited, detail, retry_after, status_code)
    if status_code in (401, 403):
        return PublishError(ErrorKind.auth, detail, status_code=status_code)
    if status_code in (400, 413, 422):
        return PublishError(ErrorKind.invalid_content, detail, status_code=status_code)
    if status_code in (408, 425) or status_code >= 500:
        # 503 may carry Retry-After too
        return PublishError(ErrorKind.transient, detail, retry_after, status_code)
    return PublishError(ErrorKind.permanent, detail, status_code=status_code)


def _reset_after(headers: Mapping[str, str], now: datetime | None) -> float | None:
    """Seconds until a rate-limit window resets, from ``x-rate-limit-reset`` (X: epoch seconds) or
    ``X-RateLimit-Reset`` (Mastodon: an ISO 8601 time)."""
    value = _header(headers, "x-rate-limit-reset") or _header(headers, "x-ratelimit-reset")
    if not value:
        return None
    now = now or datetime.now(UTC)
    try:
        return max(0.0, float(value) - now.timestamp())
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)  # httpx.Headers is case-insensitive; a plain dict may not be
    if value is not None:
        return value
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


class UnknownPlatform(KeyError):
    def __str__(self) -> str:  # KeyError's default repr-quotes the message
        return str(self.args[0])


class AdapterRegistry:
    def __init__(self, adapters: Iterable[PlatformAdapter] = ()) -> None:
        self._adapters: dict[str, PlatformAdapter] = {}
        for adapter in adapters:
            self.register(adapter)

    def register(self, adapter: PlatformAdapter) -> None:
        if adapter.platform in self._adapters:
            raise ValueError(f"an adapter for platform {adapter.platform!r} is already registered")
        self._adapters[adapter.platform] = adapter

    def get(self, platform: str) -> PlatformAdapter:
        try:
            return self._adapters[platform]
        except KeyError:
            known = ", ".join(sorted(self._adapters)) or "none"
            raise UnknownPlatform(f"no adapter for platform {platform!r} (known: {known})") from None

    def platforms(self) -> list[str]:
        return sorted(self._adapters)
