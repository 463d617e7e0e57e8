"""Every setting Herald reads, in one place (environment prefix ``HERALD_``)."""

from __future__ import annotations

import json
from pathlib import Path

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class OAuthClientSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    client_id: str = Field(min_length=1)
    client_secret: SecretStr = SecretStr("")
    auth_method: Literal["client_secret_post", "client_secret_basic"] = "client_secret_post"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HERALD_", env_file=".env", extra="ignore")

    # Storage. Empty database_url → embedded PostgreSQL under data_dir.
    database_url: str = Field("", description="postgresql:// URL; empty starts the embedded server")
    data_dir: Path = Field(Path(".herald"), description="where embedded services keep their files")

    # Kafka. Empty bootstrap → embedded Tansu broker on a free local port.
    kafka_bootstrap: str = Field("", description="host:port[,host:port]; empty starts the embedded broker")
    topic_prefix: str = Field("herald.", description="prefix of every topic name")
    topic_partitions: int = Field(6, ge=1)
    topic_replication: int = Field(1, ge=1)
    producer_idempotence: bool | None = Field(
        None, description="unset: on when the broker grants producer ids (Apache Kafka does, Tansu 0.6 does not)")
    consumer_group_prefix: str = Field("herald-", description="prefix of every consumer group id")

    # PostgreSQL connections held by decisions waiting for, or holding, a workspace lock.
    lock_pool_size: int = Field(20, ge=1)

    # Consumer runtime.
    batch_max_records: int = Field(500, ge=1)
    poll_timeout_ms: int = Field(200, ge=1)
    consumer_batch_sizes: dict[str, PositiveInt] = Field(
        default_factory=dict,
        description='max records per poll by consumer name (handler, publisher, settler, projection-queue, ...),'
                    ' JSON, e.g. {"publisher": 50}; a consumer not named uses batch_max_records')
    # Failure policy (every consumer, the handler included): a batch that raises is retried this many
    # times, then applied message by message, parking those that still fail on the DLQ; a database or
    # broker failure is retried without end, waiting a growing delay between tries.
    consumer_retries: int = Field(3, ge=0, description="retries of a failing batch before it is applied message by message")
    consumer_backoff_initial_s: float = Field(0.5, gt=0, description="first delay after a failed batch; it doubles")
    consumer_backoff_max_s: float = Field(10.0, gt=0, description="the longest delay between retries")

    # Relay.
    relay_batch_size: int = Field(500, ge=1)
    relay_poll_interval_s: float = Field(0.2, gt=0)

    # Dispatcher.
    dispatch_interval_s: float = Field(0.5, gt=0)
    dispatch_batch_size: int = Field(100, ge=1)
    dispatch_redeliver_after_s: float = Field(30.0, gt=0, description="reissue a start-attempt not answered by then")
    clock_interval_s: float = Field(1.0, gt=0, description="how often the credit clock looks for due items")
    clock_batch_size: int = Field(1000, ge=1)
    clock_redeliver_after_s: float = Field(60.0, gt=0, description="resend a clock command whose item is still there")
    missed_window_s: float = Field(3600.0, gt=0, description="a destination due longer ago than this is marked missed")
    top_off_interval_s: float = Field(3600.0, gt=0, description="how often the slot top-off looks (each workspace "
                                      "is topped off once per UTC day: the command id is per day)")
    top_off_page_size: int = Field(500, ge=1, description="workspaces read per page by the slot top-off")

    # Notifications delivered (processors/notifications, docs/notifications.md).
    notify_interval_s: float = Field(1.0, gt=0, description="how often the notification sender looks for due deliveries")
    notify_batch_size: int = Field(50, ge=1, description="deliveries one tick sends at most")
    notify_digest_window_s: float = Field(60.0, ge=0, description="post_failed/post_skipped notices raised within"
                                          " this window make one digest delivery per target; 0: one each")
    webhook_timeout_s: float = Field(10.0, gt=0, description="a webhook delivery not answered by then is retried")
    webhook_retry_base_s: float = Field(30.0, gt=0, description="first retry delay; doubles per attempt, full jitter")
    webhook_retry_cap_s: float = Field(3600.0, gt=0, description="longest delay between two attempts")
    webhook_give_up_after_s: float = Field(86400.0, gt=0, description="a delivery not sent by then is given up")
    webhook_disable_after: int = Field(15, ge=1, description="consecutive failures that disable an endpoint")
    smtp_host: str = Field("", description="SMTP server for notice emails; empty: email deliveries wait")
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_starttls: bool = Field(True, description="STARTTLS before login and sending")
    smtp_ca_file: str = Field("", description="a CA (PEM) to trust for STARTTLS instead of the system CAs")
    smtp_username: str = Field("", description="login when set")
    smtp_password: SecretStr = Field(SecretStr(""))
    smtp_from: str = Field("herald@localhost", description="the From of notice emails")
    public_base_url: str = Field("http://localhost:8000", description="the gateway's public URL, for unsubscribe links")

    # Publishing.
    retry_delays_s: list[float] = Field([60.0, 300.0, 900.0], description="delay before each retry (jittered ±20%)")
    platform_timeout_s: float = Field(10.0, gt=0)
    scheduling_horizon_days: float = Field(366.0, gt=0, description="how far ahead a post may be due")
    media_max_bytes: int = Field(16 * 1024 * 1024, ge=1, description="largest media file fetched from a media_url")
    outbound_allowed_networks: list[str] = Field(
        default_factory=list, description="networks Herald may call although not public (SSRF guard: media_urls, "
        'platform instance URLs), JSON, e.g. ["10.1.2.0/24"]; empty: public addresses only')
    publish_lead_s: float = Field(2.0, ge=0, description="attempts start this long before their due time, so the"
                                  " engine holds them and calls the platform on time; a post cannot be cancelled then")
    publish_lease_s: float = Field(15.0, gt=0, description="how long a dead engine's attempts stay claimed before"
                                   " another engine takes them over (reconciling those it had in flight)")
    publish_max_in_flight: int = Field(200, ge=1, description="platform calls in flight per process")
    publish_per_account: int = Field(4, ge=1, description="platform calls in flight per social account")
    publish_per_platform: int = Field(100, ge=1, description="platform calls in flight per platform, per process")
    publish_rechecks_s: list[float] = Field([60.0, 300.0, 900.0], description="after an unknown outcome, ask the"
                                            " platform again after these delays; then an admin resolves it")
    publish_maintain_every_s: float = Field(5.0, gt=0, description="lease renewal and take-over of a dead"
                                            " engine's attempts, this often")
    publish_budget_share: float = Field(1.0, gt=0, le=1, description="share of each platform's documented rate"
                                        " budget one process may spend: 1/N with N publishing processes")
    mastodon_base_url: str = Field("", description="default Mastodon instance when an account names none")
    reddit_user_agent: str = Field(
        "", description="the User-Agent Reddit's API rules ask of every client, <platform>:<app ID>:<version> (by"
        " /u/<reddit username>); empty: processors/platforms/reddit.py's default, give your own")
    platform_api_urls: dict[str, str] = Field(
        default_factory=dict, description='platform → API base URL instead of the public one, JSON, e.g. '
        '{"facebook": "http://127.0.0.1:8081/v23.0"} (tests and benches point adapters at fakes)')

    # Social-account tokens (processors/accounts): refreshed just in time, on a 401, and ahead of expiry.
    oauth_clients: dict[str, OAuthClientSettings] = Field(
        default_factory=dict, description='Herald\'s OAuth client per platform, for the refresh-token grant, JSON,'
        ' e.g. {"mastodon": {"client_id": "…", "client_secret": "…"}}; a platform without one is never refreshed')
    token_refresh_margin_s: float = Field(300.0, ge=0, description="refresh before a call when the token expires"
                                          " within this")
    token_refresh_ahead_s: float = Field(900.0, ge=0, description="the refresher renews tokens expiring within this")
    token_refresh_interval_s: float = Field(30.0, gt=0, description="how often the refresher looks")
    token_refresh_batch_size: int = Field(100, ge=1, description="tokens the refresher renews per tick at most")

    # Gateway.
    metrics_port: int = Field(9464, ge=0, description="/metrics, /healthz, /readyz port of roles without the gateway; 0 disables")
    health_stale_after_s: float = Field(60.0, gt=0, description="a loop without a completed iteration this long makes /readyz fail")
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    admin_api_key: str = Field("", description="admin key; empty → one is generated and printed at start")
    read_wait_s: float = Field(10.0, gt=0, description="longest a GET with min_position waits for the read models")
    # Rate limits, per gateway process (gateway/rate_limits.py); either rate 0 turns both off.
    rate_key_per_s: float = Field(50.0, ge=0, description="requests a second one API key may make on average")
    rate_key_burst: int = Field(100, ge=1, description="requests one API key may make at once")
    rate_workspace_per_s: float = Field(100.0, ge=0, description="requests a second to one workspace, all keys")
    rate_workspace_burst: int = Field(200, ge=1)
    rate_failed_auth_per_s: float = Field(1.0, ge=0, description="requests failing authentication a second one "
                                          "client address may make on average (then 429, any key); 0 turns it off")
    rate_failed_auth_burst: int = Field(30, ge=1, description="requests failing authentication one client address "
                                        "may make at once")
    http_max_body_bytes: int = Field(1024 * 1024, ge=1024, description="larger request bodies answer 413")

    # AI generation (processors/generation, docs/generation.md). "offline" needs no key.
    generation_provider: Literal["offline", "openai", "anthropic"] = Field(
        "offline", description="offline (deterministic templates), openai (any OpenAI-compatible Chat Completions"
        " server: OpenAI, xAI, vLLM, Ollama, LM Studio) or anthropic (Messages API)")
    generation_base_url: str = Field("", description="e.g. https://api.openai.com/v1, http://localhost:11434/v1,"
                                     " https://api.anthropic.com; empty: the provider's public API")
    generation_model: str = Field("", description="the model name the provider knows, e.g. gpt-4o-mini")
    generation_api_key: SecretStr = Field(SecretStr(""), description="the provider's key; never logged or stored")
    generation_json_schema: bool = Field(True, description="openai: ask for response_format json_schema (false:"
                                         " json_object, for servers without Structured Outputs)")
    generation_timeout_s: float = Field(30.0, gt=0, description="one provider call, connect to last byte")
    generation_attempts: int = Field(3, ge=1, description="calls per request at most when rate limited or failing")
    generation_max_tokens: int = Field(1024, ge=16, description="output tokens a generation may use")

    # Secrets. 32-byte key, base64; empty → generated once and kept in data_dir.
    token_key: str = Field("", description="AES-256-GCM key (base64) for social-account tokens")
    token_keys_retired: list[str] = Field(default_factory=list,
                                          description="earlier token keys (base64, JSON list): they still unseal")

    def environment(self) -> dict[str, str]:
        """The HERALD_* variables that make a child `herald <role>` process share this
        configuration: the same database, broker, topics, consumer groups, data dir and keys."""
        return {
            "HERALD_DATABASE_URL": self.database_url,
            "HERALD_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "HERALD_TOPIC_PREFIX": self.topic_prefix,
            "HERALD_TOPIC_PARTITIONS": str(self.topic_partitions),
            "HERALD_CONSUMER_GROUP_PREFIX": self.consumer_group_prefix,
            "HERALD_DATA_DIR": str(self.data_dir),
            "HERALD_TOKEN_KEY": self.token_key,
            "HERALD_TOKEN_KEYS_RETIRED": json.dumps(self.token_keys_retired),
            "HERALD_OUTBOUND_ALLOWED_NETWORKS": json.dumps(self.outbound_allowed_networks),
            "HERALD_ADMIN_API_KEY": self.admin_api_key,
            "HERALD_GENERATION_PROVIDER": self.generation_provider,
            "HERALD_GENERATION_BASE_URL": self.generation_base_url,
            "HERALD_GENERATION_MODEL": self.generation_model,
            "HERALD_GENERATION_API_KEY": self.generation_api_key.get_secret_value(),
            "HERALD_OAUTH_CLIENTS": json.dumps({p: {**c.model_dump(), "client_secret": c.client_secret.get_secret_value()}
                                                for p, c in self.oauth_clients.items()}),
        }

    def batch_size_for(self, consumer: str) -> int:
        """Max records per poll for the consumer of that name."""
        return self.consumer_batch_sizes.get(consumer, self.batch_max_records)

    @property
    def commands_topic(self) -> str:
        return f"{self.topic_prefix}commands"

    @property
    def events_topic(self) -> str:
        return f"{self.topic_prefix}events"

    @property
    def dlq_topic(self) -> str:
        return f"{self.topic_prefix}dlq"
