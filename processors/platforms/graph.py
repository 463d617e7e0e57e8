"""What Meta's Graph APIs share (Facebook Pages, Instagram, Threads): their error bodies, their
rate-limit headers, and waiting for a media container to be ready.

Errors (https://developers.facebook.com/docs/graph-api/guides/error-handling): a failed request
answers ``{"error": {"message", "type", "code", "error_subcode", "is_transient", "fbtrace_id"}}``,
usually with HTTP 400 whatever went wrong, so the ``code`` decides:

- ``OAuthException`` without subcode, 102 and 190 ("Access token has expired"): the token is
  refused. Herald treats it as the 401 it means (status_code 401), so the engine refreshes or marks
  the account ``needs_reconnect``.
- 4, 17, 32, 613 and 80001–80014 (app, user, page and business-use-case throttling), 341 (application
  limit): rate limited. The wait is ``estimated_time_to_regain_access`` (minutes) from the
  ``X-Business-Use-Case-Usage`` header where present
  (https://developers.facebook.com/docs/graph-api/overview/rate-limiting).
- Instagram's subcode 2207042 (the account's content publishing limit): rate limited.
- 1, 2 ("temporary issue due to downtime") and anything marked ``is_transient``: transient.
- 368 ("temporarily blocked for policy violations"): transient (the docs say wait and retry).
- 10 and 200–299 (permission denied or removed): auth without a 401: nothing to refresh, the
  account must be connected again with the permission.
- 506 (duplicate post), 100 (invalid parameter), 1609005 (link error) and other 4xx: invalid content.

Authentication: the access token goes in ``Authorization: Bearer`` rather than the documented
``access_token`` query parameter, so that it never appears in a URL (request logs).
"""

from __future__ import annotations

import json
from typing import Any, Callable, Mapping

from tenacity import RetryError, Retrying, retry_if_result, stop_after_attempt, wait_fixed

from processors.platforms.base import ErrorKind, PublishError, classify_http_error, header

AUTH_CODES = frozenset({102, 190})
RATE_CODES = frozenset({4, 17, 32, 341, 613, *range(80001, 80015)})
# Instagram's 2207042: "the account has reached its publishing limit" (100 API-published posts a day).
RATE_SUBCODES = frozenset({2207042})
TRANSIENT_CODES = frozenset({1, 2, 368})
PERMISSION_CODES = frozenset({10, *range(200, 300)})


def classify_graph_error(status_code: int, headers: Mapping[str, str], body_text: str) -> PublishError:
    try:
        error = json.loads(body_text).get("error")
    except (ValueError, AttributeError):
        error = None
    if not isinstance(error, dict):
        return classify_http_error(status_code, headers, body_text)
    code = error.get("code") if isinstance(error.get("code"), int) else -1
    detail = (f"HTTP {status_code}: Graph error {code}"
              f"{'/' + str(error['error_subcode']) if error.get('error_subcode') else ''}: "
              f"{str(error.get('message', ''))[:300]}")
    if code in AUTH_CODES or (error.get("type") == "OAuthException" and code == -1):
        return PublishError(ErrorKind.auth, detail, status_code=401)
    if code in RATE_CODES or error.get("error_subcode") in RATE_SUBCODES or status_code == 429:
        return PublishError(ErrorKind.rate_limited, detail, regain_after_s(headers), status_code)
    if code in TRANSIENT_CODES or error.get("is_transient") is True or status_code >= 500:
        return PublishError(ErrorKind.transient, detail, status_code=status_code)
    if code in PERMISSION_CODES:
        return PublishError(ErrorKind.auth, detail, status_code=status_code)
    return PublishError(ErrorKind.invalid_content, detail, status_code=status_code)


def regain_after_s(headers: Mapping[str, str]) -> float | None:
    """The longest ``estimated_time_to_regain_access`` (minutes) in X-Business-Use-Case-Usage
    (``{"<business id>": [{"type", "call_count", …, "estimated_time_to_regain_access"}]}``)."""
    value = header(headers, "x-business-use-case-usage")
    if not value:
        return None
    try:
        usage = json.loads(value)
        minutes = [float(entry.get("estimated_time_to_regain_access") or 0)
                   for entries in usage.values() for entry in entries]
    except (ValueError, AttributeError, TypeError):
        return None
    return max(minutes) * 60 if minutes else None


def wait_until_ready(status: Callable[[], dict[str, Any]], *, field: str, polls: int, interval_s: float,
                     what: str) -> None:
    """Poll a media container until ``field`` says FINISHED (Instagram ``status_code``, Threads
    ``status``): IN_PROGRESS waits, ERROR is invalid content, EXPIRED transient (a new container
    on the next attempt), still IN_PROGRESS after ``polls`` transient."""
    poll = Retrying(retry=retry_if_result(lambda answer: answer.get(field) == "IN_PROGRESS"),
                    wait=wait_fixed(interval_s), stop=stop_after_attempt(polls))
    try:
        answer = poll(status)
    except RetryError:
        raise PublishError(ErrorKind.transient, f"{what} still processing after {polls} checks") from None
    state = answer.get(field)
    if state in ("FINISHED", "PUBLISHED"):
        return
    reason = str(answer.get("error_message") or answer.get("status") or "")[:300]
    if state == "ERROR":
        raise PublishError(ErrorKind.invalid_content, f"{what} failed processing: {reason}")
    raise PublishError(ErrorKind.transient, f"{what} is {state}: {reason}")

