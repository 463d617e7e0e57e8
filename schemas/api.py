"""HTTP API bodies of the gateway: what clients send and what they get back.

Command request bodies are (or wrap) the command payload models, so the HTTP API and the
commands topic validate exactly the same way.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, StrictInt, model_validator

from schemas import commands as cmd

IDEMPOTENCY_KEY_PATTERN = r"^[A-Za-z0-9_.:\-]{1,200}$"


class Response(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Requests ------------------------------------------------------------------------------


class OpenWorkspaceRequest(cmd.OpenWorkspace):
    """A new workspace; its wallet opens with it."""

    workspace_id: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9_.:\-]+$",
        description="omitted → derived from the command id (stable across retries with the same Idempotency-Key)",
    )

    def payload(self) -> cmd.OpenWorkspace:
        return cmd.OpenWorkspace(**self.model_dump(exclude={"workspace_id"}))


# The payload models themselves, so a body means exactly what the same payload means on the
# commands topic. The access token of a social account is sealed and never returned.
GrantCreditsRequest = cmd.GrantCredits
SchedulePostRequest = cmd.SchedulePost


ApiScope = Literal["admin", "workspace:read", "workspace:write", "credits:grant", "analytics:read", "approver"]


class CreateApiKeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    workspace_id: str | None = Field(
        None, min_length=1, max_length=200, pattern=cmd.ID_PATTERN,
        description="the workspace the key is bound to; omitted → every workspace (admin only). A key bound to a "
        "workspace creates keys for that workspace only")
    scopes: list[ApiScope] = Field(min_length=1, max_length=5, description="at most the creating key's own scopes")
    name: str = Field("", max_length=200, description="what the key is for, shown in listings")


class RotateApiKeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    overlap_s: StrictInt = Field(86_400, ge=0, le=30 * 86_400,
                                 description="how long the old key keeps working beside the new one")


class ConnectSocialAccountRequest(BaseModel):
    """Connect a social account, or connect it again with new tokens (same ``social_account_id``):
    that clears a ``needs_reconnect``. The tokens are sealed into Herald's private credentials store
    before anything else happens; they never reach the domain, its events, a topic or a response."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    social_account_id: str | None = Field(None, min_length=1, max_length=200, pattern=cmd.ID_PATTERN,
                                          description="defaults to one derived from the command id")
    platform: cmd.Platform
    handle: str = Field(min_length=1, max_length=200)
    instance_url: HttpUrl | None = Field(None, description="Mastodon instance base URL")
    access_token: str = Field("", max_length=4000, description="sealed (AES-256-GCM) into the credentials store")
    refresh_token: str | None = Field(None, min_length=1, max_length=4000,
                                      description="OAuth 2.0 refresh token, if the platform issued one: sealed too")
    expires_in: StrictInt | None = Field(None, gt=0, le=366 * 86400, description="the access token's lifetime in seconds, "
                                   "as the platform's token response said (`expires_in`)")
    expires_at: cmd.Timestamp | None = Field(None, description="or when the access token expires")
    settings: cmd.AccountSettings = Field(
        default_factory=dict, description="the account's non-secret settings (GET /v1/platforms lists each "
        "platform's `required_settings`, e.g. `page_id` for Facebook); they are shown and published in events, so "
        "never a secret: a webhook token or signing secret goes as `access_token`. A reconnect with settings "
        "replaces them, without keeps them")

    @model_validator(mode="after")
    def _tokens_make_sense(self) -> ConnectSocialAccountRequest:
        if self.expires_in is not None and self.expires_at is not None:
            raise ValueError("give expires_in or expires_at, not both")
        if not self.access_token and (self.refresh_token or self.expires_in or self.expires_at):
            raise ValueError("refresh_token and expiry need an access_token")
        return self

    def payload(self, credential_version: str | None) -> cmd.ConnectSocialAccount:
        return cmd.ConnectSocialAccount(social_account_id=self.social_account_id, platform=self.platform,
                                        handle=self.handle, instance_url=self.instance_url,
                                        credential_version=credential_version, settings=self.settings)


class CancelPostRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: str = Field("cancelled_by_user", max_length=200)
    destination_ids: list[cmd.Id] | None = Field(
        None, min_length=1, max_length=20, description="only these destinations (each still waiting); their credits "
        "are released and their daily-limit slots freed at once. Omitted: every destination still waiting")


CreateDraftRequest = cmd.CreateDraft
EditPostRequest = cmd.PostEdit
ContentPolicyRequest = cmd.SetContentPolicy


class SubmitPostRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    publish_at: cmd.Timestamp | None = Field(None, description="replaces the draft's; omitted: the draft's, or now")
    comment: str = Field("", max_length=1000)


class ApprovePostRequest(SubmitPostRequest):
    pass


class RejectPostRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    comment: str = Field(min_length=1, max_length=1000, description="why: the author sees it on the draft")


class ReschedulePostRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    publish_at: cmd.Timestamp
    reason: str = Field("rescheduled", min_length=1, max_length=200)
    destination_ids: list[cmd.Id] | None = Field(None, min_length=1, max_length=20,
                                                 description="move only these destinations (each still pending); "
                                                 "omitted: every destination")


class PublishNowRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: str = Field("publish_now", min_length=1, max_length=200)
    destination_ids: list[cmd.Id] | None = Field(None, min_length=1, max_length=20,
                                                 description="publish only these destinations now (each still "
                                                 "pending); omitted: every destination")


# Responses -----------------------------------------------------------------------------


class WorkspaceCreated(Response):
    workspace_id: str
    name: str
    tier: str
    timezone: str
    limit_overrides: dict[str, int]
    limits: dict[str, int] = Field(description="effective limits: tier defaults with overrides applied")
    command_id: str
    position: int | None = Field(
        None, description="event-store position of this decision: pass it as `min_position` to a GET to read your "
        "own write (a repeated Idempotency-Key answers the first decision's)")
    api_key_id: str | None
    api_key: str | None = Field(
        description="service key bound to this workspace; shown once, on the first successful response for the "
        "command. A repeat with the same Idempotency-Key returns null here and does not mint another key."
    )


class SocialAccountConnected(Response):
    social_account_id: str
    platform: str
    handle: str
    instance_url: str | None
    settings: dict[str, str] = Field(default_factory=dict, description="the account's non-secret settings")
    reconnected: bool = Field(False, description="true: an account of this workspace got new tokens")
    command_id: str
    position: int | None = Field(
        None, description="event-store position of this decision: pass it as `min_position` to a GET to read your "
        "own write (a repeated Idempotency-Key answers the first decision's)")


class CreditsGranted(Response):
    grant_id: str
    available: int = Field(description="credits available right after the grant")
    command_id: str
    position: int | None = Field(
        None, description="event-store position of this decision: pass it as `min_position` to a GET to read your "
        "own write (a repeated Idempotency-Key answers the first decision's)")


class GenerateRequest(cmd.GenerateContent):
    """Ask for captions: the payload of `generate_content`, its id optional."""

    generation_id: str | None = Field(  # type: ignore[assignment] - optional here, derived when omitted
        None, min_length=1, max_length=200, pattern=cmd.ID_PATTERN,
        description="omitted → derived from the command id (stable across retries with the same Idempotency-Key)")


SetBrandVoiceRequest = cmd.SetBrandVoice


class Generation(Response):
    generation_id: str
    status: Literal["succeeded", "failed"]
    captions: dict[str, str] = Field(default_factory=dict, description="platform → caption (without the hashtags)")
    hashtags: list[str] = Field(default_factory=list, description="without #; append them when posting")
    provider: str = Field(description="openai, anthropic or offline (offline: templates, no AI)")
    model: str
    prompt_sha256: str
    tokens_in: int
    tokens_out: int
    latency_ms: int
    reason: str | None = Field(None, description="a failure's reason: rate_limited, auth, invalid_output, "
                               "transient, rejected, not_configured")
    detail: str = ""
    day: str = Field(description="the workspace's local day the generation counted on")
    generations_today: int
    daily_limit: int
    brand_voice_version: int
    command_id: str
    position: int | None = None


