"""Helpers for the platform adapter tests (tests/integration/test_adapter_*.py)."""

from __future__ import annotations

from typing import Callable

import pytest

from processors.platforms.base import AccountCredentials, PublishError, PublishRequest


def request_for(platform: str, token: str, text: str = "Hello from Herald", *, media: tuple[str, ...] = (),
                key: str = "attempt-1", **settings: str) -> PublishRequest:
    account = AccountCredentials("acct-1", platform, "herald", token, None, settings)
    return PublishRequest(attempt_key=key, account=account, text=text, media_urls=media)


def failure(call: Callable[[], object]) -> PublishError:
    with pytest.raises(PublishError) as raised:
        call()
    return raised.value
