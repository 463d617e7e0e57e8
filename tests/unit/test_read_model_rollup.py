"""The posts read model rolls a post's status up from its destinations exactly as the domain's
``Post.status`` does, for every combination of destination statuses."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

from hypothesis import given
from hypothesis import strategies as st

from domain.post import Post
from domain.post import aggregate as post_aggregate
from projections import posts, queue

STATUSES = sorted(queue.STATUSES)


def domain_status(statuses: list[str]) -> str:
    """``Post.status`` evaluated on a minimal object holding only the destinations it reads."""
    post = SimpleNamespace(destinations={f"d{i}": SimpleNamespace(status=s) for i, s in enumerate(statuses)})
    return Post.status.fget(post)


@given(st.lists(st.sampled_from(STATUSES), max_size=12))
def test_rollup_equals_the_domain_for_any_destinations(statuses):
    assert posts.rollup_status(statuses) == domain_status(statuses)


def test_rollup_equals_the_domain_for_every_set_of_statuses():
    for size in range(len(STATUSES) + 1):
        for combination in itertools.combinations(STATUSES, size):
            assert posts.rollup_status(combination) == domain_status(list(combination)), combination


def test_status_vocabularies_agree_with_the_domain():
    assert posts.TERMINAL == post_aggregate.TERMINAL == queue.TERMINAL
    assert posts.WAITING == post_aggregate.WAITING
