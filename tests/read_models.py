"""Moved to tests/support/read_models.py; still importable from here."""

from tests.support.read_models import assert_queue_equals_rebuilt, queue_rows, rebuilt_queue  # noqa: F401
