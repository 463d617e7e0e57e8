"""Command contracts: the envelope every command travels in, and each command's payload.

A command's ``type`` names its payload model and version, e.g. ``schedule_post.v1``.
``command_id`` is the idempotency key: a command seen twice has one effect.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    HttpUrl,
    StrictBool,
    StrictFloat,
    StrictInt,
    field_validator,
    model_validator,
)

ID_PATTERN = r"^[A-Za-z0-9_.:\-]+$"
Identifier = Field(min_length=1, max_length=200, pattern=ID_PATTERN)
# An id a client chooses: the same alphabet, so it can stand in a URL path unescaped.
Id = Annotated[str, Field(min_length=1, max_length=200, pattern=ID_PATTERN)]

# The latest instant Herald accepts anywhere: far beyond any scheduling horizon, and far enough
# from Python's datetime.max (9999-12-31) that adding a retry delay never overflows.
_RFC3339_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]")
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)


def _timestamp_text(value: Any) -> Any:
    # Lax pydantic reads a number as Unix seconds: `expires_at: 0` would be 1970. A timestamp is
    # an RFC 3339 string (or, built in Python, a datetime), never a number, a numeric string
    # (a query parameter is always a string) or a boolean.
    if isinstance(value, (int, float, bool)) or isinstance(value, str) and not _RFC3339_DATE.match(value):
        raise ValueError("a timestamp must be an RFC 3339 string with an offset, e.g. 2030-01-31T09:00:00Z")
    return value


def _in_utc_range(value: datetime) -> datetime:
    try:
        utc = value.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-05:00 is year 10000 in UTC
        raise ValueError("the timestamp is outside the range Herald can hold") from None
    if not EARLIEST <= utc < LATEST:
        raise ValueError(f"the timestamp must be between {EARLIEST.isoformat()} and {LATEST.isoformat()} (UTC)")
    return value


def _public_media_url(url: HttpUrl) -> HttpUrl:
    # Checked again, resolving names, every time media is fetched (herald/net/safe_fetch.py); here
    # only what needs no DNS, so a post that could never publish is refused when it is scheduled.
    host = (url.host or "").strip("[]").lower()
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        raise ValueError(f"media must be on a public host, not {host}")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return url
    if not address.is_global or address.is_multicast or address.is_reserved:
        raise ValueError(f"media must be on a public address, not {address}")
    return url


MediaUrl = Annotated[HttpUrl, AfterValidator(_public_media_url)]

Timestamp = Annotated[AwareDatetime, BeforeValidator(_timestamp_text), AfterValidator(_in_utc_range)]


def _day_text(value: Any) -> Any:
    if isinstance(value, str) and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("a day is written YYYY-MM-DD")
    if isinstance(value, (int, float, bool)):
        raise ValueError("a day is written YYYY-MM-DD, not a number")
    return value


# A calendar day, only as YYYY-MM-DD (pydantic would otherwise read 0 as 1970-01-01).
Day = Annotated[date, BeforeValidator(_day_text)]


class Tier(StrEnum):
    free = "free"
    pro = "pro"
    business = "business"


LimitName = Literal[
    "accounts_per_platform",
    "queue_size",
    "daily_generations",
    "daily_posts_per_platform",
    "automation_rules",
    "monthly_credits",
    "scheduling_horizon_days",
    "carryover_cap",
]
TierName = Field(min_length=1, max_length=50, pattern=r"^[a-z][a-z0-9_\-]*$")


class Platform(StrEnum):
    """Every platform Herald has (or is getting) an adapter for; the names are the content rules'
    (domain/post/platform_rules.py). Connecting to one whose adapter is not running answers 422."""

    sandbox = "sandbox"
    mastodon = "mastodon"
    x = "x"
    linkedin = "linkedin"
    facebook = "facebook"
    instagram = "instagram"
    threads = "threads"
    bluesky = "bluesky"
    pinterest = "pinterest"
    reddit = "reddit"
    youtube = "youtube"
    tiktok = "tiktok"
    discord = "discord"
    telegram = "telegram"
    webhook = "webhook"


# An account's non-secret settings (Facebook page_id, LinkedIn author_urn, Telegram chat_id, …): they
# travel in events, so secrets (webhook tokens, signing secrets) go as the sealed access token instead.
SETTING_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
_SECRET_NAME = re.compile(r"token|secret|password|passwd|credential|api_?key|private_?key|signing")


def _not_a_secret_name(name: str) -> str:
    if _SECRET_NAME.search(name):
        raise ValueError(f"setting {name!r} names a secret: settings are published in events; give secrets as the "
                         "access_token, which is sealed")
    return name


SettingName = Annotated[str, Field(pattern=SETTING_NAME_PATTERN), AfterValidator(_not_a_secret_name)]
SettingValue = Annotated[str, Field(min_length=1, max_length=500, pattern=r"^[^\x00-\x1f\x7f]+$")]
AccountSettings = Annotated[dict[SettingName, SettingValue], Field(max_length=20)]


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OpenWorkspace(Payload):
    name: str = Field(min_length=1, max_length=200)
    tier: str = Field("free", min_length=1, max_length=50, pattern=r"^[a-z][a-z0-9_\-]*$",
                      description="a shipped tier (free, pro, business) or one an admin defined")
    timezone: str = "UTC"
    limit_overrides: dict[LimitName, Annotated[StrictInt, Field(ge=0, le=1_000_000_000)]] = Field(
        default_factory=dict, description="tier limit name → value, overriding the tier default"
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value

    start_with_monthly_credits: bool = Field(
        False, description="grant the tier's monthly credits at once; otherwise the first at the first renewal")
    first_renewal_at: AwareDatetime | None = Field(
        None, description="when the first credit period ends (e.g. the subscription's renewal date), within 31 "
        "days; later periods renew on its local day of the month at local midnight. Default: local midnight of "
        "the opening day of the month, a month after opening")



class ConnectSocialAccount(Payload):
    social_account_id: Id | None = Field(None, description="defaults to one derived from command_id")
    platform: Platform
    handle: str = Field(min_length=1, max_length=200)
    instance_url: HttpUrl | None = Field(None, description="Mastodon instance base URL")
    credential_version: str | None = Field(
        None, min_length=1, max_length=200, pattern=ID_PATTERN,
        description="the version of the account's credentials in Herald's private store, written there (sealed) "
        "by the gateway's connect endpoint before this command; never the token itself. Connecting an account "
        "of this workspace again with a new version reconnects it")
    settings: AccountSettings = Field(
        default_factory=dict, description="the account's non-secret settings, by name (e.g. page_id for Facebook, "
        "author_urn for LinkedIn; GET /v1/platforms lists each platform's required_settings). Never a secret: "
        "they are published in events")


class GrantCredits(Payload):
    grant_id: Id | None = Field(None, description="defaults to one derived from command_id")
    amount: StrictInt = Field(gt=0, le=1_000_000)
    source: Literal["purchase", "monthly", "promotion", "manual"] = "manual"
    expires_at: Timestamp | None = Field(None, description="must be in the future")


class SchedulePost(Payload):
    post_id: Id | None = Field(None, description="defaults to one derived from command_id")
    text: str = Field(min_length=1, max_length=10_000)
    media_urls: list[MediaUrl] = Field(default_factory=list, max_length=4)
    destinations: list[Id] = Field(min_length=1, max_length=20, description="social account ids")
    destination_text: dict[str, Annotated[str, Field(min_length=1, max_length=10_000)]] = Field(
        default_factory=dict, description="per-destination text override")
    publish_at: Timestamp | None = Field(None, description="omitted → publish now; at most the scheduling horizon ahead")

    @model_validator(mode="after")
    def _destinations_are_unique_and_overrides_known(self) -> SchedulePost:
        if len(set(self.destinations)) != len(self.destinations):
            raise ValueError("destinations must be unique")
        stray = sorted(set(self.destination_text) - set(self.destinations))
        if stray:
            raise ValueError(f"destination_text names accounts that are not destinations: {stray}")
        return self


PostText = Annotated[str, Field(min_length=1, max_length=10_000)]


class CreateDraft(Payload):
    """An idea or a draft: no credits held, not in the queue, no limits counted until submitted.
    Destinations may be empty (an idea); the text is checked against each platform at submission."""

    post_id: Id | None = Field(None, description="defaults to one derived from command_id")
    stage: Literal["idea", "draft"] = "draft"
    text: str = Field("", max_length=10_000)
    media_urls: list[MediaUrl] = Field(default_factory=list, max_length=4)
    destinations: list[Id] = Field(default_factory=list, max_length=20, description="social account ids")
    destination_text: dict[str, PostText] = Field(default_factory=dict, description="per-destination text override")
    destination_media: dict[str, Annotated[list[MediaUrl], Field(max_length=4)]] = Field(
        default_factory=dict, description="per-destination media override (an empty list: no media there)")
    publish_at: Timestamp | None = Field(None, description="when it should go out once scheduled; omitted: when "
                                         "submitted (or approved)")

    @model_validator(mode="after")
    def _destinations_are_unique_and_overrides_known(self) -> CreateDraft:
        _check_destinations(self.destinations, self.destination_text, self.destination_media)
        return self


def _check_destinations(destinations: list[str], text: dict[str, str], media: dict[str, Any]) -> None:
    if len(set(destinations)) != len(destinations):
        raise ValueError("destinations must be unique")
    stray = sorted((set(text) | set(media)) - set(destinations))
    if stray:
        raise ValueError(f"destination_text/destination_media name accounts that are not destinations: {stray}")


class SubmitPost(Payload):
    """A draft goes to approval (when the workspace requires it) or straight onto the schedule."""

    post_id: Id
    publish_at: Timestamp | None = Field(None, description="replaces the draft's publish_at; omitted: the draft's, "
                                         "or now if it has none")
    comment: str = Field("", max_length=1000)


class ApprovePost(Payload):
    """An approver schedules a post waiting for approval (credits held, limits checked then)."""

    post_id: Id
    publish_at: Timestamp | None = Field(None, description="replaces the post's publish_at (e.g. when it has passed)")
    comment: str = Field("", max_length=1000)


class RejectPost(Payload):
    """An approver sends a post waiting for approval back to draft."""

    post_id: Id
    comment: str = Field(min_length=1, max_length=1000)


class SetContentPolicy(Payload):
    """The workspace's content policy: whether submitted posts need an approver, and what
    disconnecting an account does to its waiting destinations by default."""

    requires_approval: StrictBool
    disconnect_waiting: Literal["cancel", "hold"] = "cancel"


class CancelPost(Payload):
    post_id: Id
    reason: str = Field("cancelled_by_user", max_length=200)
    destination_ids: list[Id] | None = Field(None, min_length=1, max_length=20,
                                             description="only these destinations (each still waiting); omitted: "
                                             "every destination still waiting")


class PostEdit(Payload):
    """Changes an idea, a draft (a post awaiting approval goes back to draft) or a scheduled post
    whose destinations concerned have not started. Omitted fields stay as they are."""

    text: str | None = Field(None, max_length=10_000)
    media_urls: list[MediaUrl] | None = Field(None, max_length=4)
    publish_at: Timestamp | None = None
    add_destinations: list[Id] = Field(default_factory=list, max_length=20)
    remove_destinations: list[Id] = Field(default_factory=list, max_length=20)
    destination_text: dict[str, PostText | None] = Field(
        default_factory=dict, description="per-destination text override; null: back to the post's text")
    destination_media: dict[str, Annotated[list[MediaUrl], Field(max_length=4)] | None] = Field(
        default_factory=dict, description="per-destination media override; null: back to the post's media")
    stage: Literal["idea", "draft"] | None = Field(None, description="an idea becomes a draft or back (not once "
                                                   "submitted)")
    reason: str = Field("edited", min_length=1, max_length=200)

    @model_validator(mode="after")
    def _consistent(self) -> PostEdit:
        if len(set(self.add_destinations)) != len(self.add_destinations):
            raise ValueError("add_destinations must be unique")
        both = sorted(set(self.add_destinations) & set(self.remove_destinations))
        if both:
            raise ValueError(f"destinations both added and removed: {both}")
        stray = sorted((set(self.destination_text) | set(self.destination_media)) & set(self.remove_destinations))
        if stray:
            raise ValueError(f"overrides for destinations being removed: {stray}")
        return self


class EditPost(PostEdit):
    post_id: Id


class ReschedulePost(Payload):
    """Moves every destination of a scheduled post (none may have started) to ``publish_at``, or
    only ``destination_ids`` (each still pending; the others keep their times)."""

    post_id: Id
    publish_at: Timestamp
    reason: str = Field("rescheduled", min_length=1, max_length=200)
    destination_ids: list[Id] | None = Field(None, min_length=1, max_length=20,
                                             description="only these destinations (each still pending); omitted: "
                                             "every destination")


class PublishPostNow(Payload):
    """A scheduled post (none of its destinations started) is due now, or only ``destination_ids``."""

    post_id: Id
    reason: str = Field("publish_now", min_length=1, max_length=200)
    destination_ids: list[Id] | None = Field(None, min_length=1, max_length=20,
                                             description="only these destinations (each still pending); omitted: "
                                             "every destination")


class StartPublishAttempt(Payload):
    post_id: str
    destination_id: str
    attempt: StrictInt = Field(ge=1, le=1_000_000)


class Outcome(StrEnum):
    published = "published"
    retry = "retry"
    throttled = "throttled"  # the platform asked us to wait: try again then, without using up a retry
    failed = "failed"
    skipped = "skipped"
    unknown = "unknown"


class RecordPublishOutcome(Payload):
    post_id: str
    destination_id: str
    attempt: StrictInt = Field(ge=1, le=1_000_000)
    outcome: Outcome
    platform_post_id: str | None = None
    url: str | None = None
    error_kind: str | None = Field(
        None, description="rate_limited, auth, invalid_content, transient, permanent, unknown")
    detail: str = Field("", max_length=2000)
    retry_after_s: StrictFloat | None = Field(None, ge=0, le=31_536_000,
                                              description="platform-requested wait (e.g. Retry-After)")
    status_code: StrictInt | None = Field(None, ge=100, le=599, description="the platform's HTTP status, when it answered")

    @model_validator(mode="after")
    def _published_has_platform_id(self) -> RecordPublishOutcome:
        if self.outcome is Outcome.published and not self.platform_post_id:
            raise ValueError("a published outcome needs platform_post_id")
        return self


class Resolution(StrEnum):
    published = "published"
    not_published = "not_published"


class RetryDestination(Payload):
    """Admin (job monitor): publish a failed or skipped destination again, now. A new credit hold is
    placed for it (rejected ``insufficient_credits`` without one); its next attempt starts at once."""

    post_id: str
    destination_id: str


class ResolvePublishOutcome(Payload):
    """Ends a destination whose outcome is unknown: found on the platform (published) or not.
    Sent by the publisher's reconciliation, or by an admin who checked the platform."""

    post_id: str
    destination_id: str
    attempt: StrictInt = Field(ge=1, le=1_000_000)
    resolution: Resolution
    platform_post_id: str | None = Field(None, min_length=1, max_length=200)
    url: str | None = Field(None, max_length=2000)
    note: str = Field("", max_length=500)

    @model_validator(mode="after")
    def _published_has_platform_id(self) -> ResolvePublishOutcome:
        if self.resolution is Resolution.published and not self.platform_post_id:
            raise ValueError("a published resolution needs platform_post_id")
        return self


