"""Mastodon adapter: the documented REST API, POST /api/v1/statuses with a bearer token.

Rate budget: 300 requests per 5 minutes per account (https://docs.joinmastodon.org/api/rate-limits/);
answers carry ``X-RateLimit-Reset`` (an ISO 8601 time), and 429 when it is spent.

Tokens: Mastodon's token endpoint (POST /oauth/token, https://docs.joinmastodon.org/methods/oauth/#token)
answers a Token (https://docs.joinmastodon.org/entities/Token/) with no ``expires_in`` and no
``refresh_token``: its access tokens do not expire, they stay valid until revoked (POST /oauth/revoke).
So an ordinary Mastodon account is never refreshed; a token it refuses with 401 means the account
must be connected again. Should an account come with a refresh token and an expiry (an instance
configured to issue them; Mastodon's OAuth is Doorkeeper, which can), the refresh-token grant goes to
the same endpoint.

Connecting (https://docs.joinmastodon.org/methods/oauth/#authorize): the authorization-code grant.
The user approves at ``<instance>/oauth/authorize`` (response_type=code, client_id, redirect_uri,
scope, state); the code is exchanged at ``<instance>/oauth/token`` with grant_type=authorization_code,
client_id/client_secret and the same redirect_uri. Mastodon 4.3.0 "added support for PKCE parameters"
(code_challenge, code_challenge_method — "Must be `S256`, as this is the only code challenge method
that is supported by Mastodon for PKCE"; code_verifier at the token endpoint), optional, so Herald
always sends an S256 challenge. App registrations are per instance (POST /api/v1/apps): Herald's
client id and secret come from settings (HERALD_OAUTH_CLIENTS), per instance where needed.

Every status post carries ``Idempotency-Key: <attempt_key>``. Mastodon documents that a repeated
request with the same key (same account, within one hour) returns the status it already created
instead of posting again; that is what makes retries and reconciliation safe.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import httpx
from tenacity import Retrying, retry_if_result, stop_after_attempt, wait_fixed

from domain.post.platform_rules import mastodon_length
from herald.net.guarded import DestinationRefused
from herald.net.safe_fetch import FetchRefused, SafeFetcher
from processors.platforms.base import (
    Capabilities,
    Reconcile,
    ErrorKind,
    Pkce,
    PublishError,
    PublishRequest,
    PublishResult,
    RateBudget,
    TokenRefresh,
    classify_http_error,
)

# What Herald asks a Mastodon user for: post statuses, upload their media, and read the account
# itself (its handle, via verify_credentials). Granular scopes: https://docs.joinmastodon.org/api/oauth-scopes/
SCOPES = ("write:statuses", "write:media", "read:accounts")
# Mastodon's default limit, counted as Mastodon counts (every URL as 23 characters).
MAX_CHARACTERS = 500
# /api/v2/media answers 202 (url null) while it still processes a file; a status may not attach it yet.
MEDIA_PROCESSING_POLLS = 10
MEDIA_POLL_INTERVAL_S = 0.5


class MastodonAdapter:
    platform = "mastodon"
    rate_budgets = (RateBudget(300, 300.0, "account", "https://docs.joinmastodon.org/api/rate-limits/"),)
    token_refresh = TokenRefresh(
        token_endpoint=lambda instance_url: f"{(instance_url or '').rstrip('/')}/oauth/token",
        tokens_expire=False, source="https://docs.joinmastodon.org/methods/oauth/#token",
        authorization_endpoint=lambda instance_url: f"{(instance_url or '').rstrip('/')}/oauth/authorize",
        scopes=SCOPES, pkce=Pkce.supported, client_auth=("client_secret_post", "client_secret_basic"),
        per_instance=True, connect_source="https://docs.joinmastodon.org/methods/oauth/#authorize")
    required_settings: tuple[str, ...] = ()
    capabilities = Capabilities.from_rules("mastodon", threads=False, reconcile=Reconcile.idempotency_key,
                                           doc_url="https://docs.joinmastodon.org/methods/statuses/#create")

    # ``http`` calls the account's instance, a URL the client gave: it must be a
    # ``herald.net.guarded.guarded_client`` (checked at each connection), as wiring builds it.
    def __init__(self, http: httpx.Client, default_base_url: str = "", timeout_s: float = 10,
                 media: SafeFetcher | None = None) -> None:
        self.http = http
        self.default_base_url = default_base_url
        self.timeout_s = timeout_s
        # media_urls come from clients: fetched only through the SSRF guard, never with self.http.
        self.media = media or SafeFetcher(timeout_s=timeout_s)

    def publish(self, request: PublishRequest) -> PublishResult:
        length = mastodon_length(request.text)
        if length > MAX_CHARACTERS:
            raise PublishError(ErrorKind.invalid_content, f"{length} characters; Mastodon allows {MAX_CHARACTERS}")
        base = (request.account.instance_url or self.default_base_url).rstrip("/")
        if not base:
            raise PublishError(ErrorKind.permanent, f"account {request.account.account_id} names no Mastodon instance")
        auth = {"Authorization": f"Bearer {request.account.access_token}"}
        body: dict[str, Any] = {"status": request.text, "visibility": "public"}
        if request.media_urls:
            body["media_ids"] = [self._upload(base, auth, url) for url in request.media_urls]
        status = self._call(
            "POST", f"{base}/api/v1/statuses", headers={**auth, "Idempotency-Key": request.attempt_key}, json=body
        )
        if not isinstance(status, dict) or "id" not in status:
            raise PublishError(ErrorKind.transient, "Mastodon answered a status post without a status id")
        return PublishResult(str(status["id"]), status.get("url"))

    def reconcile(self, request: PublishRequest) -> PublishResult | None:
        # Mastodon has no "find my status by client key" lookup, but it does have the Idempotency-Key
        # contract: re-sending the same request with the same key returns the status the lost attempt
        # created, or creates it now if the platform never got it. Either way there is exactly one,
        # so this never needs to answer None. Caveat: Mastodon keeps keys for one hour only; an
        # attempt reconciled later than that could post a second time.
        # Media are uploaded again; unattached uploads are harmless and Mastodon prunes them.
        return self.publish(request)

    def account_handle(self, instance_url: str | None, access_token: str) -> str:
        """``user@host``, from GET /api/v1/accounts/verify_credentials (needs ``read:accounts``)."""
        base = (instance_url or self.default_base_url).rstrip("/")
        account = self._call("GET", f"{base}/api/v1/accounts/verify_credentials",
                             headers={"Authorization": f"Bearer {access_token}"})
        username = account.get("username") if isinstance(account, dict) else None
        if not isinstance(username, str) or not username:
            raise PublishError(ErrorKind.transient, "Mastodon answered verify_credentials without a username")
        return f"{username}@{urlsplit(base).hostname}"

    def _upload(self, base: str, auth: dict[str, str], url: str) -> str:
        try:
            media = self.media.fetch(url)
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
        uploaded = self._call(
            "POST", f"{base}/api/v2/media", headers=auth, files={"file": (filename, media.content, media.content_type)}
        )
        media_id = str(uploaded["id"])
        if uploaded.get("url") is None:
            poll = Retrying(retry=retry_if_result(lambda media: media.get("url") is None),
                            wait=wait_fixed(MEDIA_POLL_INTERVAL_S), stop=stop_after_attempt(MEDIA_PROCESSING_POLLS),
                            retry_error_callback=lambda state: state.outcome.result(), reraise=True)
            time.sleep(MEDIA_POLL_INTERVAL_S)
            uploaded = poll(self._call, "GET", f"{base}/api/v1/media/{media_id}", headers=auth)
        if uploaded.get("url") is None:
            raise PublishError(ErrorKind.transient, f"Mastodon is still processing media {media_id}")
        return media_id

    def _call(self, method: str, url: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, url, timeout=self.timeout_s, **kwargs)
        except DestinationRefused as refused:  # the instance resolves inside (guarded_client): nothing was sent
            raise PublishError(ErrorKind.permanent, f"{method} {url} not called: {refused.detail}") from None
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:  # nothing was sent
            raise PublishError(ErrorKind.transient, f"{method} {url}: {type(error).__name__}: {error}") from None
        except httpx.HTTPError as error:  # sent, then no answer: the platform may have acted on it
            kind = ErrorKind.unknown if method == "POST" else ErrorKind.transient
            raise PublishError(kind, f"{method} {url}: {type(error).__name__}: {error}") from None
        if response.status_code >= 400:
            raise classify_http_error(response.status_code, response.headers, response.text)
        try:
            return response.json()
        except ValueError:
            detail = f"{method} {url}: HTTP {response.status_code} with a non-JSON body"
            raise PublishError(ErrorKind.transient, detail) from None
