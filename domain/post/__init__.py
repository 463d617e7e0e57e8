"""Posts and their per-destination publishing state."""

from domain.post.aggregate import TERMINAL, WAITING, Post, PublishPolicy, attempt_key_for, hold_id_for

__all__ = ["TERMINAL", "WAITING", "Post", "PublishPolicy", "attempt_key_for", "hold_id_for"]
