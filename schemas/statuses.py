"""The publishing vocabulary shared by the domain, the read models and the API: the statuses a
destination moves through, and how a post's status rolls up from its destinations'."""

from __future__ import annotations

from collections.abc import Iterable

WAITING = frozenset({"pending", "retry_scheduled"})
IN_FLIGHT = frozenset({"attempting", "outcome_unknown"})
TERMINAL = frozenset({"published", "failed", "skipped", "cancelled"})
# Its account was disconnected with its waiting destinations kept: not published, no credit held,
# until it is cancelled (or removed by an edit).
PAUSED = frozenset({"on_hold"})
DESTINATION_STATUSES = WAITING | IN_FLIGHT | PAUSED | TERMINAL
ACTIVE = ("pending", "retry_scheduled", "attempting", "outcome_unknown")  # waiting or in flight, queue order
assert frozenset(ACTIVE) == WAITING | IN_FLIGHT


def post_status(destination_statuses: Iterable[str]) -> str:
    """scheduled, publishing, on_hold, published, partially_published, failed, skipped or cancelled."""
    states = set(destination_statuses)
    if states & IN_FLIGHT:
        return "publishing"
    if states & WAITING:
        return "scheduled"
    if states & PAUSED:
        return "on_hold"
    if not states <= TERMINAL:
        return "scheduled"
    if states == {"published"}:
        return "published"
    if "published" in states:
        return "partially_published"
    if states == {"cancelled"}:
        return "cancelled"
    return "failed" if "failed" in states else "skipped"
