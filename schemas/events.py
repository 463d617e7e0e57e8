"""Event contracts: the data of every domain event, and the CloudEvents 1.0 envelope they travel in.

The models here are the single definition of each event: the domain records exactly
``model_dump(mode="json")`` of them, and the relay publishes that as CloudEvents ``data``.
Event types are versioned (``herald.post.scheduled.v1``); an old version is upcast on read.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Callable, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator



class EventData(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    type: ClassVar[str]


EVENT_TYPES: dict[str, type[EventData]] = {}


def event_type(name: str) -> Callable[[type[EventData]], type[EventData]]:
    def register(model: type[EventData]) -> type[EventData]:
        model.type = name
        EVENT_TYPES[name] = model
        return model

    return register


# Workspace ---------------------------------------------------------------------------


@event_type("herald.workspace.opened.v1")
class WorkspaceOpened(EventData):
    name: str
    tier: str
    timezone: str
    limit_overrides: dict[str, int]
    limits: dict[str, int] = Field(description="the effective limits: tier defaults with overrides applied")
    tier_version: int = Field(0, description="0: the tier as shipped; n: the admin's n-th definition")
    tier_limits: dict[str, int] | None = Field(None, description="the tier's own limits, before overrides")


@event_type("herald.workspace.social_account_linked.v1")
class SocialAccountLinked(EventData):
    social_account_id: str
    platform: str


@event_type("herald.workspace.post_queued.v1")
class PostQueued(EventData):
    post_id: str
    due_day: str | None = Field(None, description="the local date (workspace time zone) the post is due")
    platforms: list[str] = Field(default_factory=list, description="one entry per destination")


@event_type("herald.workspace.post_left_queue.v1")
class PostLeftQueue(EventData):
    post_id: str
    freed_platforms: list[str] = Field(default_factory=list,
                                       description="cancelled destinations: their daily slots are free again")
    freed_days: list[str] | None = Field(None, description="the local day of each freed platform's slot; null: "
                                         "the post's slot day (events from before per-destination times)")


class LimitBreach(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    limit: str
    tier: str
    current: int
    allowed: int


@event_type("herald.tier.defined.v1")
class TierDefined(EventData):
    tier: str
    version: int
    limits: dict[str, int]


@event_type("herald.workspace.tier_changed.v1")
class TierChanged(EventData):
    from_tier: str
    to_tier: str
    version: int
    limits: dict[str, int] = Field(description="the effective limits from now on (overrides applied)")
    tier_limits: dict[str, int] = Field(description="the tier's own limits, before overrides")
    reason: str = Field(description="upgrade | downgrade (at the renewal) | same_rank")


@event_type("herald.workspace.tier_change_scheduled.v1")
class TierChangeScheduled(EventData):
    from_tier: str
    to_tier: str
    effective_at: datetime


@event_type("herald.workspace.limits_overridden.v1")
class LimitsOverridden(EventData):
    limit_overrides: dict[str, int]
    limits: dict[str, int]


@event_type("herald.workspace.publishing_policy_set.v1")
class PublishingPolicySet(EventData):
    missed_window_s: float | None = Field(description="how late a destination may start; null: Herald's default")


@event_type("herald.workspace.content_policy_set.v1")
class ContentPolicySet(EventData):
    requires_approval: bool = Field(description="submitted drafts wait for an approver before they are scheduled")
    disconnect_waiting: Literal["cancel", "hold"] = Field(
        "cancel", description="what disconnecting an account does to its waiting destinations unless the request says")
    actor: str


@event_type("herald.workspace.post_slot_changed.v1")
class PostSlotChanged(EventData):
    """A waiting post's daily-limit slot is now these platforms on this local day (it was edited,
    rescheduled or lost destinations)."""

    post_id: str
    due_day: str
    platforms: list[str]
    platform_days: list[str] | None = Field(None, description="the local day of each platform's slot when the "
                                            "post's destinations are due on different days; null: all on due_day")


@event_type("herald.workspace.generation_counted.v1")
class GenerationCounted(EventData):
    day: str
    count: int = Field(description="generations that local day, this one included")


@event_type("herald.workspace.automation_rules_counted.v1")
class AutomationRulesCounted(EventData):
    count: int
    rule_ids: list[str] | None = Field(None, description="the workspace's rules, oldest first (absent before rules "
                                       "existed)")
    active_rule_ids: list[str] | None = Field(None, description="those of them active (not paused), oldest first")


@event_type("herald.workspace.notices_read.v1")
class NoticesRead(EventData):
    notice_ids: list[str]


# Generation ----------------------------------------------------------------------------


@event_type("herald.generation.requested.v1")
class GenerationRequested(EventData):
    generation_id: str
    topic: str
    platforms: list[str]
    tone: str
    language: str
    context: str
    media_description: str
    brand_voice_version: int = Field(description="the brand voice the prompt used; 0: none")
    day: str = Field(description="the workspace's local day it counted on")


@event_type("herald.brand_voice.set.v1")
class BrandVoiceSet(EventData):
    version: int = Field(description="1 for the first voice, one more for each change")
    tone: str
    audience: str
    niche: str
    words_to_use: list[str]
    words_to_avoid: list[str]
    example_posts: list[str]
    emoji_policy: str
    hashtag_policy: str


@event_type("herald.generation.succeeded.v1")
class GenerationSucceeded(EventData):
    generation_id: str
    captions: dict[str, str] = Field(description="platform → caption")
    hashtags: list[str]
    provider: str
    model: str
    prompt_sha256: str
    tokens_in: int
    tokens_out: int
    latency_ms: int


@event_type("herald.generation.failed.v1")
class GenerationFailed(EventData):
    generation_id: str
    reason: str = Field(description="rate_limited, auth, invalid_output, transient, rejected, not_configured")
    detail: str
    provider: str
    model: str
    prompt_sha256: str
    tokens_in: int
    tokens_out: int
    latency_ms: int


# Notification delivery ------------------------------------------------------------------
# One delivery = one notice (or a digest of several) to one target of one channel: a webhook
# endpoint or an email recipient, named by id only (a webhook URL may carry a token, an address is
# personal data). ``delivery_id`` is also the webhook-id / Message-ID: the same on every attempt.


@event_type("herald.notification_delivery.queued.v1")
class NotificationDeliveryQueued(EventData):
    """Queued for a notice; queued again under the same ``delivery_id`` when a later notice is
    folded into this delivery (a digest), ``digest_count`` then counting the notices in it."""

    delivery_id: str
    channel: str = Field(description="webhook or email")
    target_id: str = Field(description="the webhook endpoint id or the email recipient id")
    cause: str
    notice_event_id: str = Field(description="the id of the event that raised the notice")
    notice_event_type: str | None = None
    digest_count: int = Field(1, description="notices in this delivery so far")


class _DeliveryOutcome(EventData):
    delivery_id: str
    channel: str
    target_id: str
    cause: str
    attempt: int = Field(description="the attempt this outcome is of (1 for the first send); a give-up without "
                         "a send of its own carries the last attempt made")
    status_code: int | None = Field(None, description="the receiver's HTTP status (webhooks)")
    notice_event_ids: list[str] = Field(description="every notice this delivery carried (more than one: a digest)")


@event_type("herald.notification_delivery.sent.v1")
class NotificationDeliverySent(_DeliveryOutcome):
    pass


@event_type("herald.notification_delivery.failed.v1")
class NotificationDeliveryFailed(_DeliveryOutcome):
    error: str
    next_attempt_at: datetime


@event_type("herald.notification_delivery.gave_up.v1")
class NotificationDeliveryGaveUp(_DeliveryOutcome):
    error: str


@event_type("herald.notification_delivery.endpoint_disabled.v1")
class WebhookEndpointDisabled(EventData):
    """Herald disabled a workspace's webhook endpoint (410 Gone, a URL that can never be called, or
    too many failures in a row): a notice in the inbox, delivered to the workspace's other channels."""

    endpoint_id: str
    reason: str
    delivery_id: str = Field(description="the delivery whose outcome disabled it")