class DisconnectSocialAccount(Payload):
    """The workspace stops publishing to an account: its waiting destinations are cancelled and
    their credits released; in-flight attempts finish."""

    social_account_id: Id
    reason: str = Field("disconnected_by_user", min_length=1, max_length=200)
    waiting: Literal["cancel", "hold"] | None = Field(
        None, description="its waiting destinations: cancelled, or kept on hold (not published, no credit "
        "held) until cancelled or removed; omitted: the workspace's content policy (cancel unless set)")


class MarkAccountNeedsReconnect(Payload):
    """Sent by the token refresher when the platform refused to refresh an account's token for good."""

    social_account_id: str = Identifier
    reason: str = Field(min_length=1, max_length=200, description="e.g. invalid_grant, access_token_rejected")
    credential_version: str | None = Field(None, max_length=200, description="the credentials that failed")
    detail: str = Field("", max_length=500)


class ConsumeHold(Payload):
    hold_id: str


class ReleaseHold(Payload):
    hold_id: str
    reason: str = Field("released", max_length=200)


# Tiers and credits (docs/credits.md) ---------------------------------------------------


class DefineTier(Payload):
    """Admin: a new version of a tier (its limits, monthly credits and carryover cap)."""

    tier: str = TierName
    limits: dict[LimitName, Annotated[int, Field(ge=0)]] = Field(description="every limit, by name")

    @model_validator(mode="after")
    def _every_limit(self) -> DefineTier:
        missing = sorted(set(LimitName.__args__) - set(self.limits))  # type: ignore[attr-defined]
        if missing:
            raise ValueError(f"a tier names every limit; missing: {missing}")
        return self


