"""Who may grant or refund credits: the admin key, or a key carrying the ``credits:grant``
scope (billing's). A workspace's own service key cannot: it would pay itself."""

from __future__ import annotations

from typing import Any

GRANT_SCOPE = "credits:grant"


def may_grant(caller: Any) -> bool:
    scopes = getattr(caller, "scopes", None) or ()
    return bool(caller.is_admin or GRANT_SCOPE in scopes or getattr(caller, "scope", None) == GRANT_SCOPE)
