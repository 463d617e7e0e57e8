"""Running role loops in threads for the length of a ``with`` block."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

from herald.runtime.wiring import Herald, run_loops

Loop = Callable[[threading.Event], None]


def role_loops(herald: Herald, *roles: str) -> list[Loop]:
    """Every loop of the named roles (``"handler"``, ``"relay"``, ``"processors"``, ``"projections"``)."""
    return [loop for role in roles for loop in herald.loops(role)]


class Loops:
    """Loops started with :func:`herald.runtime.wiring.run_loops` and one shared stop event."""

    def __init__(self, loops: list[Loop]) -> None:
        self.stop = threading.Event()
        self.threads = run_loops(loops, self.stop)
        self._stopping = False

    def assert_running(self) -> None:
        """Fails when a loop died (run_loops sets the stop event then) before it was asked to stop."""
        assert self._stopping or not self.stop.is_set(), "a role loop died"

    def stop_and_join(self, timeout: float = 20) -> list[threading.Thread]:
        """Ask every loop to stop and wait for each; returns the threads still alive (none, normally)."""
        self._stopping = True
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=timeout)
        return [t for t in self.threads if t.is_alive()]


@contextlib.contextmanager
def running(loops: list[Loop], *, must_stop: bool = False, join_timeout: float = 20) -> Iterator[Loops]:
    """Run ``loops`` while the block runs, then stop and join them (also when the block fails).
    With ``must_stop``, a loop still alive after ``join_timeout`` fails the test."""
    started = Loops(loops)
    try:
        yield started
    finally:
        alive = started.stop_and_join(join_timeout)
    if must_stop:
        assert not alive, f"a role did not stop: {[t.name for t in alive]}"
