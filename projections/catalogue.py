"""Every read model, and the one function a projection consumer calls per event.

Adding a read model = a module exposing ``PROJECTION`` plus one entry in ``PROJECTIONS``.
Order matters for DDL (``posts`` reads ``queue_destinations``, which ``queue`` creates) and for
applying: a read model that reads or writes another's tables comes after it (``Projection.needs``).
"""

from __future__ import annotations

from collections.abc import Iterable

from psycopg import Connection

from projections import accounts, analytics, audit, positions, posts, queue, wallet, workspaces
from projections import calendar, credit_clock, generations, notifications, tiers, usage
from projections.base import Projection
from schemas.events import CloudEvent

PROJECTIONS: tuple[Projection, ...] = (
    queue.PROJECTION,
    wallet.PROJECTION,
    posts.PROJECTION,
    accounts.PROJECTION,
    workspaces.PROJECTION,
    audit.PROJECTION,
    credit_clock.PROJECTION,  # after wallet: it reads wallet_grants
    notifications.PROJECTION,  # after workspaces: the time zone
    usage.PROJECTION,  # after queue and workspaces: the platform, the time zone
    tiers.PROJECTION,
    generations.PROJECTION,
    calendar.PROJECTION,  # its queries read queue_destinations, posts and social_accounts (not its apply)
)
# The read models' own tables, the per-workspace positions the consumer records per batch, and
# the analytics views over them (last: they read the others' tables).
DDL: tuple[str, ...] = (*(p.ddl for p in PROJECTIONS), positions.DDL, analytics.DDL)
TABLES: tuple[str, ...] = (*(t for p in PROJECTIONS for t in p.tables), *positions.TABLES)


def with_needs(chosen: Iterable[Projection]) -> list[Projection]:
    """The chosen read models and, transitively, those whose tables they read or write
    (``Projection.needs``), in catalogue order: what a rebuild of the chosen ones must rebuild."""
    given = {p.name: p for p in chosen}
    by_name = {p.name: p for p in PROJECTIONS} | given
    wanted, todo = set(), list(given)
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            todo += by_name[name].needs
    order = [p.name for p in PROJECTIONS] + [n for n in given if n not in {p.name for p in PROJECTIONS}]
    return [by_name[n] for n in order if n in wanted]


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
