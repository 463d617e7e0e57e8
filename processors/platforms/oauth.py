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

Connecting an account is the authorization-code grant (RFC 6749 §4.1):

- ``authorization_url``: the authorization request (§4.1.1): response_type=code, client_id,
  redirect_uri, scope, ``state`` (§10.12: binds the answer to the request that started it), and,
  where the platform takes PKCE, ``code_challenge`` with ``code_challenge_method=S256``
  (RFC 7636 §4.3); ``new_pkce`` makes the verifier (§4.1: 43–128 unreserved characters, here 86
  from 64 random bytes) and its challenge BASE64URL(SHA256(ASCII(verifier))) (§4.2).
- ``exchange_code``: the access token request (§4.1.3): grant_type=authorization_code, code,
  redirect_uri (the same as in the authorization request), code_verifier (RFC 7636 §4.5) and
  client authentication. Its errors are classified as the refresh grant's: an error answer
  (§5.2: ``invalid_grant`` — a wrong, used or expired code, a redirect_uri or PKCE verifier that
  does not match —, ``invalid_client``, …) is ``CodeRefused``; no useful answer is
  ``CodeUnavailable``. A code is single-use (§4.1.2), so the exchange is retried only when the
  request provably never left (connection refused or not established).

Spec: https://www.rfc-editor.org/rfc/rfc6749#section-4.1, https://www.rfc-editor.org/rfc/rfc7636
(PKCE; appendix B is the S256 example the unit tests check).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Callable, Iterable
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import httpx
from tenacity import (Retrying, retry_if_exception, retry_if_exception_type, stop_after_attempt,
                      wait_exponential_jitter)

from herald.net.guarded import DestinationRefused

# The ``error`` of a grant refused without asking: the endpoint's host resolves to an address
# Herald may not call (herald.net.guarded); ``status_code`` is then 0.
DESTINATION_REFUSED = "destination_refused"


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


class GrantRefused(Exception):
    """The token endpoint answered an error (§5.2): asking again the same way cannot succeed."""

    def __init__(self, error: str, description: str, status_code: int) -> None:
        super().__init__(f"HTTP {status_code} {error}: {description}"[:500])
        self.error, self.description, self.status_code = error, description, status_code


class GrantUnavailable(Exception):
    """The token endpoint could not be asked or did not answer usefully; asking later may work."""

    def __init__(self, message: str, *, sent: bool = True) -> None:
        super().__init__(message)
        self.sent = sent  # False: the request never reached the endpoint


class RefreshRefused(GrantRefused):
    """The refresh was refused for good (§5.2): the account must be connected again."""


class RefreshUnavailable(GrantUnavailable):
    """The refresh could not be made now."""


class CodeRefused(GrantRefused):
    """The platform refused the authorization code (or Herald's client, or the PKCE verifier)."""


class CodeUnavailable(GrantUnavailable):
    """The code exchange could not be made now (the code may still be unused)."""


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
    return _token_request(http, endpoint, client, form, timeout_s, now, RefreshRefused, RefreshUnavailable)


def _token_request(http: httpx.Client, endpoint: str, client: OAuthClient, form: dict[str, str], timeout_s: float,
                   now: Callable[[], datetime], refused: type[GrantRefused],
                   unavailable: type[GrantUnavailable]) -> Tokens:
    """One POST to the token endpoint with client authentication; its answer as Tokens (§5.1),
    ``refused`` (§5.2) or ``unavailable``."""
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
    except DestinationRefused as error:  # the endpoint resolves inside (guarded_client): asking again cannot help
        raise refused(DESTINATION_REFUSED, error.detail, 0) from None
    except (httpx.ConnectError, httpx.ConnectTimeout) as error:  # nothing was sent
        raise unavailable(f"POST {endpoint}: {type(error).__name__}", sent=False) from None
    except httpx.HTTPError as error:
        raise unavailable(f"POST {endpoint}: {type(error).__name__}") from None
    asked_at = now()
    body = _json(response)
    if response.status_code in (400, 401):
        raise refused(str(body.get("error") or "invalid_request"), str(body.get("error_description") or ""),
                      response.status_code)
    if response.status_code != 200:
        raise unavailable(f"POST {endpoint}: HTTP {response.status_code}")
    access_token = body.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise unavailable(f"POST {endpoint}: HTTP 200 without an access_token")
    expires_in = body.get("expires_in")
    expires_at = None
    if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool) and expires_in > 0:
        expires_at = asked_at + timedelta(seconds=float(expires_in))
    new_refresh = body.get("refresh_token")
    return Tokens(access_token, new_refresh if isinstance(new_refresh, str) and new_refresh else None, expires_at)


# Connecting ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PkcePair:
    verifier: str
    challenge: str
    method: str = "S256"

    def __repr__(self) -> str:  # the verifier is a secret until the code is exchanged
        return f"PkcePair(challenge={self.challenge!r}, method={self.method!r})"


def s256_challenge(verifier: str) -> str:
    """RFC 7636 §4.2: BASE64URL-ENCODE(SHA256(ASCII(code_verifier))), without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def new_pkce() -> PkcePair:
    verifier = secrets.token_urlsafe(64)  # 86 characters of [A-Za-z0-9_-], within §4.1's 43–128
    return PkcePair(verifier, s256_challenge(verifier))


def new_state() -> str:
    """An unguessable ``state`` (RFC 6749 §10.12; 256 bits)."""
    return secrets.token_urlsafe(32)


def authorization_url(endpoint: str, *, client_id: str, redirect_uri: str, state: str, scopes: Iterable[str] = (),
                      code_challenge: str | None = None) -> str:
    """The authorization request (§4.1.1), keeping any query the endpoint already has (§3.1)."""
    parts = urlsplit(endpoint)
    query = [*parse_qsl(parts.query, keep_blank_values=True), ("response_type", "code"), ("client_id", client_id),
             ("redirect_uri", redirect_uri)]
    scope = " ".join(scopes)
    if scope:
        query.append(("scope", scope))
    query.append(("state", state))
    if code_challenge is not None:
        query += [("code_challenge", code_challenge), ("code_challenge_method", "S256")]
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


def exchange_code(http: httpx.Client, endpoint: str, client: OAuthClient, code: str, redirect_uri: str, *,
                  code_verifier: str | None = None, timeout_s: float = 10.0, attempts: int = 3,
                  now: Callable[[], datetime] = lambda: datetime.now(UTC), wait_initial_s: float = 0.2) -> Tokens:
    """The access token request (§4.1.3). Raises CodeRefused or CodeUnavailable."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if code_verifier is not None:
        form["code_verifier"] = code_verifier
    retrying = Retrying(stop=stop_after_attempt(attempts), reraise=True,
                        wait=wait_exponential_jitter(multiplier=wait_initial_s, max=2.0, jitter=wait_initial_s),
                        retry=retry_if_exception(lambda e: isinstance(e, CodeUnavailable) and not e.sent))
    return retrying(_token_request, http, endpoint, client, form, timeout_s, now, CodeRefused, CodeUnavailable)


def _json(response: httpx.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
