"""Commands as a service sends them, and deciding them through the domain application."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from schemas import commands as cmd


def envelope(payload: cmd.Payload, *, workspace_id: str, command_id: str, issued_by: str = "test") -> cmd.CommandEnvelope:
    """``payload`` wrapped as issued now."""
    return cmd.CommandEnvelope.wrap(payload, command_id=command_id, workspace_id=workspace_id, issued_by=issued_by,
                                    issued_at=datetime.now(UTC))


def numbered(workspace_id: str, payloads: Iterable[cmd.Payload]) -> list[cmd.CommandEnvelope]:
    """Envelopes for one workspace's commands, with the ids ``<workspace>-<n>``."""
    return [envelope(p, workspace_id=workspace_id, command_id=f"{workspace_id}-{n}") for n, p in enumerate(payloads)]


def decide(app: Any, workspace_id: str, command_id: str, payload: cmd.Payload) -> dict:
    """Decide one command in the domain application; it must be accepted. Returns its result."""
    decision = app.handle(envelope(payload, workspace_id=workspace_id, command_id=command_id))
    assert decision.accepted, decision
    return decision.result


def decide_all(app: Any, workspace_id: str, payloads: Iterable[cmd.Payload]) -> list[dict]:
    """Decide each of one workspace's commands (ids as :func:`numbered`); each must be accepted."""
    results = []
    for command in numbered(workspace_id, payloads):
        decision = app.handle(command)
        assert decision.accepted, decision
        results.append(decision.result)
    return results


def sandbox_workspace(workspace_id: str, *, tier: str = "business", accounts: Iterable[str] = ("a", "b"),
                      credits: int = 100, posts: int = 0, publish_at: datetime | None = None) -> list[cmd.Payload]:
    """Open a workspace, connect a sandbox account ``<workspace>-<handle>`` per handle, grant
    ``credits``, then schedule ``posts`` posts ``<workspace>-p<i>``, each to every account."""
    accounts = list(accounts)
    account_ids = [f"{workspace_id}-{handle}" for handle in accounts]
    return [
        cmd.OpenWorkspace(name=workspace_id, tier=tier),
        *[cmd.ConnectSocialAccount(social_account_id=account_id, platform="sandbox", handle=handle)
          for account_id, handle in zip(account_ids, accounts, strict=True)],
        cmd.GrantCredits(amount=credits),
        *[cmd.SchedulePost(post_id=f"{workspace_id}-p{i}", text=f"post {i}", destinations=account_ids,
                           publish_at=publish_at) for i in range(posts)],
    ]
