"""Workspace locks across processes: PostgreSQL advisory locks held for one decision.

Gateway processes and command handlers all decide commands on the same workspaces. Each
decision holds its workspaces' transaction-level advisory locks on a connection of its own
(taken in key order, so two batches never wait on each other in a cycle); commit releases
them. Correctness does not rest on them (a save still fails on a stale aggregate version);
they make concurrent writers queue instead of conflicting.
"""

from __future__ import annotations

import contextlib
import zlib
from typing import Callable, ContextManager, Iterator

from psycopg_pool import ConnectionPool

NAMESPACE = 0x4845  # first key of the two-int advisory lock form: Herald's workspace locks


def workspace_locks(pool: ConnectionPool) -> Callable[[list[str]], ContextManager[None]]:
    @contextlib.contextmanager
    def hold(workspace_ids: list[str]) -> Iterator[None]:
        keys = sorted({zlib.crc32(w.encode()) - 2**31 for w in workspace_ids})  # int4 range
        if not keys:
            yield
            return
        with pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s, k) FROM unnest(%s::int[]) AS k ORDER BY k",
                         (NAMESPACE, keys))
            yield

    return hold
