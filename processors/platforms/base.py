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
from types import MappingProxyType
from typing import Callable, Iterable, Mapping, Protocol

from domain.post.platform_rules import RULES, Part

_NO_SETTINGS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class AccountCredentials:
    account_id: str
    platform: str
    handle: str
    access_token: str  # the secret: for bot and webhook kinds the bot token, webhook token or signing secret
    instance_url: str | None
    # Non-secret, per-account settings given at connect (page_id, ig_user_id, author_urn, board_id,
    # subreddit, chat_id, …): they travel on the events topic, so never a secret here.
    settings: Mapping[str, str] = field(default_factory=lambda: _NO_SETTINGS)

    def setting(self, name: str) -> str:
        """A required setting; PublishError(permanent) when the account was connected without it
        (the gateway refuses such connects, but commands may come from elsewhere)."""
        value = self.settings.get(name, "").strip()
        if not value:
            raise PublishError(ErrorKind.permanent, f"the {self.platform} account {self.account_id} has no "
                               f"{name!r} setting: connect it again with settings.{name}")
        return value


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


class Reconcile(StrEnum):
    """How an adapter finds out, after an unknown outcome, whether the platform has the post."""

    idempotency_key = "idempotency_key"  # the platform dedupes on Herald's key: sending again is safe
    lookup = "lookup"  # the adapter looks the post up (recent posts, a client-supplied id)
    none = "none"  # the API cannot tell: the unknown outcome goes to an admin


@dataclass(frozen=True)
class Capabilities:
    """What an adapter can do, as ``GET /v1/platforms`` shows it. Text and media limits are the
    domain's content rules (domain/post/platform_rules.py), so ``from_rules`` reads them there."""

    display_name: str
    media_kinds: tuple[str, ...]  # "image", "video", "gif"; "file": any other file (Discord, the generic webhook)
    max_media: int
    max_length: int | None
    length_unit: str
    threads: bool  # a long text goes out as a chain of replies
    reconcile: Reconcile
    doc_url: str  # the API page the adapter follows
    optional_settings: tuple[str, ...] = ()
    notes: str = ""

    @classmethod
    def from_rules(cls, platform: str, *, threads: bool, reconcile: Reconcile, doc_url: str,
                   optional_settings: tuple[str, ...] = (), notes: str = "",
                   media_kinds: tuple[str, ...] | None = None) -> Capabilities:
        """``media_kinds``: what the adapter sends, when it is less than the platform takes."""
        rules = RULES[platform]
        kinds = sorted({str(kind) for option in rules.media for kind in option.kinds if kind.value != "unknown"})
        text = next((limit for limit in rules.limits if limit.part in (Part.text, Part.body, Part.pin_description)),
                    None)
        return cls(display_name=rules.display, media_kinds=tuple(kinds) if media_kinds is None else media_kinds,
                   max_media=max((option.maximum for option in rules.media), default=0),
                   max_length=text.maximum if text else None, length_unit=text.unit.name if text else "",
                   threads=threads, reconcile=reconcile, doc_url=doc_url, optional_settings=optional_settings,
                   notes=notes)


class PlatformAdapter(Protocol):
    platform: str
    rate_budgets: tuple[RateBudget, ...]
    # Settings an account of this platform must be connected with (AccountCredentials.settings);
    # the connect endpoint refuses a connect without them (422 missing_settings).
    required_settings: tuple[str, ...]
    capabilities: Capabilities
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


header = _header  # a header by name, case-insensitively, from httpx.Headers or a plain mapping


class UnknownPlatform(KeyError):
    def __str__(self) -> str:  # KeyError's default repr-quotes the message
        return str(self.args[0])


PORT = ("platform", "rate_budgets", "token_refresh", "required_settings", "capabilities", "publish", "reconcile")


class AdapterRegistry:
    def __init__(self, adapters: Iterable[PlatformAdapter] = ()) -> None:
        self._adapters: dict[str, PlatformAdapter] = {}
        for adapter in adapters:
            self.register(adapter)

    def register(self, adapter: PlatformAdapter) -> None:
        lacking = [name for name in PORT if not hasattr(adapter, name)]
        if lacking:
            raise TypeError(f"{type(adapter).__name__} lacks {', '.join(lacking)} of the adapter port "
                            "(processors/platforms/base.py: PlatformAdapter)")
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

    def all(self) -> list[PlatformAdapter]:
        return [self._adapters[name] for name in sorted(self._adapters)]


def missing_settings(adapter: PlatformAdapter, settings: Mapping[str, str]) -> list[str]:
    """The adapter's required settings that ``settings`` lacks or leaves blank."""
    required = getattr(adapter, "required_settings", ())
    return [name for name in required if not str(settings.get(name, "")).strip()]
