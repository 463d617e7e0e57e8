"""What the integration and end-to-end tests share: fixtures (:mod:`tests.support.fixtures`, a
plugin that ``tests/conftest.py`` loads) and the helpers listed below, importable from here
(``from tests.support import wait_until``) or from their modules.

The helpers are loaded on first use, so that loading the fixtures costs a unit-test run nothing."""

from __future__ import annotations

import importlib
from typing import Any

_HELPERS = {
    "adapters": ["failure", "request_for"],
    "commands": ["decide", "decide_all", "envelope", "numbered", "sandbox_workspace"],
    "database": ["event_types", "query_all", "query_one", "stored_notifications"],
    "heralds": ["Heralds", "close_herald", "relay_everything"],
    "http": ["ADMIN_KEY", "Api", "bearer"],
    "loops": ["Loops", "role_loops", "running"],
    "processes": ["RoleProcess", "role_env", "role_processes"],
    "read_models": ["apply_store", "assert_queue_equals_rebuilt", "queue_rows", "rebuilt_queue"],
    "topics": ["fill_topic", "read_topic", "topic_consumer"],
    "waiting": ["poll_until", "wait_until"],
}
_MODULE_OF = {name: module for module, names in _HELPERS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