class ChangeTier(Payload):
    """Admin: move the workspace to another tier (an upgrade at once, a downgrade at the next renewal)."""

    tier: str = TierName


class SetPublishingPolicy(Payload):
    """The workspace's publishing policy: how late a destination may still be published."""

    missed_window_minutes: StrictInt | None = Field(
        None, ge=1, le=7 * 24 * 60,
        description="a destination that cannot start within this many minutes of its due time is skipped with "
        "reason `missed` instead of published late; null: Herald's default (HERALD_MISSED_WINDOW_S, 60 minutes)")


class SetLimitOverrides(Payload):
    """Admin: the workspace's own limits, replacing its earlier overrides (empty: the tier's)."""

    limit_overrides: dict[LimitName, Annotated[int, Field(ge=0)]] = Field(default_factory=dict)


class ExpireGrant(Payload):
    """Credit clock: the grant reached its expires_at."""

    grant_id: str


class WarnExpiringCredits(Payload):
    """Credit clock: the grant expires in three days."""

    grant_id: str


class RenewCreditPeriod(Payload):
    """Credit clock: the workspace's period that renews at ``renews_at`` is over."""

    renews_at: AwareDatetime


class ExpireHold(Payload):
    """Credit clock: the hold outlived its post's due time plus the grace."""

    hold_id: str


