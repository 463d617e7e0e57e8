"""The shared fixtures live in tests/support/fixtures.py (a plugin), the helpers in tests/support."""

from __future__ import annotations

from typing import Any

pytest_plugins = ["tests.support.fixtures"]


def __getattr__(name: str) -> Any:
    if name == "role_env":  # moved to tests.support; still importable from here
        from tests.support.processes import role_env

        return role_env
    raise AttributeError(name)
