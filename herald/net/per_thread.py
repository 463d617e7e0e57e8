"""One HTTP client per thread, behind one object.

httpx's connection pool does its bookkeeping under one lock, and that work grows with the
requests waiting times the connections open. A hundred publishing threads sharing one pool
queued on that lock (measured: a third of the calls in flight were waiting for it, and a call
to a platform answering in 200 ms took 0.5–0.9 s). A publishing worker makes one call at a
time, so each worker thread gets a client of its own: no lock is shared, and a thread keeps its
kept-alive connections for its next call.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

import httpx


class PerThreadClient:
    """Stands in for an ``httpx.Client``: every attribute is the calling thread's own client's,
    made by ``factory`` on the thread's first use."""

    def __init__(self, factory: Callable[[], httpx.Client]) -> None:
        self._factory = factory
        self._local = threading.local()
        self._made: list[httpx.Client] = []
        self._lock = threading.Lock()

    def client(self) -> httpx.Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._factory()
            with self._lock:
                self._made.append(client)
        return client

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client(), name)

    def close(self) -> None:
        with self._lock:
            made, self._made = self._made, []
        for client in made:
            client.close()
