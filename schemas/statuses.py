"""The publishing vocabulary shared by the domain, the read models and the API: the statuses a
destination moves through, and how a post's status rolls up from its destinations'."""

from __future__ import annotations

from collections.abc import Iterable

WAITING = frozenset({"pending", "retry_scheduled"})
IN_FLIGHT = frozenset({"attempting", "outcome_unknown"})
TERMINAL = frozenset({"published", "failed", "skipped", "cancelled"})
DESTINATION_STATUSES = WAITING | IN_FLIGHT | TERMINAL
ACTIVE = ("pending", "retry_scheduled", "attempting", "outcome_unknown")  # waiting or in flight, queue order
assert frozenset(ACTIVE) == WAITING | IN_FLIGHT


def post_status(destination_statuses: Iterable[str]) -> str:
    """scheduled, publishing, published, partially_published, failed, skipped or cancelled."""
    states = set(destination_statuses)
    if states & IN_FLIGHT:
        return "publishing"
    if not states <= TERMINAL:
        return "scheduled"
    if states == {"published"}:
        return "published"
    if "published" in states:
        return "partially_published"
    if states == {"cancelled"}:
        return "cancelled"
    return "failed" if "failed" in states else "skipped"