class BrandVoice(Response):
    """A brand voice as a version of it was set."""

    version: int
    tone: str
    audience: str
    niche: str
    words_to_use: list[str]
    words_to_avoid: list[str]
    example_posts: list[str]
    emoji_policy: str
    hashtag_policy: str


class BrandVoiceRead(BrandVoice):
    """The workspace's current brand voice (the brand_voices read model)."""

    set_at: datetime


class BrandVoiceView(BrandVoice):
    """The brand voice as the command set it."""

    command_id: str
    position: int | None = None


class PostScheduled(Response):
    post_id: str
    publish_at: datetime
    status: str
    command_id: str
    position: int | None = Field(
        None, description="event-store position of this decision: pass it as `min_position` to a GET to read your "
        "own write (a repeated Idempotency-Key answers the first decision's)")


class PostChanged(Response):
    """A workflow step's decision: the post's status after it."""

    post_id: str
    status: str = Field(description="idea, draft, needs_approval, scheduled, publishing, … (see docs/content-workflow.md)")
    publish_at: datetime | None = None
    destinations: list[str] | None = Field(None, description="an edit: the destinations revised or added")
    removed: list[str] | None = Field(None, description="an edit: the destinations removed (cancelled)")
    due_at: dict[str, datetime] | None = Field(None, description="an edit: each revised or added destination's own "
                                               "due time")
    released_holds: list[str] | None = Field(None, description="an edit: holds released because their destination "
                                             "moved in time (each got a new one)")
    command_id: str
    position: int | None = Field(
        None, description="event-store position of this decision: pass it as `min_position` to a GET to read your "
        "own write (a repeated Idempotency-Key answers the first decision's)")


class PostCancelled(Response):
    post_id: str
    status: str
    cancelled: list[str] | None = Field(None, description="with destination_ids: the destinations cancelled")
    command_id: str
    position: int | None = Field(
        None, description="event-store position of this decision: pass it as `min_position` to a GET to read your "
        "own write (a repeated Idempotency-Key answers the first decision's)")


class DestinationView(Response):
    destination_id: str
    social_account_id: str
    platform: str
    handle: str
    text: str
    status: str = Field(description="pending, attempting, retry_scheduled, published, failed, skipped, "
                        "outcome_unknown or cancelled; for an idea or draft, the post's stage")
    attempt: int
    due_at: datetime | None
    platform_post_id: str | None
    url: str | None
    reason: str
    media_urls: list[str] | None = Field(None, description="an idea's or draft's own media for this destination "
                                         "(null: the post's)")


class LastChange(Response):
    actor: str
    reason: str | None


class PostView(Response):
    post_id: str
    workspace_id: str
    status: str = Field(description="idea, draft, needs_approval, scheduled, publishing, published, "
                        "partially_published, failed, skipped or cancelled")
    text: str
    media_urls: list[str]
    publish_at: datetime | None
    destinations: list[DestinationView]
    last_change: LastChange | None = Field(None, description="who made the last workflow step and why (a "
                                           "rejection's comment, an edit's reason); null on posts from before")


class PostList(Response):
    workspace_id: str
    posts: list[PostView]
    next_cursor: str | None = Field(None, description="pass as `cursor` for the next page; null on the last page")


class ContentPolicySet(Response):
    requires_approval: bool
    disconnect_waiting: Literal["cancel", "hold"]
    command_id: str
    position: int | None = None


class ResolveOutcomeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    attempt: StrictInt = Field(ge=1, le=1_000_000,
                               description="the attempt whose outcome is unknown (see the queue's `attempt`)")
    resolution: cmd.Resolution
    platform_post_id: str | None = Field(None, min_length=1, max_length=200)
    url: str | None = Field(None, max_length=2000)
    note: str = Field("", max_length=500)

    @model_validator(mode="after")
    def _published_has_platform_id(self) -> "ResolveOutcomeRequest":
        if self.resolution is cmd.Resolution.published and not self.platform_post_id:
            raise ValueError("a published resolution needs platform_post_id")
        return self


class DestinationRetried(Response):
    post_id: str
    destination_id: str
    status: str
    hold_id: str
    command_id: str
    position: int | None


class OutcomeResolved(Response):
    post_id: str
    destination_id: str
    status: str
    command_id: str
    position: int | None = None


