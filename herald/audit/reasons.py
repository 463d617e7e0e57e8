"""Why something happened, as a stable code and a sentence a person can read.

Rejections carry the domain's reason code (``domain.rejections.Reason``) and its detail; skips,
failures, retries, unknown outcomes, released holds and cancellations carry theirs in the event.
"""

from __future__ import annotations

from typing import Any

# What each reason code means, in general; the event's own detail follows it.
MEANINGS: dict[str, str] = {
    "invalid_payload": "the command's payload did not validate",
    "unknown_command_type": "Herald has no such command type",
    "workspace_exists": "a workspace with that id already exists",
    "unknown_workspace": "the workspace does not exist",
    "account_exists": "that social account is already connected",
    "account_limit_reached": "the tier allows no more accounts on this platform",
    "unknown_social_account": "a destination is not one of the workspace's social accounts",
    "insufficient_credits": "the wallet had too few credits available to hold one per destination",
    "queue_full": "the tier's queue size was reached",
    "publish_at_in_past": "the requested publishing time had already passed",
    "post_exists": "a post with that id already exists",
    "unknown_post": "the post does not exist in this workspace",
    "unknown_destination": "the post has no such destination",
    "post_not_cancellable": "no destination of the post was still waiting",
    "attempt_fenced": "another attempt was expected, so this one could not start (no double post)",
    "outcome_fenced": "the outcome was for an attempt that was not running",
    "destination_not_retryable": "only a failed or skipped destination can be retried",
    "hold_not_pending": "the credit hold had already been consumed or released",
    "grant_exists": "that grant id was already used",
    "missed": "the attempt would have started more than the missed window after the due time, "
              "so the destination was skipped instead of published late",
    "rate_limited": "the platform asked Herald to slow down",
    "auth": "the platform refused the account's credentials",
    "invalid_content": "the platform refused the content",
    "transient": "a temporary error (network, server) on the platform's side",
    "permanent": "an error the platform will not recover from",
    "outcome_unknown": "the platform may or may not have the post; flagged for review, never re-posted blindly",
    "cancelled_by_user": "the post was cancelled",
    "daily_generation_limit_reached": "the tier's generations for the day (the workspace's local day) were used up",
    "generation_exists": "a generation with that id already exists",
    "unknown_generation": "the generation does not exist in this workspace",
    "generation_already_recorded": "the generation's outcome was already recorded",
    "notification_delivery_ended": "the notification delivery was already sent or given up",
    "notification_attempt_fenced": "that attempt of the notification delivery was already recorded, or is not "
                                   "the next one",
    "invalid_schedule": "the schedule is not valid: an automation rule's RRULE or 5-field cron expression, a posting "
                        "schedule or a series' recurrence rule",
    "automation_rule_limit_reached": "the tier allows no more (active) automation rules",
    "automation_rule_exists": "an automation rule with that id already exists",
    "unknown_automation_rule": "the automation rule does not exist in this workspace",
    "rule_not_active": "the automation rule is paused (or was paused already)",
    "rule_not_paused": "the automation rule is active already",
    "rule_run_pending": "the rule's previous run has not ended yet",
    "rule_run_not_pending": "no run of that occurrence is in progress",
    "occurrence_already_fired": "that occurrence (or a later one) was fired or skipped already: never twice",
    "not_an_occurrence": "the instant is not an occurrence of the rule's schedule",
    "missed_catch_up_window": "the occurrence was missed (nothing ran) and was older than the rule's catch-up "
                              "window when the runner came back, so it was skipped",
}


def _sentence(code: str, detail: str) -> str:
    meaning = MEANINGS.get(code.split(":", 1)[0], "")
    if meaning and detail and detail != code:
        return f"{meaning}: {detail}"
    return meaning or detail or code


def reason_of(event_type: str, data: dict[str, Any]) -> dict[str, str] | None:
    """``{"code", "sentence"}`` for an event that records a rejection, skip, failure, retry, unknown
    outcome, release or cancellation; None for the others."""
    kind = event_type.rsplit(".", 2)[-2] if event_type.count(".") >= 2 else event_type
    match kind:
        case "rejected":
            code = data["reason_code"]
            return {"code": code, "sentence": f"{data['command_type']} rejected: {_sentence(code, data['detail'])}"}
        case "destination_skipped":
            code = data["reason"]
            return {"code": code, "sentence": f"destination {data['destination_id']} skipped: {_sentence(code, '')}"
                    if code in MEANINGS else f"destination {data['destination_id']} skipped: {code}"}
        case "destination_failed" | "retry_scheduled":
            code = data.get("error_kind") or "failed"
            verb = "failed" if kind == "destination_failed" else f"will be retried at {data['retry_at']}"
            return {"code": code, "sentence": f"destination {data['destination_id']} attempt {data['attempt']} "
                    f"{verb}: {_sentence(code, data['detail'])}"}
        case "destination_throttled":
            return {"code": "rate_limited", "sentence": f"destination {data['destination_id']} attempt "
                    f"{data['attempt']} throttled by the platform until {data['until']} (not counted as a failure): "
                    f"{data['detail']}"}
        case "outcome_unknown":
            return {"code": "outcome_unknown", "sentence": _sentence("outcome_unknown", data["detail"])}
        case "hold_released":
            return {"code": data["reason"], "sentence": f"hold of {data['amount']} credit(s) released: {data['reason']}"}
        case "cancelled":
            return {"code": data["reason"], "sentence": _sentence(data["reason"], "")
                    if data["reason"] in MEANINGS else f"cancelled: {data['reason']}"}
    return None
