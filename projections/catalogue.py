"""Every read model, and the one function a projection consumer calls per event.

Adding a read model = a module exposing ``PROJECTION`` plus one entry in ``PROJECTIONS``.
Order matters only for DDL: ``posts`` reads ``queue_destinations``, which ``queue`` creates.
"""

from __future__ import annotations

from psycopg import Connection

from projections import accounts, positions, posts, queue, wallet, workspaces
from projections.base import Projection
from schemas.events import CloudEvent

PROJECTIONS: tuple[Projection, ...] = (
    queue.PROJECTION,
    wallet.PROJECTION,
    posts.PROJECTION,
    accounts.PROJECTION,
    workspaces.PROJECTION,
    positions.PROJECTION,
)
DDL: tuple[str, ...] = tuple(p.ddl for p in PROJECTIONS)
TABLES: tuple[str, ...] = tuple(t for p in PROJECTIONS for t in p.tables)
HANDLED: frozenset[str] = frozenset().union(*(p.handles for p in PROJECTIONS))


def apply_all(conn: Connection, event: CloudEvent) -> None:
    """Apply one event, in the caller's transaction, to every projection that handles its type.

    The type check comes first, so an event no projection wants is never parsed; one that
    several want is parsed once."""
    wanting = [p for p in PROJECTIONS if p.wants(event.type)]
    if not wanting:
        return
    data = event.parsed_data()
    for projection in wanting:
        projection.apply(conn, event, data)
