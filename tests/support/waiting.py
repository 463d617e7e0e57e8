"""Waiting for a condition with a deadline instead of sleeping a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(check: Callable[[], T], what: str, *, timeout: float = 60, interval: float = 0.1,
               ignoring: tuple[type[BaseException], ...] = ()) -> T:
    """Call ``check`` until it returns something truthy and return that; fail naming ``what`` (and
    the last value seen) when ``timeout`` seconds pass first. Errors in ``ignoring`` count as not
    yet; any other error (an assertion inside ``check`` too) ends the wait at once."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except ignoring as error:  # noqa: PERF203 - a retry loop
            result = error  # type: ignore[assignment]
        else:
            if result:
                return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what} (last: {result!r})")
        time.sleep(interval)


def poll_until(fetch: Callable[[], T], done: Callable[[T], bool], *, timeout: float = 60, interval: float = 0.2) -> T:
    """Call ``fetch`` until ``done`` holds for what it returned, or ``timeout`` seconds passed;
    returns the last value either way, for the caller to assert on with its own message."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(interval)