class QueueEntry(Response):
    post_id: str
    destination_id: str
    social_account_id: str
    platform: str
    handle: str
    due_at: datetime
    status: str
    attempt: int
    platform_post_id: str | None
    url: str | None
    reason: str
    throttled_until: datetime | None = Field(
        None, description="the platform asked Herald to wait until then (rate limit); the destination waits")
    updated_at: datetime


class QueueView(Response):
    """The queue read model; it follows the events, so it may lag a write by a moment."""

    workspace_id: str
    tier: str | None
    queue_size: int | None
    waiting: int
    destinations: list[QueueEntry]
    next_cursor: str | None = Field(None, description="pass as `cursor` for the next page; null on the last page")


class SocialAccountView(Response):
    social_account_id: str
    workspace_id: str
    platform: str
    handle: str
    instance_url: str | None
    settings: dict[str, str] = Field(default_factory=dict, description="the account's non-secret settings")
    connected_at: datetime
    status: Literal["active", "needs_reconnect", "disconnected"] = Field(
        "active", description="needs_reconnect: the platform refused its token and it could not be refreshed; its "
        "destinations are skipped (`account_needs_reconnect`) until it is connected again. disconnected: the "
        "workspace disconnected it (POST …/disconnect); its waiting destinations were cancelled")
    needs_reconnect_reason: str | None = None


class DisconnectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: str = Field("disconnected_by_user", min_length=1, max_length=200)
    waiting: Literal["cancel", "hold"] | None = Field(
        None, description="its waiting destinations: cancelled, or kept `on_hold` (not published, credit "
        "released, daily slot freed) until cancelled or removed by an edit; omitted: the workspace's content "
        "policy (`disconnect_waiting`, cancel unless set)")


class CancelledDestination(Response):
    post_id: str
    destination_id: str


class SocialAccountDisconnected(Response):
    social_account_id: str
    cancelled: list[CancelledDestination] = Field(description="the waiting destinations cancelled, their credits "
                                                  "released")
    on_hold: list[CancelledDestination] = Field(default_factory=list, description="with `waiting: hold`: the "
                                                "destinations put on hold, their credits released")
    command_id: str
    position: int | None = None


class SocialAccountList(Response):
    social_accounts: list[SocialAccountView]


class RateBudgetView(Response):
    requests: int
    per_s: float = Field(description="the window, in seconds")
    scope: Literal["account", "app"] = Field(description="per connected account, or shared by all of Herald's")
    source: str = Field(description="the doc page that states it")


class PlatformView(Response):
    platform: str
    display_name: str
    media_kinds: list[str] = Field(description="image, video, gif; file: any other file (Discord, the generic webhook)")
    max_media: int = Field(description="attachments per post, at most")
    max_length: int | None = Field(description="the text limit, counted as `length_unit` says")
    length_unit: str
    threads: bool = Field(description="a text too long for one post goes out as a chain of replies")
    reconcile: Literal["idempotency_key", "lookup", "none"] = Field(
        description="after a timeout: idempotency_key (the platform dedupes on Herald's key), lookup (Herald finds "
        "the post), none (the platform cannot tell: an admin resolves it)")
    rate_budgets: list[RateBudgetView]
    required_settings: list[str] = Field(description="settings a connect must give (`settings`)")
    optional_settings: list[str]
    oauth: bool = Field(description="connectable through …/social-accounts/oauth/start")
    token_refresh: bool = Field(description="Herald refreshes its tokens")
    doc_url: str = Field(description="the API documentation the adapter follows")
    notes: str = ""


class PlatformList(Response):
    platforms: list[PlatformView]


class WorkspaceView(Response):
    workspace_id: str
    name: str
    tier: str
    timezone: str
    limit_overrides: dict[str, int]
    limits: dict[str, int]
    opened_at: datetime
    missed_window_s: float | None = Field(None, description="the workspace's missed window (PUT …/publishing-policy); "
                                          "null: Herald's default")
    requires_approval: bool = Field(False, description="the content policy (PUT …/content-policy): submitted posts "
                                    "wait for a key with the `approver` scope")
    disconnect_waiting: Literal["cancel", "hold"] = Field(
        "cancel", description="the content policy: what disconnecting an account does to its waiting destinations "
        "when the request does not say")


