"""Every read model's rebuild path: a page of events applied with a handful of set-based
statements instead of one or more statements per event.

For each table a page touches: load the rows it touches (one query), fold the page's events into
them in order in Python (exactly what the projection's ``apply`` does row by row), and write the
changed rows back (one DELETE, one COPY). The live path stays ``apply`` (one event at a time, for
latency); this is for ``herald rebuild`` and ``make bench``'s replay, where it is several times
faster. The paths run in ``catalogue`` order, each over the whole page, so one that reads another
read model's table (usage, notifications, credit clock, tiers) finds it with the page applied.
The two paths must agree: the rebuild's checksum against the live tables and
``tests/integration/test_rebuild.py`` (random workloads applied both ways) say when they do not.

A read model without a usable entry in ``_FOLDS`` (``usable``) is rebuilt through its ``apply``, one
event at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from psycopg import Connection

from projections.bulk import calendar, credits, generations, publishing, tiers
from projections.bulk.rows import Raw, Rows, raw
from schemas import events as ev

__all__ = ["Raw", "Rows", "raw", "usable"]

# Each set-based path with the event types it folds. It is a second writing of its read model's
# rules, so it is used only while it folds exactly what the live projection applies (``usable``):
# a projection that learns a new event falls back to its own apply until its bulk path follows.
_FOLDS: dict[str, tuple[Callable[[Connection, list[Raw]], None], tuple[type[ev.EventData], ...]]] = {
    **publishing.FOLDS, **credits.FOLDS, **tiers.FOLDS, **generations.FOLDS, **calendar.FOLDS,
}


def usable(projections: list[Any]) -> dict[str, Callable[[Connection, list[Raw]], None]]:
    """The bulk paths of ``projections`` that fold exactly the event types each applies, in the
    order of ``projections``."""
    found = {}
    for projection in projections:
        fold = _FOLDS.get(projection.name)
        if fold is not None and {m.type for m in fold[1]} == set(projection.handles):
            found[projection.name] = fold[0]
    return found
