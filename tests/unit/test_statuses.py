"""How a post's status rolls up from its destinations' (one rule for the domain, the read
models and the API: schemas/statuses.py)."""

from __future__ import annotations

import pytest

from schemas.statuses import ACTIVE, DESTINATION_STATUSES, PAUSED, TERMINAL, post_status


@pytest.mark.parametrize(
    ("destinations", "status"),
    [
        ({"pending"}, "scheduled"),
        ({"pending", "published"}, "scheduled"),
        ({"retry_scheduled", "failed"}, "scheduled"),
        ({"attempting", "pending"}, "publishing"),
        ({"outcome_unknown", "published"}, "publishing"),
        ({"published"}, "published"),
        ({"published", "failed"}, "partially_published"),
        ({"published", "cancelled"}, "partially_published"),
        ({"cancelled"}, "cancelled"),
        ({"cancelled", "failed"}, "failed"),
        ({"skipped", "failed"}, "failed"),
        ({"skipped", "cancelled"}, "skipped"),
        ({"skipped"}, "skipped"),
        ({"on_hold"}, "on_hold"),
        ({"on_hold", "pending"}, "scheduled"),
        ({"on_hold", "attempting"}, "publishing"),
        ({"on_hold", "published"}, "on_hold"),
    ],
)
def test_a_post_status_rolls_up_from_its_destinations(destinations: set[str], status: str) -> None:
    assert post_status(destinations) == status


def test_every_status_is_active_or_terminal_and_not_both() -> None:
    assert set(ACTIVE) | PAUSED | TERMINAL == DESTINATION_STATUSES and not set(ACTIVE) & TERMINAL
    assert not PAUSED & (set(ACTIVE) | TERMINAL)
