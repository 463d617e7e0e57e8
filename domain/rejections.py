"""Why a command was rejected: a stable reason code and a human sentence."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    invalid_payload = "invalid_payload"
    unknown_command_type = "unknown_command_type"
    workspace_exists = "workspace_exists"
    unknown_workspace = "unknown_workspace"
    account_exists = "account_exists"
    account_limit_reached = "account_limit_reached"
    unknown_social_account = "unknown_social_account"
    insufficient_credits = "insufficient_credits"
    queue_full = "queue_full"
    publish_at_in_past = "publish_at_in_past"
    publish_at_beyond_horizon = "publish_at_beyond_horizon"
    expires_at_in_past = "expires_at_in_past"
    post_exists = "post_exists"
    unknown_post = "unknown_post"
    unknown_destination = "unknown_destination"
    post_not_cancellable = "post_not_cancellable"
    attempt_fenced = "attempt_fenced"
    outcome_fenced = "outcome_fenced"
    destination_not_retryable = "destination_not_retryable"
    hold_not_pending = "hold_not_pending"
    grant_exists = "grant_exists"
    content_invalid = "content_invalid"
    daily_post_limit_reached = "daily_post_limit_reached"
    scheduling_horizon_exceeded = "scheduling_horizon_exceeded"
    daily_generation_limit_reached = "daily_generation_limit_reached"
    automation_rule_limit_reached = "automation_rule_limit_reached"
    unknown_tier = "unknown_tier"
    not_due = "not_due"
    generation_exists = "generation_exists"
    unknown_generation = "unknown_generation"
    generation_already_recorded = "generation_already_recorded"
    invalid_schedule = "invalid_schedule"
    unknown_slot = "unknown_slot"
    slot_filled = "slot_filled"
    slot_in_past = "slot_in_past"
    unknown_series = "unknown_series"
    post_not_draft = "post_not_draft"
    post_not_awaiting_approval = "post_not_awaiting_approval"
    no_destinations = "no_destinations"
    destination_started = "destination_started"
    destination_exists = "destination_exists"
    post_not_editable = "post_not_editable"


class Rejected(Exception):
    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class TierLimitReached(Rejected):
    """A tier limit refused the command: which limit, on which tier, the count now, the allowed."""

    def __init__(self, reason: Reason, limit: str, tier: str, current: int, allowed: int, what: str) -> None:
        super().__init__(reason, f"{limit} on the {tier} tier: {current} {what}, {allowed} allowed")
        self.limit, self.tier, self.current, self.allowed = limit, tier, current, allowed