class StartCreditPeriod(Payload):
    """Upgrade: a workspace opened before credit periods gets its first, starting now (no-op if it has one)."""


class MarkNoticesRead(Payload):
    notice_ids: list[str] = Field(min_length=1, max_length=500)


GenerationText = Annotated[str, Field(max_length=2000)]


class GenerateContent(Payload):
    """Ask for AI captions: counted against the day's generations (the workspace's local day) and
    never charged credits. The provider is called after this is accepted, outside the decision;
    `record_generation_outcome` records what it answered."""

    generation_id: Id
    topic: str = Field(min_length=1, max_length=500)
    platforms: list[Platform] = Field(min_length=1, max_length=10)
    tone: str = Field("", max_length=100)
    language: str = Field("en", min_length=2, max_length=35, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$",
                          description="BCP 47 language tag")
    context: GenerationText = ""
    media_description: str = Field("", max_length=1000)

    @field_validator("platforms")
    @classmethod
    def _distinct(cls, platforms: list[Platform]) -> list[Platform]:
        if len(set(platforms)) != len(platforms):
            raise ValueError("each platform at most once")
        return platforms


Word = Annotated[str, Field(min_length=1, max_length=60)]


class SetBrandVoice(Payload):
    """The workspace's brand voice, fed into every generation's prompt; each set is a new version."""

    tone: str = Field("", max_length=200)
    audience: str = Field("", max_length=300)
    niche: str = Field("", max_length=200)
    words_to_use: list[Word] = Field(default_factory=list, max_length=50)
    words_to_avoid: list[Word] = Field(default_factory=list, max_length=50)
    example_posts: list[Annotated[str, Field(min_length=1, max_length=2200)]] = Field(default_factory=list,
                                                                                       max_length=5)
    emoji_policy: str = Field("", max_length=200, description='e.g. "none", "sparingly", "one per post"')
    hashtag_policy: str = Field("", max_length=200, description='e.g. "3 to 5, lower case"')