class PublishingPolicySet(Response):
    missed_window_minutes: int | None
    effective_missed_window_s: float
    command_id: str
    position: int | None


class GrantView(Response):
    grant_id: str
    amount: int
    remaining: int
    source: str
    expires_at: datetime | None
    expired: int = Field(0, description="credits of this grant that expired")


class HoldView(Response):
    hold_id: str
    post_id: str
    destination_id: str
    amount: int
    status: Literal["pending", "consumed", "released"]


class WalletView(Response):
    workspace_id: str
    available: int = Field(description="granted − held")
    granted: int = Field(description="sum of the grants' remaining credits")
    held: int = Field(description="sum of pending holds")
    grants: list[GrantView]
    holds: list[HoldView]


class ApiKeyView(Response):
    key_id: str
    name: str
    scopes: list[str]
    workspace_id: str | None
    created_at: datetime
    created_by: str
    last_used_at: datetime | None = Field(description="to the minute")
    expires_at: datetime | None = Field(description="set when the key was rotated: the end of its overlap")
    revoked_at: datetime | None
    rotated_to: str | None = Field(description="the key that replaced this one")
    active: bool


class ApiKeyIssued(ApiKeyView):
    api_key: str | None = Field(description="the key itself, shown once; null on a repeat with the same "
                                "Idempotency-Key")


class ApiKeyList(Response):
    api_keys: list[ApiKeyView]


class CommandQueued(Response):
    command_id: str
    status: Literal["accepted_for_processing"] = "accepted_for_processing"


class Health(Response):
    status: Literal["ok"] = "ok"


class Readiness(Response):
    status: Literal["ready"] = "ready"
    checks: dict[str, str]


class FieldError(Response):
    loc: list[str | int]
    msg: str
    type: str


class Problem(Response):
    """RFC 9457 problem details (``application/problem+json``)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="urn:herald:problem:<reason_code>")
    title: str
    status: int
    detail: str
    reason_code: str = Field(description="stable machine-readable cause; domain rejections keep their reason code")
    command_id: str | None = None
    errors: list[FieldError] | None = Field(None, description="field errors of a 422")
    checks: dict[str, str] | None = Field(None, description="failing readiness checks of a 503 from /readyz")


def problem(status: int, reason_code: str, detail: str, **extensions: Any) -> dict[str, Any]:
    """A problem document as a dict, extension members with None left out."""
    body = {
        "type": f"urn:herald:problem:{reason_code}",
        "title": reason_code.replace("_", " ").capitalize(),
        "status": status,
        "detail": detail,
        "reason_code": reason_code,
    }
    body.update({k: v for k, v in extensions.items() if v is not None})
    return body


# Webhook endpoints (processors/notifications/webhooks.py) ---------------------------------


class CreateWebhookEndpoint(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(min_length=1, max_length=2000, pattern=r"^[^\x00-\x1f\x7f]+$",
                     description="http(s) URL of a public host; Herald POSTs notices to it, signed per Standard Webhooks")
    description: str | None = Field(None, max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")


class RotateWebhookSecret(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    overlap_s: float = Field(86400.0, ge=0, le=7 * 86400, description="how long the replaced secret keeps signing "
                             "too (both signatures, space-separated, in webhook-signature)")


class WebhookEndpoint(BaseModel):
    endpoint_id: str
    workspace_id: str
    url: str
    description: str | None = None
    status: Literal["active", "disabled"]
    disabled_reason: str | None = None
    disabled_at: datetime | None = None
    consecutive_failures: int
    created_at: datetime
    previous_until: datetime | None = Field(None, description="until when the replaced secret still signs")


class WebhookEndpointIssued(WebhookEndpoint):
    secret: str = Field(description="whsec_…: shown this once, stored sealed")


class WebhookTestResult(BaseModel):
    delivered: bool
    status_code: int | None
    error: str | None
    webhook_id: str


NoticeCause = Literal["low_credits", "credits_expiring", "post_skipped", "post_failed", "tier_limit_reached",
                      "account_needs_reconnect", "webhook_endpoint_disabled"]


class NotificationPreference(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cause: NoticeCause
    channel: Literal["webhook", "email"]
    enabled: bool = Field(strict=True)


class NotificationDelivery(BaseModel):
    delivery_id: str = Field(description="also the webhook-id the receiver sees, the same on every attempt")
    channel: str
    endpoint_id: str = Field(description="the webhook endpoint id, or the email recipient id")
    event_id: str = Field(description="the notice event that queued it")
    event_ids: list[str] = Field(description="every notice event it carries (more than one: a digest)")
    cause: str
    status: Literal["queued", "failed", "sent", "gave_up"]
    attempts: int
    last_error: str | None = None
    last_status_code: int | None = None
    next_attempt_at: datetime | None = Field(None, description="when a failed delivery is tried again")
    created_at: datetime
    sent_at: datetime | None = None
    updated_at: datetime


class AddEmailRecipient(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    address: str = Field(min_length=3, max_length=254, pattern=r"^[^@\s<>,;\x00-\x1f\x7f]+@[^@\s<>,;\x00-\x1f\x7f]+$",
                         description="an address that receives the workspace's notices by email")


class EmailRecipient(BaseModel):
    recipient_id: str
    workspace_id: str
    address: str
    created_at: datetime


# Planning (docs/calendar.md) -----------------------------------------------------------------


class PostingScheduleRequest(cmd.SetPostingSchedule):
    """The account's weekly schedule (the account is the one in the path)."""

    social_account_id: cmd.Id | None = Field(None, description="ignored: the path names the account")


class FillSlotRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    post_id: cmd.Id | None = Field(None, description="defaults to one derived from the slot")
    text: str = Field(min_length=1, max_length=10_000)
    media_urls: list[cmd.MediaUrl] = Field(default_factory=list, max_length=4)


class SeriesRequest(cmd.DefineSeries):
    """A recurring post or evergreen queue (the series is the one in the path)."""

    series_id: cmd.Id | None = Field(None, description="ignored: the path names the series")
# Automation rules --------------------------------------------------------------------------


class CreateAutomationRuleRequest(cmd.AutomationRuleFields):
    """A rule: its schedule, what to generate, where to post it and how."""

    rule_id: str | None = Field(None, min_length=1, max_length=200, pattern=cmd.ID_PATTERN,
                                description="omitted → derived from the command id")


UpdateAutomationRuleRequest = cmd.AutomationRuleFields


class AutomationRuleView(Response):
    """A rule as a command left it (the decision's result)."""

    rule_id: str
    status: str
    name: str
    schedule_kind: str
    schedule: str
    anchor: str = Field(description="local wall time the RRULE counts from")
    timezone: str
    topic: str
    tone: str
    language: str
    context: str
    platforms: list[str]
    destinations: list[str]
    destination_platforms: dict[str, str]
    approval_mode: str
    catch_up_window_s: int
    next_run_at: datetime | None
    command_id: str
    position: int | None = None


class AutomationRuleStatus(Response):
    rule_id: str
    status: str
    command_id: str
    position: int | None = None


class AutomationRuleStats(Response):
    """A rule with its stats (the automation_rules read model)."""

    rule_id: str
    name: str
    status: str = Field(description="active, paused")
    paused_reason: str | None = Field(None, description="paused_by_user | tier_limit")
    paused_detail: str | None = None
    definition: dict[str, Any]
    next_run_at: datetime | None = Field(None, description="the next occurrence (null when paused or exhausted)")
    run_occurrence_at: datetime | None = Field(None, description="a fired occurrence whose run has not ended yet")
    runs: int = Field(description="occurrences fired")
    posts: int = Field(description="runs that made a post (or a draft)")
    failures: int
    skipped: int = Field(description="occurrences missed during downtime and not fired")
    failures_by_reason: dict[str, int]
    last_failure_reason: str | None = None
    last_failure_detail: str | None = None
    last_failure_at: datetime | None = None
    last_run_at: datetime | None = None
    last_post_id: str | None = None
    created_at: datetime
    updated_at: datetime


class AutomationRuleList(Response):
    automation_rules: list[AutomationRuleStats]
