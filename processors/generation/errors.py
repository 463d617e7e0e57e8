"""Provider failures, classified so callers can tell waiting from fixing."""

from __future__ import annotations

from enum import StrEnum


class FailureKind(StrEnum):
    rate_limited = "rate_limited"  # 429 (and Anthropic's 529 overloaded): wait, then again
    auth = "auth"  # 401/403: the key is wrong; retrying cannot help
    invalid_output = "invalid_output"  # the model's answer broke the contract, even after one repair
    transient = "transient"  # 5xx, timeouts, connection errors
    rejected = "rejected"  # any other 4xx: the request itself was refused
    not_configured = "not_configured"  # the provider settings are incomplete: nothing was called


class ProviderError(Exception):
    def __init__(self, kind: FailureKind, detail: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail
        self.retry_after_s = retry_after_s

    @property
    def retryable(self) -> bool:
        return self.kind in (FailureKind.rate_limited, FailureKind.transient)


def classify_status(status: int, detail: str, retry_after: str | None = None) -> ProviderError:
    seconds = _seconds(retry_after)
    if status == 429 or status == 529:
        return ProviderError(FailureKind.rate_limited, detail, retry_after_s=seconds)
    if status in (401, 403):
        return ProviderError(FailureKind.auth, detail)
    if status >= 500 or status == 408:
        return ProviderError(FailureKind.transient, detail, retry_after_s=seconds)
    return ProviderError(FailureKind.rejected, detail)


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: the exponential wait applies instead
