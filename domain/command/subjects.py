"""What a command is about: the aggregates an audit trail lists its outcome under.

``post:<id>``, ``social_account:<id>`` or ``wallet``, read from the envelope's raw payload, so a
command rejected for an invalid payload is still filed under the post it named. A schedule is about
its post and the accounts it names (and the wallet when credits were missing).
"""

from __future__ import annotations

from typing import Any

from schemas import commands as cmd

from domain.base import derived_id

_POST_COMMANDS = {"cancel_post.v1", "start_publish_attempt.v1", "record_publish_outcome.v1", "retry_destination.v1",
                  "submit_post.v1", "approve_post.v1", "reject_post.v1", "edit_post.v1", "reschedule_post.v1",
                  "publish_post_now.v1"}
_WALLET_COMMANDS = {"grant_credits.v1", "consume_hold.v1", "release_hold.v1"}
# A rejected schedule is a wallet matter too when it was the credits that were missing.
_WALLET_REASONS = {"insufficient_credits"}


def subjects_of(command: cmd.CommandEnvelope, reason_code: str | None = None) -> list[str]:
    payload: dict[str, Any] = command.payload if isinstance(command.payload, dict) else {}

    def named(key: str) -> str | None:
        value = payload.get(key)
        return value if isinstance(value, str) and value else None

    subjects: list[str] = []
    if command.type in ("schedule_post.v1", "create_draft.v1"):
        # the default id is the one domain.post.handlers.post_id_for derives
        subjects.append(f"post:{named('post_id') or derived_id('post', command.command_id)}")
        if reason_code in _WALLET_REASONS:
            subjects.append("wallet")
        # and the accounts it was for: an account's timeline shows the posts refused for it
        destinations = payload.get("destinations")
        if isinstance(destinations, list):
            subjects += dict.fromkeys(f"social_account:{d}" for d in destinations if isinstance(d, str) and d)
    elif command.type in _POST_COMMANDS and named("post_id"):
        subjects.append(f"post:{named('post_id')}")
    elif command.type in _WALLET_COMMANDS:
        subjects.append("wallet")
    elif command.type == "set_posting_schedule.v1" and named("social_account_id"):
        subjects.append(f"social_account:{named('social_account_id')}")
    elif command.type == "fill_slot.v1" and named("slot_id"):
        # the default id is the one domain.planning.handlers.slot_post_id derives
        subjects.append(f"post:{named('post_id') or derived_id('slot_post', named('slot_id'))}")
        if named("social_account_id"):
            subjects.append(f"social_account:{named('social_account_id')}")
    elif command.type == "connect_social_account.v1":
        # the default id is the one domain.account.handlers.account_id_for derives
        subjects.append(f"social_account:{named('social_account_id') or derived_id('social_account', command.command_id)}")
    return subjects