class GenerationFailure(StrEnum):
    rate_limited = "rate_limited"
    auth = "auth"
    invalid_output = "invalid_output"
    transient = "transient"
    rejected = "rejected"
    not_configured = "not_configured"


class GeneratedCaption(BaseModel):
    model_config = ConfigDict(extra="forbid")
    platform: Platform
    text: str = Field(min_length=1, max_length=70_000)


class RecordGenerationOutcome(Payload):
    """What the provider answered for a requested generation: captions or the failure's reason."""

    generation_id: Id
    succeeded: bool
    captions: list[GeneratedCaption] = Field(default_factory=list, max_length=10)
    hashtags: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(default_factory=list, max_length=30)
    failure: GenerationFailure | None = None
    detail: str = Field("", max_length=2000)
    provider: str = Field(min_length=1, max_length=50)
    model: str = Field("", max_length=200)
    prompt_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    tokens_in: StrictInt = Field(0, ge=0)
    tokens_out: StrictInt = Field(0, ge=0)
    latency_ms: StrictInt = Field(0, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> RecordGenerationOutcome:
        if self.succeeded and (not self.captions or self.failure is not None):
            raise ValueError("a success carries captions and no failure")
        if not self.succeeded and (self.failure is None or self.captions):
            raise ValueError("a failure carries its reason and no captions")
        return self


class QueueNotificationDelivery(Payload):
    """The notifications processor queued a delivery of a notice (or folded one into a digest)."""

    delivery_id: Id
    channel: Literal["webhook", "email"]
    target_id: Id
    cause: str = Field(min_length=1, max_length=100)
    notice_event_id: Id
    notice_event_type: str | None = Field(None, max_length=200)
    digest_count: StrictInt = Field(1, ge=1)


class RecordNotificationDelivery(Payload):
    """What one attempt of a delivery came to, recorded once per attempt (``attempt`` fences it)."""

    delivery_id: Id
    channel: Literal["webhook", "email"]
    target_id: Id
    cause: str = Field(min_length=1, max_length=100)
    notice_event_id: Id
    attempt: StrictInt = Field(ge=0)
    outcome: Literal["sent", "failed", "gave_up"]
    status_code: StrictInt | None = Field(None, ge=100, le=599)
    error: str = Field("", max_length=2000)
    next_attempt_at: Timestamp | None = None
    notice_event_ids: list[Id] = Field(default_factory=list, max_length=10_000)
    endpoint_disabled: str | None = Field(None, max_length=2000,
                                          description="the reason Herald disabled the webhook endpoint now, if it did")

    @model_validator(mode="after")
    def _consistent(self) -> RecordNotificationDelivery:
        if self.outcome == "failed" and self.next_attempt_at is None:
            raise ValueError("a failed attempt says when the next one is")
        if self.outcome != "gave_up" and self.endpoint_disabled is not None:
            raise ValueError("only a give-up disables an endpoint")
        return self


# Planning: posting schedules, planned slots, recurring and evergreen series (docs/calendar.md) ------

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
LocalTime = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="local wall time, HH:MM")]
PLANNING_HORIZON_DAYS = 28


