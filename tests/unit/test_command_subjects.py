"""What a command is about, for the audit trail: read from the raw payload, so a command
rejected for an invalid payload is still filed under what it named."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.base import derived_id
from domain.command.subjects import subjects_of
from schemas.commands import CommandEnvelope


def command(type_: str, payload: dict, command_id: str = "c1") -> CommandEnvelope:
    return CommandEnvelope(command_id=command_id, type=type_, workspace_id="ws", issued_at=datetime.now(UTC),
                           issued_by="test", payload=payload)


@pytest.mark.parametrize(("type_", "payload", "reason", "expected"), [
    ("schedule_post.v1", {"post_id": "p1", "text": "x", "destinations": ["a"]}, None, ["post:p1", "social_account:a"]),
    ("schedule_post.v1", {"post_id": "p1"}, "insufficient_credits", ["post:p1", "wallet"]),
    ("schedule_post.v1", {"post_id": "p1", "destinations": ["a", "b", "a", 5, ""]}, "insufficient_credits",
     ["post:p1", "wallet", "social_account:a", "social_account:b"]),
    ("schedule_post.v1", {"post_id": "p1", "destinations": "a"}, "invalid_payload", ["post:p1"]),
    ("schedule_post.v1", {"text": "no id"}, "invalid_payload", [f"post:{derived_id('post', 'c1')}"]),
    ("cancel_post.v1", {"post_id": "p2"}, "post_not_cancellable", ["post:p2"]),
    ("start_publish_attempt.v1", {"post_id": "p3", "destination_id": "a", "attempt": 2}, "attempt_fenced", ["post:p3"]),
    ("record_publish_outcome.v1", {"post_id": 7}, "invalid_payload", []),  # no usable id: about nothing
    ("grant_credits.v1", {"amount": 5}, None, ["wallet"]),
    ("release_hold.v1", {"hold_id": "h"}, "hold_not_pending", ["wallet"]),
    ("connect_social_account.v1", {"social_account_id": "acct"}, "account_exists", ["social_account:acct"]),
    ("connect_social_account.v1", {}, None, [f"social_account:{derived_id('social_account', 'c1')}"]),
    ("open_workspace.v1", {"name": "x"}, None, []),
    ("no_such.v1", {"post_id": "p"}, "unknown_command_type", []),
])
def test_subjects(type_, payload, reason, expected):
    assert subjects_of(command(type_, payload), reason) == expected
