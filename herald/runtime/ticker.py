"""Timed work on one generic loop: the dispatcher (and later the credit clock) are Tickers.

A ``Ticker`` calls ``tick()`` every ``interval_s``; when a tick reports ``full`` or more items
done there may be more waiting, so it ticks again at once. Each completed tick beats the loop's
health heartbeat. A tick that raises is counted (``herald_batch_failures_total``), logged, and
followed by a growing delay (``Backoff``) before the next one: a database or broker away is
waited out, never fatal.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

from herald.runtime import metrics

log = logging.getLogger(__name__)


class Backoff:
    """A growing delay, capped: ``initial_s``, twice that, … up to ``max_s``; ``reset()`` after a success."""

    def __init__(self, initial_s: float = 0.5, max_s: float = 10.0) -> None:
        if initial_s <= 0 or max_s < initial_s:
            raise ValueError(f"backoff needs 0 < initial_s <= max_s (got {initial_s}, {max_s})")
        self.initial_s, self.max_s = initial_s, max_s
        self.failures = 0  # consecutive

    def next(self) -> float:
        """The delay before the next try, one failure later."""
        delay = min(self.max_s, self.initial_s * 2 ** min(self.failures, 62))
        self.failures += 1
        return delay

    def reset(self) -> None:
        self.failures = 0


class Ticker:
    """Runs ``tick`` every ``interval_s`` until stopped; see the module docstring.

    ``tick`` returns how many items it handled (None counts as 0); ``full``, when given, is the
    most one tick takes (its limit), so a tick that reached it is followed by another at once.
    """

    def __init__(self, name: str, interval_s: float, tick: Callable[[], int | None], full: int | None = None, *,
                 backoff_initial_s: float = 0.5, backoff_max_s: float = 10.0) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive (got {interval_s})")
        self.name, self.interval_s, self.tick, self.full = name, interval_s, tick, full
        self.backoff_initial_s, self.backoff_max_s = backoff_initial_s, backoff_max_s

    def run(self, stop: threading.Event) -> None:
        backoff = Backoff(self.backoff_initial_s, self.backoff_max_s)
        while not stop.is_set():
            try:
                done = self.tick() or 0
            except Exception as error:  # noqa: BLE001 - database or broker away: back off, try again
                metrics.FAILURES.labels(self.name).inc()
                delay = backoff.next()
                if backoff.failures == 1:
                    log.exception("%s: tick failed; next try in %.1fs", self.name, delay)
                else:
                    log.warning("%s: tick failed again (%s: %s); next try in %.1fs",
                                self.name, type(error).__name__, error, delay)
                stop.wait(delay)
                continue
            backoff.reset()
            metrics.beat(self.name)
            if self.full is not None and done >= self.full:
                continue  # a full tick: there may be more waiting
            stop.wait(self.interval_s)