# Automation rules ----------------------------------------------------------------------


class RuleDefinition(BaseModel):
    """What a rule is: its schedule (in the workspace's time zone), what it asks the generator for,
    where the post goes and whether it is scheduled or left as a draft for approval."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    schedule_kind: Literal["rrule", "cron"]
    schedule: str
    anchor: str = Field(description="local wall time (ISO, no offset) the RRULE counts from (its DTSTART)")
    timezone: str
    topic: str
    tone: str
    language: str
    context: str
    platforms: list[str] = Field(description="the destinations' platforms, each once: one caption each")
    destinations: list[str] = Field(description="social account ids")
    destination_platforms: dict[str, str] = Field(description="social account id → its platform")
    approval_mode: Literal["auto_schedule", "draft_for_approval"]
    catch_up_window_s: int = Field(description="a missed occurrence at most this old still fires after downtime")


@event_type("herald.automation_rule.created.v1")
class AutomationRuleCreated(EventData):
    rule_id: str
    definition: RuleDefinition
    next_run_at: datetime | None = Field(description="the first occurrence after now; null: the schedule has none")


@event_type("herald.automation_rule.updated.v1")
class AutomationRuleUpdated(EventData):
    rule_id: str
    definition: RuleDefinition
    next_run_at: datetime | None = Field(description="occurrences count again from the update on")


@event_type("herald.automation_rule.paused.v1")
class AutomationRulePaused(EventData):
    rule_id: str
    reason: str = Field(description="paused_by_user | tier_limit (a downgrade left more active rules than allowed)")
    detail: str = ""


@event_type("herald.automation_rule.resumed.v1")
class AutomationRuleResumed(EventData):
    rule_id: str
    next_run_at: datetime | None = Field(description="occurrences while paused are not fired: the first after now")


@event_type("herald.automation_rule.deleted.v1")
class AutomationRuleDeleted(EventData):
    rule_id: str


@event_type("herald.automation_rule.fired.v1")
class AutomationRuleFired(EventData):
    rule_id: str
    occurrence_at: datetime = Field(description="the occurrence claimed: fired once, never again")
    generation_id: str
    post_id: str = Field(description="the id the post (or draft) of this run gets")
    skipped_before: int = Field(0, description="earlier occurrences missed (downtime) and not fired")
    next_run_at: datetime | None


@event_type("herald.automation_rule.occurrences_skipped.v1")
class AutomationRuleOccurrencesSkipped(EventData):
    rule_id: str
    first_at: datetime
    last_at: datetime
    count: int
    reason: str = Field(description="missed_catch_up_window: the latest missed occurrence was older than the window")
    next_run_at: datetime | None


@event_type("herald.automation_rule.run_succeeded.v1")
class AutomationRuleRunSucceeded(EventData):
    rule_id: str
    occurrence_at: datetime
    generation_id: str
    post_id: str
    approval_mode: str


@event_type("herald.automation_rule.run_failed.v1")
class AutomationRuleRunFailed(EventData):
    rule_id: str
    occurrence_at: datetime
    generation_id: str
    reason: str = Field(description="the generation's failure (rate_limited, auth, …) or the rejection of the "
                        "post (insufficient_credits, queue_full, daily_post_limit_reached, …) or the day's "
                        "generation limit")
    detail: str = ""


# Social account ----------------------------------------------------------------------


# Events go to the public events topic, so they carry no secret material, sealed or not: an
# account's tokens live in the private credentials store (processors/accounts/vault.py), and
# events name only the version there. Events stored before that carried ``sealed_token``; it is
# dropped when they are read and when they are relayed (``public_data``).
SECRET_FIELDS = frozenset({"sealed_token"})


def public_data(data: dict[str, Any]) -> dict[str, Any]:
    """Stored event data as it may leave Herald: without the secret fields older events had."""
    if SECRET_FIELDS.isdisjoint(data):
        return data
    return {k: v for k, v in data.items() if k not in SECRET_FIELDS}


class _WithoutSecrets(EventData):
    @model_validator(mode="before")
    @classmethod
    def _drop_stored_secrets(cls, data: Any) -> Any:
        return public_data(data) if isinstance(data, dict) else data


@event_type("herald.social_account.connected.v1")
class SocialAccountConnected(_WithoutSecrets):
    social_account_id: str
    platform: str
    handle: str
    instance_url: str | None
    credential_version: str | None = Field(
        None, description="the version of its credentials in Herald's private store (null: none, or connected "
        "before the store existed)")
    settings: dict[str, str] = Field(
        default_factory=dict, description="the account's non-secret settings (e.g. page_id, author_urn)")


@event_type("herald.social_account.reconnected.v1")
class SocialAccountReconnected(EventData):
    """Connected again with new credentials: any need to reconnect is cleared."""

    social_account_id: str
    handle: str
    instance_url: str | None
    credential_version: str
    settings: dict[str, str] | None = Field(None, description="the account's new settings; null: unchanged")


@event_type("herald.social_account.disconnected.v1")
class SocialAccountDisconnected(EventData):
    """The workspace disconnected the account: nothing is published to it any more. Its waiting
    destinations were cancelled or put on hold (their credits released either way) in the same
    decision."""

    social_account_id: str
    actor: str
    reason: str
    cancelled_destinations: int = Field(description="how many waiting destinations were cancelled")
    held_destinations: int = Field(0, description="how many waiting destinations were put on hold instead")


@event_type("herald.workspace.social_account_unlinked.v1")
class SocialAccountUnlinked(EventData):
    social_account_id: str
    platform: str


@event_type("herald.social_account.needs_reconnect.v1")
class SocialAccountNeedsReconnect(EventData):
    """The platform refused the account's token and it cannot be refreshed: publishing to it stops
    (its destinations are skipped, reason ``account_needs_reconnect``) until it is reconnected."""

    social_account_id: str
    reason: str
    credential_version: str | None
    detail: str = ""


# Wallet ------------------------------------------------------------------------------


class Burn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    grant_id: str
    amount: int


@event_type("herald.wallet.opened.v1")
class WalletOpened(EventData):
    wallet_id: str


@event_type("herald.wallet.credits_granted.v1")
class CreditsGranted(EventData):
    grant_id: str
    amount: int
    source: str
    expires_at: datetime | None


@event_type("herald.wallet.grant_id_claimed.v1")
class GrantIdClaimed(EventData):
    """A grant id is taken in this workspace for good (recorded with the grant it names)."""

    grant_id: str


@event_type("herald.wallet.hold_placed.v1")
class HoldPlaced(EventData):
    hold_id: str
    post_id: str
    destination_id: str
    amount: int
    expires_at: datetime | None = Field(None, description="the post's due time plus the hold grace")
    reserved: list[Burn] = Field(default_factory=list,
                                 description="the grants it reserves, the one that expires first first")


@event_type("herald.wallet.hold_consumed.v1")
class HoldConsumed(EventData):
    hold_id: str
    amount: int
    burned: list[Burn] = Field(description="which grants paid, earliest-expiring first")


@event_type("herald.wallet.hold_released.v1")
class HoldReleased(EventData):
    hold_id: str
    amount: int
    reason: str


@event_type("herald.wallet.grant_expired.v1")
class GrantExpired(EventData):
    grant_id: str
    amount: int = Field(description="credits that expired")
    reserved: int = Field(description="credits of the grant kept, reserved by pending holds")
    reason: str = Field(description="expired | period_reset | hold_ended")


@event_type("herald.wallet.credits_expiring_soon.v1")
class CreditsExpiringSoon(EventData):
    grant_id: str
    amount: int
    expires_at: datetime


@event_type("herald.wallet.credit_period_started.v1")
class CreditPeriodStarted(EventData):
    period_start: datetime
    renews_at: datetime
    timezone: str
    renewal_day: int = Field(description="day of the month the period renews on (clamped to the month's end)")
    tier: str
    monthly_credits: int
    carryover_cap: int
    low_credit_threshold: int = Field(description="20% of the monthly credits")


@event_type("herald.wallet.allowance_changed.v1")
class AllowanceChanged(EventData):
    tier: str
    monthly_credits: int
    carryover_cap: int
    low_credit_threshold: int


@event_type("herald.wallet.credits_carried_over.v1")
class CreditsCarriedOver(EventData):
    grant_id: str
    amount: int
    expires_at: datetime
    drawn: list[Burn] = Field(description="the ending period's monthly grants it was drawn from")


@event_type("herald.wallet.credits_low.v1")
class CreditsLow(EventData):
    available: int
    threshold: int
    period_start: datetime | None


# Post --------------------------------------------------------------------------------


class Destination(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    destination_id: str
    social_account_id: str
    platform: str
    handle: str
    text: str
    hold_id: str
    text_overridden: bool = Field(False, description="the text is the destination's own, not the post's")
    media_urls: list[str] | None = Field(None, description="the destination's own media; null: the post's")
    due_at: datetime | None = Field(None, description="when this destination is due, if not at the post's "
                                    "publish_at (it was rescheduled or published now on its own)")


@event_type("herald.post.scheduled.v1")
class PostScheduled(EventData):
    post_id: str
    text: str
    media_urls: list[str]
    publish_at: datetime
    destinations: list[Destination]
    actor: str | None = Field(None, description="who scheduled it (a draft submitted or approved); null on events "
                              "from before the content workflow")
    reason: str | None = Field(None, description="why now: scheduled, submitted (no approval needed), approved")


class DraftDestination(BaseModel):
    """A destination of a post not yet scheduled: no hold. ``text`` and ``media_urls`` are its own
    overrides (null: the post's)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    destination_id: str
    social_account_id: str
    platform: str
    handle: str
    text: str | None = None
    media_urls: list[str] | None = None


@event_type("herald.post.drafted.v1")
class PostDrafted(EventData):
    """An idea or a draft: not due, no credits held, not in the workspace's queue."""

    post_id: str
    stage: Literal["idea", "draft"]
    text: str
    media_urls: list[str]
    publish_at: datetime | None
    destinations: list[DraftDestination]
    actor: str
    reason: str


@event_type("herald.post.submitted.v1")
class PostSubmitted(EventData):
    """A draft submitted where the workspace requires approval: it waits for an approver."""

    post_id: str
    actor: str
    reason: str


@event_type("herald.post.approved.v1")
class PostApproved(EventData):
    """An approver approved it; the PostScheduled beside it places it on the schedule."""

    post_id: str
    actor: str
    reason: str


@event_type("herald.post.rejected.v1")
class PostRejected(EventData):
    """An approver sent it back to draft, with a comment."""

    post_id: str
    actor: str
    reason: str


@event_type("herald.post.revised.v1")
class PostRevised(EventData):
    """A scheduled post changed before the destinations concerned started: content edited,
    rescheduled, published now, or destinations added. ``destinations`` are those revised or added,
    each in full and waiting from its own ``due_at`` (or ``publish_at`` when it has none); a destination given a new hold (moved in time, or
    added) had its old one released (``released_holds``) in the same decision. Destinations
    removed are cancelled by a PostCancelled beside it."""

    post_id: str
    change: Literal["edit", "reschedule", "publish_now"]
    text: str
    media_urls: list[str]
    publish_at: datetime
    destinations: list[Destination]
    released_holds: list[str] = Field(default_factory=list)
    actor: str
    reason: str


@event_type("herald.post.destinations_on_hold.v1")
class DestinationsOnHold(EventData):
    """Waiting destinations kept but not published (their account was disconnected with `hold`):
    their holds released and daily slots freed in the same decision."""

    post_id: str
    destination_ids: list[str]
    released_holds: list[str]
    actor: str
    reason: str


@event_type("herald.post.attempt_started.v1")
class AttemptStarted(_WithoutSecrets):
    """Carries all the publisher needs but credentials (read from the private store at call time)."""

    post_id: str
    destination_id: str
    attempt: int
    attempt_key: str
    social_account_id: str
    platform: str
    handle: str
    instance_url: str | None
    text: str
    media_urls: list[str]
    not_before: datetime | None = Field(
        None, description="the due time: the attempt starts a little ahead, the platform is called at this time")
    account_settings: dict[str, str] = Field(
        default_factory=dict, description="the account's non-secret settings at the start (e.g. page_id)")


@event_type("herald.post.destination_published.v1")
class DestinationPublished(EventData):
    post_id: str
    destination_id: str
    attempt: int
    hold_id: str
    platform_post_id: str
    url: str | None
    resolved_by: str | None = Field(None, description="set when an unknown outcome was resolved: who found the post")
    hold_settled: bool = Field(False, description="true when the hold was consumed or released in the same decision "
                               "(the wallet's HoldConsumed/HoldReleased beside this event); false on events from "
                               "before that, whose hold the settler processor ends")


@event_type("herald.post.retry_scheduled.v1")
class RetryScheduled(EventData):
    post_id: str
    destination_id: str
    attempt: int
    retry_at: datetime
    error_kind: str | None
    detail: str
    status_code: int | None = None
    requested_by: str | None = Field(None, description="set when an admin asked for it (a failed or skipped "
                                     "destination published again): who; the retry counter starts over")
    hold_id: str | None = Field(None, description="with requested_by: the new credit hold placed for it")


@event_type("herald.post.destination_throttled.v1")
class DestinationThrottled(EventData):
    """The platform or its rate budget said wait: the destination waits until ``until`` and the
    attempt does not count against its retries."""

    post_id: str
    destination_id: str
    attempt: int
    until: datetime
    detail: str
    status_code: int | None = None


@event_type("herald.post.destination_failed.v1")
class DestinationFailed(EventData):
    post_id: str
    destination_id: str
    attempt: int
    hold_id: str
    error_kind: str | None
    detail: str
    status_code: int | None = None
    hold_settled: bool = Field(False, description="true when the hold was consumed or released in the same decision "
                               "(the wallet's HoldConsumed/HoldReleased beside this event); false on events from "
                               "before that, whose hold the settler processor ends")


@event_type("herald.post.destination_skipped.v1")
class DestinationSkipped(EventData):
    post_id: str
    destination_id: str
    hold_id: str
    reason: str
    hold_settled: bool = Field(False, description="true when the hold was consumed or released in the same decision "
                               "(the wallet's HoldConsumed/HoldReleased beside this event); false on events from "
                               "before that, whose hold the settler processor ends")


@event_type("herald.post.outcome_unknown.v1")
class OutcomeUnknown(EventData):
    """The platform may or may not have the post; flagged for review, never blindly re-posted."""

    post_id: str
    destination_id: str
    attempt: int
    detail: str


@event_type("herald.post.cancelled.v1")
class PostCancelled(EventData):
    post_id: str
    reason: str
    cancelled_destinations: list[str]
    released_holds: list[str]
    actor: str | None = Field(None, description="who cancelled; null on events from before the content workflow")
    slots_freed: bool = Field(False, description="true when the destinations' daily-limit slots were freed in the "
                              "same decision (a destination cancelled or removed on its own)")
    hold_settled: bool = Field(False, description="true when the hold was consumed or released in the same decision "
                               "(the wallet's HoldConsumed/HoldReleased beside this event); false on events from "
                               "before that, whose hold the settler processor ends")


# Planning: posting schedules and planned slots (per social account), series --------------


class WeeklySlotData(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    weekday: str = Field(description="mon … sun")
    time: str = Field(description="local wall time HH:MM")


@event_type("herald.posting_schedule.set.v1")
class PostingScheduleSet(EventData):
    social_account_id: str
    timezone: str
    posts_per_week: int
    slots: list[WeeklySlotData]
    active: bool


class PlannedSlot(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    slot_id: str = Field(description="derived from the account and the instant: unique per account and instant")
    at: datetime = Field(description="the instant (UTC)")
    local: str = Field(description="the local wall time it falls on, YYYY-MM-DDTHH:MM")
    wanted: str = Field(description="the schedule's local wall time, YYYY-MM-DDTHH:MM")
    adjusted: str | None = Field(None, description="skipped_hour: the wanted time did not exist (moved to the "
                                 "next valid local time); ambiguous_first: it existed twice (the first is used)")


@event_type("herald.posting_schedule.slots_planned.v1")
class SlotsPlanned(EventData):
    social_account_id: str
    window_start: datetime
    window_end: datetime
    slots: list[PlannedSlot]


@event_type("herald.posting_schedule.slots_removed.v1")
class SlotsRemoved(EventData):
    social_account_id: str
    slot_ids: list[str]
    reason: str = Field(description="paused | schedule_changed")


@event_type("herald.posting_schedule.slot_filled.v1")
class SlotFilled(EventData):
    social_account_id: str
    slot_id: str
    post_id: str
    at: datetime


class SeriesItemData(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    item_id: str
    text: str
    media_urls: list[str]


@event_type("herald.series.defined.v1")
class SeriesDefined(EventData):
    series_id: str
    kind: str = Field(description="recurring | evergreen")
    rrule: str
    starts_at: str = Field(description="DTSTART, local wall time in `timezone`")
    timezone: str
    destinations: list[str]
    items: list[SeriesItemData]
    skip_days: int
    active: bool


@event_type("herald.series.occurrence_scheduled.v1")
class SeriesOccurrenceScheduled(EventData):
    series_id: str
    occurrence_at: datetime
    post_id: str
    item_id: str


@event_type("herald.series.occurrence_skipped.v1")
class SeriesOccurrenceSkipped(EventData):
    series_id: str
    occurrence_at: datetime
    reason_code: str = Field(description="all_items_recent, or the reason scheduling refused it "
                             "(insufficient_credits, queue_full, …)")
    detail: str


# Command outcomes --------------------------------------------------------------------


@event_type("herald.command.accepted.v1")
class CommandAccepted(EventData):
    command_id: str
    command_type: str
    result: dict[str, Any]
    issued_by: str | None = Field(None, description="who sent the command: `api-key:<key id>`, a processor's name")
    subjects: list[str] = Field(default_factory=list, description="what it is about: `post:<id>`, `wallet`, "
                                "`social_account:<id>`")


@event_type("herald.command.rejected.v1")
class CommandRejected(EventData):
    command_id: str
    command_type: str
    reason_code: str
    detail: str
    issued_by: str | None = Field(None, description="who sent the command: `api-key:<key id>`, a processor's name")
    subjects: list[str] = Field(default_factory=list, description="what it is about: `post:<id>`, `wallet`, "
                                "`social_account:<id>`")
    limit: LimitBreach | None = Field(None, description="for a tier limit: which, on which tier, how far")


# Upcasting ---------------------------------------------------------------------------

# Old event type → (new type, function turning old data into new data). Empty while every
# event is at v1; a v2 adds its v1 entry here and readers keep working on old history.
UPCASTERS: dict[str, tuple[str, Callable[[dict[str, Any]], dict[str, Any]]]] = {}


def current_model(type_name: str) -> type[EventData] | None:
    """The model an event of this type is read as, after upcasting (None: unknown type)."""
    while type_name in UPCASTERS:
        type_name = UPCASTERS[type_name][0]
    return EVENT_TYPES.get(type_name)


def parse_event(type_name: str, data: dict[str, Any]) -> EventData:
    """Parse stored or received event data, upcasting older versions first."""
    while type_name in UPCASTERS:
        type_name, upcast = UPCASTERS[type_name]
        data = upcast(data)
    return EVENT_TYPES[type_name].model_validate(data)


# The envelope ------------------------------------------------------------------------


class CloudEvent(BaseModel):
    """CloudEvents 1.0 structured JSON, with Herald's extension attributes."""

    # specversion has a default for Python callers, but every event on the topic carries it, so the
    # published schema lists it as required (as the CloudEvents spec does).
    model_config = ConfigDict(extra="forbid", frozen=True,
                              json_schema_extra=lambda schema: schema.setdefault("required", []).insert(0, "specversion")
                              if "specversion" not in schema.get("required", []) else None)

    specversion: Literal["1.0"] = Field("1.0", description="CloudEvents version; always present on the topic")
    id: str = Field(description="stable: the same event always has the same id")
    source: str = Field(description="/herald/<aggregate type>")
    type: str
    subject: str = Field(description="aggregate id")
    time: datetime
    datacontenttype: str = "application/json"
    data: dict[str, Any]
    workspaceid: str
    aggregateid: str
    aggregatetype: str
    aggregateversion: int
    position: int = Field(description="global position in the event store's notification log")
    causationid: str = Field(description="id of the command that caused the event")
    correlationid: str

    def parsed_data(self) -> EventData:
        return parse_event(self.type, self.data)


# CloudEvents Kafka protocol binding, structured content mode (section 3.3): the event is the
# record value, and the only header is its content type. Binary-mode ``ce_*`` headers are not
# sent: a reader that finds any takes the record for binary mode.
# https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/bindings/kafka-protocol-binding.md
CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
STRUCTURED_HEADERS: list[tuple[str, bytes]] = [("content-type", CONTENT_TYPE.encode())]


def position_of(value: bytes) -> int | None:
    """The global position of the event in a record value (None when it is not one)."""
    try:
        position = json.loads(value).get("position")
    except (ValueError, AttributeError, TypeError):
        return None
    return position if isinstance(position, int) else None
