"""Who may grant credits: the admin, or a key with the credits:grant scope; never a workspace key."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.auth import Principal
from gateway.credit_permissions import GRANT_SCOPE, may_grant


@dataclass(frozen=True)
class ScopedKey:
    """A key as the scoped keys carry them (a set of scopes beside the key's kind)."""

    is_admin: bool
    scopes: frozenset[str]


def test_the_admin_may_grant() -> None:
    assert may_grant(Principal("admin", "admin"))


def test_a_workspace_service_key_may_not_grant() -> None:
    assert not may_grant(Principal("key_1", "service", "ws-1"))


def test_a_key_with_the_grant_scope_may_grant_and_others_may_not() -> None:
    assert may_grant(ScopedKey(False, frozenset({GRANT_SCOPE})))
    assert not may_grant(ScopedKey(False, frozenset({"posts:write"})))
