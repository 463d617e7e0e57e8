"""One JSON POST to a provider, its failures classified (errors.py). The key is sent in a header
and never appears in an error's detail."""

from __future__ import annotations

from typing import Any

import httpx

from processors.generation.errors import FailureKind, ProviderError, classify_status


def post_json(client: httpx.Client, url: str, headers: dict[str, str], body: dict[str, Any],
              secret: str = "") -> dict[str, Any]:
    try:
        response = client.post(url, headers=headers, json=body)
    except httpx.TimeoutException as error:
        raise ProviderError(FailureKind.transient, f"timed out: {type(error).__name__}") from None
    except httpx.TransportError as error:
        raise ProviderError(FailureKind.transient, f"connection failed: {type(error).__name__}") from None
    if response.status_code >= 400:
        message = _error_message(response)
        if secret:  # some servers echo the key they refused; the detail is recorded in events
            message = message.replace(secret, "[redacted]")
        raise classify_status(response.status_code, f"HTTP {response.status_code}: {message}",
                              response.headers.get("retry-after"))
    try:
        answer = response.json()
    except ValueError:
        raise ProviderError(FailureKind.transient, "the provider answered with a body that is not JSON") from None
    if not isinstance(answer, dict):
        raise ProviderError(FailureKind.transient, "the provider answered with JSON that is not an object")
    return answer


def _error_message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return response.text[:200]
    if isinstance(error, dict):
        return str(error.get("message") or error.get("type") or error)[:300]
    return str(error)[:300]
