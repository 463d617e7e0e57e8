"""The OAuth 2.0 refresh-token grant (RFC 6749 §6), for any platform whose adapter declares a
token endpoint (``TokenRefresh`` on the adapter port).

    POST <token endpoint>
    Content-Type: application/x-www-form-urlencoded
    grant_type=refresh_token&refresh_token=…  (+ client authentication, RFC 6749 §2.3.1)

A success (§5.1) carries ``access_token``, usually ``expires_in`` and, where the server rotates
refresh tokens, a new ``refresh_token``: the client "MUST discard the old refresh token and
replace it with the new refresh token" (§6), so the caller persists it before using the new
access token. An error (§5.2) is HTTP 400 (401 for ``invalid_client``) with ``error`` —
``invalid_grant`` (the refresh token is expired, revoked or was already rotated),
``invalid_client``, ``unauthorized_client``, … These do not get better by asking again:
``RefreshRefused``. A network failure, 429 or 5xx might: retried a few times here (tenacity),
then ``RefreshUnavailable``.

Spec: https://www.rfc-editor.org/rfc/rfc6749#section-6 (request), #section-5.1 / #section-5.2
(responses), #section-2.3.1 (client_secret_basic / client_secret_post).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Callable

import httpx
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter


@dataclass(frozen=True)
class OAuthClient:
    """Herald's registration with a platform (from settings; the secret never leaves the process)."""

    client_id: str
    client_secret: str = ""
    auth_method: str = "client_secret_post"  # or "client_secret_basic" (RFC 6749 §2.3.1)


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str | None  # None: the server issued no new one, the old one stays valid (§6)
    expires_at: datetime | None  # None: the server did not say (expires_in is only RECOMMENDED, §5.1)


class RefreshRefused(Exception):
    """The token endpoint refused for good (§5.2): the account must be connected again."""

    def __init__(self, error: str, description: str, status_code: int) -> None:
        super().__init__(f"HTTP {status_code} {error}: {description}"[:500])
        self.error, self.description, self.status_code = error, description, status_code


class RefreshUnavailable(Exception):
    """The token endpoint could not be asked or did not answer usefully; asking later may work."""


def refresh(http: httpx.Client, endpoint: str, client: OAuthClient, refresh_token: str, *,
            timeout_s: float = 10.0, attempts: int = 3, now: Callable[[], datetime] = lambda: datetime.now(UTC),
            wait_initial_s: float = 0.2) -> Tokens:
    """One refresh-token grant, retried a few times (jittered) while the endpoint is unavailable."""
    retrying = Retrying(stop=stop_after_attempt(attempts), reraise=True,
                        wait=wait_exponential_jitter(multiplier=wait_initial_s, max=2.0, jitter=wait_initial_s),
                        retry=retry_if_exception_type(RefreshUnavailable))
    return retrying(_refresh_once, http, endpoint, client, refresh_token, timeout_s, now)


def _refresh_once(http: httpx.Client, endpoint: str, client: OAuthClient, refresh_token: str, timeout_s: float,
                  now: Callable[[], datetime]) -> Tokens:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    auth: tuple[str, str] | None = None
    if client.auth_method == "client_secret_basic":
        auth = (client.client_id, client.client_secret)
    else:
        form["client_id"] = client.client_id
        if client.client_secret:
            form["client_secret"] = client.client_secret
    try:
        response = http.post(endpoint, data=form, auth=auth, timeout=timeout_s,
                             headers={"Accept": "application/json"})
    except httpx.HTTPError as error:
        raise RefreshUnavailable(f"POST {endpoint}: {type(error).__name__}") from None
    asked_at = now()
    body = _json(response)
    if response.status_code in (400, 401):
        raise RefreshRefused(str(body.get("error") or "invalid_request"), str(body.get("error_description") or ""),
                             response.status_code)
    if response.status_code != 200:
        raise RefreshUnavailable(f"POST {endpoint}: HTTP {response.status_code}")
    access_token = body.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise RefreshUnavailable(f"POST {endpoint}: HTTP 200 without an access_token")
    expires_in = body.get("expires_in")
    expires_at = None
    if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool) and expires_in > 0:
        expires_at = asked_at + timedelta(seconds=float(expires_in))
    new_refresh = body.get("refresh_token")
    return Tokens(access_token, new_refresh if isinstance(new_refresh, str) and new_refresh else None, expires_at)


def _json(response: httpx.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