def _iana_zone(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone {value!r}") from None
    return value


ZoneName = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_iana_zone)]


class WeeklySlot(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    weekday: Weekday
    time: LocalTime


class SetPostingSchedule(Payload):
    """An account's weekly posting schedule: explicit ``slots`` (weekday + local time), or
    ``posts_per_week`` spread over the week at ``times`` (rotating). Replaces the earlier schedule."""

    social_account_id: Id
    posts_per_week: StrictInt | None = Field(None, ge=1, le=70)
    times: list[LocalTime] = Field(default_factory=list, max_length=24)
    slots: list[WeeklySlot] = Field(default_factory=list, max_length=70)
    timezone: ZoneName | None = Field(None, description="IANA zone; default: the workspace's time zone")
    active: bool = True

    @model_validator(mode="after")
    def _one_way_to_say_it(self) -> SetPostingSchedule:
        if self.slots and self.times:
            raise ValueError("give either slots (weekday + time) or posts_per_week with times, not both")
        if self.slots:
            if len(set(self.slots)) != len(self.slots):
                raise ValueError("slots must be unique")
            if self.posts_per_week is not None and self.posts_per_week != len(self.slots):
                raise ValueError(f"posts_per_week {self.posts_per_week} disagrees with {len(self.slots)} slots")
        else:
            if self.posts_per_week is None or not self.times:
                raise ValueError("give slots, or posts_per_week with at least one time")
            if len(set(self.times)) != len(self.times):
                raise ValueError("times must be unique")
        return self


class TopOffSlots(Payload):
    """Create the missing planned slots of the next ``days`` from the active schedules (all of the
    workspace's accounts, or those named), and the occurrences of its active series. Idempotent."""

    social_account_ids: list[Id] = Field(default_factory=list, max_length=500,
                                         description="empty: every account of the workspace")
    series_ids: list[Id] = Field(default_factory=list, max_length=500,
                                 description="the series whose occurrences to schedule (the ticker names the "
                                 "workspace's active ones)")
    days: StrictInt = Field(PLANNING_HORIZON_DAYS, ge=1, le=PLANNING_HORIZON_DAYS)


class FillSlot(Payload):
    """Give a planned slot its content: it becomes a draft post at the slot's time, on its account."""

    social_account_id: Id
    slot_id: Id
    post_id: Id | None = Field(None, description="defaults to one derived from the slot")
    text: str = Field(min_length=1, max_length=10_000)
    media_urls: list[MediaUrl] = Field(default_factory=list, max_length=4)


class SeriesItem(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    item_id: Id
    text: str = Field(min_length=1, max_length=10_000)
    media_urls: list[MediaUrl] = Field(default_factory=list, max_length=4)


def _rrule_text(value: str) -> str:
    # The rule itself is parsed by the domain (python-dateutil, RFC 5545), which refuses a bad one
    # with `invalid_schedule`; here only its shape: one RRULE, no DTSTART (starts_at is the DTSTART).
    text = value[6:] if value.upper().startswith("RRULE:") else value
    if "\n" in text or "DTSTART" in text.upper() or not text.upper().startswith("FREQ=") and ";FREQ=" not in \
            text.upper():
        raise ValueError("give one RRULE alone, e.g. FREQ=WEEKLY;BYDAY=MO (starts_at is its DTSTART)")
    if re.search(r"(^|;)FREQ=(SECONDLY|MINUTELY)(;|$)", text.upper()):
        raise ValueError("posts recur at most hourly: FREQ=SECONDLY and MINUTELY are not accepted")
    return text


RRule = Annotated[str, Field(min_length=6, max_length=500), AfterValidator(_rrule_text)]


class DefineSeries(Payload):
    """A recurring post (one item) or an evergreen queue (a pool of items, each not reposted within
    ``skip_days``): occurrences of ``rrule`` from ``starts_at`` (local wall time in the workspace's
    zone) are scheduled as posts to ``destinations`` as top-offs reach them. Replaces an earlier
    definition of the same series; ``active: false`` stops it."""

    series_id: Id
    kind: Literal["recurring", "evergreen"] = "recurring"
    rrule: RRule
    starts_at: datetime = Field(description="DTSTART as a local wall time (no offset) in the workspace's zone")
    destinations: list[Id] = Field(min_length=1, max_length=20)
    items: list[SeriesItem] = Field(min_length=1, max_length=500)
    skip_days: StrictInt = Field(0, ge=0, le=365, description="evergreen: skip items posted within this many days")
    active: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> DefineSeries:
        if self.starts_at.tzinfo is not None:
            raise ValueError("starts_at is a local wall time without an offset (the workspace's zone applies)")
        if len(set(self.destinations)) != len(self.destinations):
            raise ValueError("destinations must be unique")
        if len({i.item_id for i in self.items}) != len(self.items):
            raise ValueError("item ids must be unique")
        if self.kind == "recurring" and len(self.items) != 1:
            raise ValueError("a recurring series has exactly one item")
        return self


class ScheduleKind(StrEnum):
    rrule = "rrule"
    cron = "cron"


class ApprovalMode(StrEnum):
    auto_schedule = "auto_schedule"
    draft_for_approval = "draft_for_approval"


class AutomationRuleFields(Payload):
    """A rule's definition (create and update take all of it)."""

    name: str = Field(min_length=1, max_length=200)
    schedule_kind: ScheduleKind
    schedule: str = Field(min_length=1, max_length=500, description="an RRULE (RFC 5545, e.g. FREQ=WEEKLY;BYDAY=MO;"
                          "BYHOUR=9;BYMINUTE=0) or a 5-field cron expression, in the workspace's time zone")
    topic: str = Field(min_length=1, max_length=500)
    tone: str = Field("", max_length=100)
    language: str = Field("en", min_length=2, max_length=35, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
    context: GenerationText = ""
    destinations: list[Id] = Field(min_length=1, max_length=10, description="social account ids")
    approval_mode: ApprovalMode = ApprovalMode.auto_schedule
    catch_up_window_s: StrictInt = Field(3600, ge=60, le=7 * 86400, description="after downtime, the latest missed "
                                         "occurrence fires if it is at most this old; older ones are skipped")

    @field_validator("destinations")
    @classmethod
    def _unique(cls, destinations: list[str]) -> list[str]:
        if len(set(destinations)) != len(destinations):
            raise ValueError("destinations must be unique")
        return destinations


class CreateAutomationRule(AutomationRuleFields):
    rule_id: Id


class UpdateAutomationRule(AutomationRuleFields):
    rule_id: Id


class PauseAutomationRule(Payload):
    rule_id: Id


class ResumeAutomationRule(Payload):
    rule_id: Id


class DeleteAutomationRule(Payload):
    rule_id: Id


class FireRuleOccurrence(Payload):
    """The rule runner claims one occurrence: fired once (the rule rejects one at or before the last)."""

    rule_id: Id
    occurrence_at: Timestamp


class RecordRuleRun(Payload):
    """How a fired occurrence ended: the post (or draft) made, or why none was."""

    rule_id: Id
    occurrence_at: Timestamp
    post_id: Id | None = None
    failure: str | None = Field(None, min_length=1, max_length=100)
    detail: str = Field("", max_length=2000)

    @model_validator(mode="after")
    def _one_of(self) -> RecordRuleRun:
        if (self.post_id is None) == (self.failure is None):
            raise ValueError("a run ends with a post_id or a failure, not both")
        return self


COMMAND_TYPES: dict[str, type[Payload]] = {
    "open_workspace.v1": OpenWorkspace,
    "connect_social_account.v1": ConnectSocialAccount,
    "grant_credits.v1": GrantCredits,
    "schedule_post.v1": SchedulePost,
    "cancel_post.v1": CancelPost,
    "create_draft.v1": CreateDraft,
    "edit_post.v1": EditPost,
    "reschedule_post.v1": ReschedulePost,
    "publish_post_now.v1": PublishPostNow,
    "submit_post.v1": SubmitPost,
    "approve_post.v1": ApprovePost,
    "reject_post.v1": RejectPost,
    "set_content_policy.v1": SetContentPolicy,
    "start_publish_attempt.v1": StartPublishAttempt,
    "record_publish_outcome.v1": RecordPublishOutcome,
    "resolve_publish_outcome.v1": ResolvePublishOutcome,
    "retry_destination.v1": RetryDestination,
    "mark_account_needs_reconnect.v1": MarkAccountNeedsReconnect,
    "disconnect_social_account.v1": DisconnectSocialAccount,
    "consume_hold.v1": ConsumeHold,
    "release_hold.v1": ReleaseHold,
    "define_tier.v1": DefineTier,
    "change_tier.v1": ChangeTier,
    "set_limit_overrides.v1": SetLimitOverrides,
    "set_publishing_policy.v1": SetPublishingPolicy,
    "expire_grant.v1": ExpireGrant,
    "warn_expiring_credits.v1": WarnExpiringCredits,
    "renew_credit_period.v1": RenewCreditPeriod,
    "expire_hold.v1": ExpireHold,
    "mark_notices_read.v1": MarkNoticesRead,
    "start_credit_period.v1": StartCreditPeriod,
    "generate_content.v1": GenerateContent,
    "record_generation_outcome.v1": RecordGenerationOutcome,
    "set_brand_voice.v1": SetBrandVoice,
    "queue_notification_delivery.v1": QueueNotificationDelivery,
    "record_notification_delivery.v1": RecordNotificationDelivery,
    # Planning (docs/calendar.md)
    "set_posting_schedule.v1": SetPostingSchedule,
    "top_off_slots.v1": TopOffSlots,
    "fill_slot.v1": FillSlot,
    "define_series.v1": DefineSeries,
    "create_automation_rule.v1": CreateAutomationRule,
    "update_automation_rule.v1": UpdateAutomationRule,
    "pause_automation_rule.v1": PauseAutomationRule,
    "resume_automation_rule.v1": ResumeAutomationRule,
    "delete_automation_rule.v1": DeleteAutomationRule,
    "fire_rule_occurrence.v1": FireRuleOccurrence,
    "record_rule_run.v1": RecordRuleRun,
}
COMMAND_TYPE_OF: dict[type[Payload], str] = {model: name for name, model in COMMAND_TYPES.items()}


class CommandEnvelope(BaseModel):
    """What travels on the commands topic (key: workspace id)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command_id: str = Identifier
    type: str = Field(description="payload type and version, e.g. schedule_post.v1")
    workspace_id: str = Identifier
    issued_at: Timestamp
    issued_by: str = Field(min_length=1, max_length=200)
    correlation_id: str | None = Field(None, max_length=200)
    payload: dict[str, Any]

    def parsed_payload(self) -> Payload:
        """The typed payload; raises KeyError for an unknown type, ValidationError for bad fields."""
        return COMMAND_TYPES[self.type].model_validate(self.payload)

    @classmethod
    def wrap(
        cls,
        payload: Payload,
        *,
        command_id: str,
        workspace_id: str,
        issued_by: str,
        issued_at: datetime,
        correlation_id: str | None = None,
    ) -> CommandEnvelope:
        return cls(
            command_id=command_id,
            type=COMMAND_TYPE_OF[type(payload)],
            workspace_id=workspace_id,
            issued_at=issued_at,
            issued_by=issued_by,
            correlation_id=correlation_id,
            payload=payload.model_dump(mode="json", exclude_none=True),
        )
