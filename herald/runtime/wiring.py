"""The one place that assembles Herald from its settings: stores, broker, domain, roles."""

from __future__ import annotations

import contextlib
import functools
import logging
import secrets
import ssl
import threading
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable, Iterator

import certifi
import httpx
import psycopg
from fastapi import FastAPI
from kafka import KafkaProducer
from psycopg_pool import ConnectionPool

from domain.application import HeraldApplication
from domain.post import PublishPolicy
from domain.wallet.upgrade import claim_earlier_grants
from domain.wallet.upgrade_periods import start_missing_periods
from gateway.app import GatewayDeps, create_app
from gateway import auth, idempotency
from gateway.rate_limits import RateLimits, TokenBuckets
from herald.net.addresses import Resolver, system_resolver
from herald.net.guarded import guarded_client
from herald.net.per_thread import PerThreadClient
from herald.net.safe_fetch import SafeFetcher
from herald.messaging import consumer as consumer_runtime
from herald.storage import db, event_store
from herald.storage.locks import workspace_locks
from herald.messaging import inbox, kafka_io
from herald.messaging.command_handler import CommandHandler
from herald.messaging.consumer import BatchHook, EventConsumer, EventHandler, FailurePolicy
from herald.messaging.dead_letters import DeadLetterStore
from herald.crypto import TokenCipher, load_or_create_key
from herald.runtime.dispatch_loop import dispatch_ticker
from herald.runtime.clock_loop import clock_ticker
from herald.runtime.top_off_loop import top_off_ticker
from herald.storage.embedded import EmbeddedBroker, start_embedded_postgres
from herald.runtime.health import RoleHealth
from herald.messaging.relay import DDL as RELAY_DDL
from herald.messaging.relay import Relay
from herald.settings import Settings
from herald.messaging.consumer import produce_commands
from processors.accounts import authorizations, vault
from processors.accounts.credentials import Credentials, RefreshSettings
from processors.accounts.refresher import refresher_ticker
from processors.generation import configured as generation_configured
from processors.accounts.upgrade import copy_earlier_tokens
from processors.notifications import deliveries, email, preferences, webhooks
from processors.platforms.oauth import OAuthClient
from processors.publishing import dispatcher, publisher
from processors.platforms.base import AdapterRegistry
from processors.platforms import (
    bluesky,
    discord,
    facebook,
    instagram,
    linkedin,
    pinterest,
    reddit,
    telegram,
    threads,
    tiktok,
    youtube,
)
from processors.platforms import x as x_api
from processors.platforms.bluesky import BlueskyAdapter
from processors.platforms.discord import DiscordAdapter
from processors.platforms.facebook import FacebookAdapter
from processors.platforms.instagram import InstagramAdapter
from processors.platforms.linkedin import LinkedInAdapter
from processors.platforms.threads import ThreadsAdapter
from processors.platforms.x import XAdapter
from processors.platforms.mastodon import MastodonAdapter
from processors.platforms.pinterest import PinterestAdapter
from processors.platforms.reddit import RedditAdapter
from processors.platforms.telegram import TelegramAdapter
from processors.platforms.tiktok import TikTokAdapter
from processors.platforms.webhook import WebhookAdapter
from processors.platforms.youtube import YouTubeAdapter
from processors.platforms import sandbox
from processors.platforms.sandbox import SandboxAdapter
from processors.publishing.engine import EngineSettings, PublishEngine
from processors.publishing.publisher import journal_attempts
from processors.settling.settler import settle
from projections import catalogue as read_models
from projections import credit_clock, positions

log = logging.getLogger(__name__)

ROLES = ("gateway", "handler", "relay", "processors", "projections")


# The catalogue ---------------------------------------------------------------------------
# Every events consumer and timed loop of the processors and projections roles is one entry
# here: adding a processor or a read-model consumer is one line, its health, batch size and
# failure policy follow. (A new read model is one entry in projections/catalogue.py.)


@dataclass(frozen=True)
class Consumer:
    """An events-topic consumer: a consumer group of its own, positions of its own."""

    name: str
    role: str
    handler: Callable[["Herald"], EventHandler]
    on_batch: BatchHook | None = None


@dataclass(frozen=True)
class Timed:
    """Timed work on the generic ticker."""

    name: str
    role: str
    loop: Callable[["Herald"], Callable[[threading.Event], None]]


def _read_models(_herald: "Herald") -> EventHandler:
    def apply(conn: psycopg.Connection, event: object) -> list:
        read_models.apply_all(conn, event)
        return []

    return apply


def _dispatcher(herald: "Herald") -> Callable[[threading.Event], None]:
    s = herald.settings
    return dispatch_ticker(herald.pool, herald.producer, s.commands_topic, interval_s=s.dispatch_interval_s,
                           limit=s.dispatch_batch_size, redeliver_after_s=s.dispatch_redeliver_after_s,
                           lead_s=s.publish_lead_s).run


def _token_refresher(herald: "Herald") -> Callable[[threading.Event], None]:
    s = herald.settings
    return refresher_ticker(herald.pool, herald.credentials, interval_s=s.token_refresh_interval_s,
                            ahead_s=s.token_refresh_ahead_s, limit=s.token_refresh_batch_size).run


def _publish_engine(herald: "Herald") -> Callable[[threading.Event], None]:
    s = herald.settings
    settings = EngineSettings(lead_s=s.publish_lead_s, lease_s=s.publish_lease_s,
                              max_in_flight=s.publish_max_in_flight, per_account=s.publish_per_account,
                              per_platform=s.publish_per_platform, budget_share=s.publish_budget_share,
                              rechecks_s=tuple(s.publish_rechecks_s), maintain_every_s=s.publish_maintain_every_s)
    return PublishEngine(pool=herald.pool, producer=herald.producer, commands_topic=s.commands_topic,
                         adapters=herald.adapters(), credentials=herald.credentials, settings=settings).run


def _credit_clock(herald: "Herald") -> Callable[[threading.Event], None]:
    s = herald.settings
    return clock_ticker(herald.pool, herald.producer, s.commands_topic, interval_s=s.clock_interval_s,
                        limit=s.clock_batch_size, redeliver_after_s=s.clock_redeliver_after_s).run


def _slot_top_off(herald: "Herald") -> Callable[[threading.Event], None]:
    s = herald.settings
    return top_off_ticker(herald.pool, herald.producer, s.commands_topic, interval_s=s.top_off_interval_s,
                          page=s.top_off_page_size).run


def _notification_sender(herald: "Herald") -> Callable[[threading.Event], None]:
    s = herald.settings
    http = guarded_client(allowed_networks=s.outbound_allowed_networks, timeout_s=s.webhook_timeout_s,
                          resolve=herald.resolve)
    herald._closers.append(http.close)
    policy = deliveries.RetryPolicy(base_s=s.webhook_retry_base_s, cap_s=s.webhook_retry_cap_s,
                                    give_up_after_s=s.webhook_give_up_after_s, disable_after=s.webhook_disable_after)
    smtp = email.SmtpSettings(host=s.smtp_host, port=s.smtp_port, starttls=s.smtp_starttls, username=s.smtp_username,
                              password=s.smtp_password.get_secret_value(), sender=s.smtp_from,
                              public_base_url=s.public_base_url, timeout_s=s.webhook_timeout_s,
                              ca_file=s.smtp_ca_file) if s.smtp_host else None
    return deliveries.sender_ticker(herald.pool, http, herald.cipher, policy, interval_s=s.notify_interval_s,
                                    limit=s.notify_batch_size, allowed_networks=s.outbound_allowed_networks,
                                    smtp=smtp).run


CATALOGUE: tuple[Consumer | Timed, ...] = (
    Consumer("publisher", "processors", lambda h: journal_attempts),
    Timed("publish-engine", "processors", _publish_engine),
    Consumer("settler", "processors", lambda h: settle),
    Timed("dispatcher", "processors", _dispatcher),
    Timed("token-refresher", "processors", _token_refresher),
    Timed("credit-clock", "processors", _credit_clock),
    Timed("slot-top-off", "processors", _slot_top_off),  # planned slots and series, 28 days ahead (docs/calendar.md)
    Consumer("notifications", "processors", lambda h: functools.partial(
        deliveries.enqueue, digest_window_s=h.settings.notify_digest_window_s)),
    Timed("notification-sender", "processors", _notification_sender),
    # Every read model in one consumer: each event is decoded once, and all read models of a
    # workspace are at the same position (read-your-writes waits on one number).
    Consumer("read-models", "projections", _read_models, on_batch=positions.record),
)

# The heartbeat names of each role's loops, for the role's readiness.
LOOP_NAMES: dict[str, tuple[str, ...]] = {
    "handler": ("handler",),
    "relay": ("relay", "inbox-relay"),
    **{role: tuple(c.name for c in CATALOGUE if c.role == role) for role in ("processors", "projections")},
}
# The events topic is the history every read model is rebuilt from: it keeps everything.
EVENTS_TOPIC_CONFIGS = {"retention.ms": "-1", "cleanup.policy": "delete"}
DDLS = (consumer_runtime.DDL, event_store.DDL, RELAY_DDL, inbox.DDL, *read_models.DDL, dispatcher.DDL,
        publisher.DDL, sandbox.DDL, auth.DDL, idempotency.DDL, vault.DDL, authorizations.DDL, webhooks.DDL,
        deliveries.DDL, preferences.DDL, email.DDL)


@contextlib.contextmanager
def infrastructure(settings: Settings) -> Iterator[tuple[str, str]]:
    """(database URL, Kafka bootstrap): the configured ones, or embedded ones started here."""
    with contextlib.ExitStack() as stack:
        database_url = settings.database_url
        if not database_url:
            server_url = start_embedded_postgres(settings.data_dir / "postgres")
            db.create_database(server_url, "herald", exist_ok=True)
            database_url = db.with_database(server_url, "herald")
            log.info("embedded PostgreSQL at %s", database_url)
        bootstrap = settings.kafka_bootstrap
        if not bootstrap:
            broker = stack.enter_context(EmbeddedBroker(log_dir=settings.data_dir))
            bootstrap = broker.bootstrap
            log.info("embedded Kafka-protocol broker at %s", bootstrap)
        yield database_url, bootstrap


@dataclass
class Herald:
    settings: Settings
    database_url: str
    kafka_bootstrap: str
    _closers: list[Callable[[], None]] = field(default_factory=list)
    # How outgoing calls to client-supplied hosts resolve names (the SSRF guard checks the
    # answers); tests replace it to play a rebinding DNS.
    resolve: Resolver = system_resolver

    @cached_property
    def cipher(self) -> TokenCipher:
        return load_or_create_key(self.settings.token_key, self.settings.data_dir, self.settings.token_keys_retired)

    @cached_property
    def credentials(self) -> Credentials:
        s = self.settings
        # Token endpoints may be an account's instance (client-supplied): guarded at each connection.
        http = guarded_client(allowed_networks=s.outbound_allowed_networks, timeout_s=s.platform_timeout_s,
                              resolve=self.resolve)
        self._closers.append(http.close)
        clients = {platform: OAuthClient(c.client_id, c.client_secret.get_secret_value(), c.auth_method)
                   for platform, c in s.oauth_clients.items()}
        return Credentials(pool=self.pool, cipher=self.cipher, adapters=self.adapters, clients=clients, http=http,
                           send_commands=lambda commands: produce_commands(self.producer, s.commands_topic, commands),
                           settings=RefreshSettings(margin_s=s.token_refresh_margin_s, timeout_s=s.platform_timeout_s))

    @cached_property
    def app(self) -> HeraldApplication:
        policy = PublishPolicy(tuple(self.settings.retry_delays_s), self.settings.missed_window_s,
                               self.settings.scheduling_horizon_days * 86400.0)
        env = {**db.eventsourcing_env(self.database_url), "APPLICATION_RECORDER_TOPIC": event_store.RECORDER_TOPIC}
        return HeraldApplication(env, policy=policy,
                                 versions=event_store.versions_in(self.pool), serialise=workspace_locks(self.lock_pool),
                                 recorded_at=event_store.recorded_at_in(self.pool))

    @cached_property
    def pool(self) -> ConnectionPool:
        pool = db.connection_pool(self.database_url, max_size=20)
        self._closers.append(pool.close)
        return pool

    @cached_property
    def lock_pool(self) -> ConnectionPool:
        """Connections that hold workspace locks during a decision. Apart from ``pool``: a decision
        holding its lock connection also takes one from ``pool`` (the version check), and must not
        wait for it behind other decisions that each hold one while waiting for a lock."""
        pool = db.connection_pool(self.database_url, max_size=self.settings.lock_pool_size)
        self._closers.append(pool.close)
        return pool

    @cached_property
    def idempotent(self) -> bool:
        return kafka_io.use_idempotence(self.settings.producer_idempotence, self.kafka_bootstrap)

    @cached_property
    def producer(self) -> KafkaProducer:
        producer = kafka_io.make_producer(self.kafka_bootstrap, idempotent=self.idempotent)
        self._closers.append(lambda: producer.close(timeout=5))
        return producer

    @cached_property
    def admin_api_key(self) -> str:
        if self.settings.admin_api_key:
            return self.settings.admin_api_key
        path = self.settings.data_dir / "admin.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(32))
            path.chmod(0o600)
        return path.read_text().strip()

    def prepare(self) -> set[str]:
        """Create tables and topics; returns the topics that were new."""
        with db.schema_lock(self.database_url):
            self.app  # noqa: B018 - constructing the application creates the event store tables
            db.apply_ddl(self.database_url, *DDLS)
            if event_store.run_upgrade_once(self.database_url, "grant-claims-v1",
                                            lambda: claim_earlier_grants(self.app)):
                log.info("upgrade: claimed the grant ids recorded before grant claims")
            if event_store.run_upgrade_once(self.database_url, "credentials-store-v1",
                                            lambda: copy_earlier_tokens(self.app, self.pool)):
                log.info("upgrade: copied the sealed tokens of earlier connected accounts into the credentials store")
            if event_store.run_upgrade_once(self.database_url, "credit-clock-items-v1", self._backfill_credit_clock):
                log.info("upgrade: the credit clock's items for grants made before it")
            if event_store.run_upgrade_once(self.database_url, "credit-periods-v1",
                                            lambda: start_missing_periods(self.app)):
                log.info("upgrade: a credit period for the workspaces opened before periods")
            event_store.run_upgrade_once(self.database_url, "inbox-secrets-scrubbed-v1",
                                         lambda: inbox.scrub_secrets(self.database_url))
        return self.ensure_topics()

    def _backfill_credit_clock(self) -> None:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            credit_clock.backfill(conn)

    def ensure_topics(self) -> set[str]:
        s = self.settings
        configs = {s.events_topic: EVENTS_TOPIC_CONFIGS}
        created = kafka_io.ensure_topics(
            self.kafka_bootstrap,
            {s.commands_topic: s.topic_partitions, s.events_topic: s.topic_partitions, s.dlq_topic: 1},
            replication=s.topic_replication, configs=configs,
        )
        self.check_topic_configs(configs)
        return created

    def check_topic_configs(self, configs: dict[str, dict[str, str]]) -> list[str]:
        """Warns (and returns) where existing topics disagree with the configs Herald relies on."""
        try:
            disagreements = kafka_io.topic_config_disagreements(self.kafka_bootstrap, configs)
        except Exception as error:  # a broker that cannot describe configs must not stop Herald
            disagreements = [f"topic configs could not be checked: {type(error).__name__}: {error}"]
        for disagreement in disagreements:
            log.warning("topic configuration: %s; the events topic must keep every event (docs/operations.md)",
                        disagreement)
        return disagreements

    def close(self) -> None:
        while self._closers:
            with contextlib.suppress(Exception):
                self._closers.pop()()

    # Roles -----------------------------------------------------------------------------

    def gateway(self) -> FastAPI:
        return create_app(
            GatewayDeps(
                app=self.app,
                pool=self.pool,
                submit_command=lambda command: inbox.accept(self.pool, command),
                admin_api_key=self.admin_api_key,
                ready_checks={"postgres": self._check_postgres, "kafka": self._check_kafka},
                dead_letters=DeadLetterStore(self.kafka_bootstrap, self.settings.dlq_topic, lambda: self.producer),
                read_wait_s=self.settings.read_wait_s,
                credentials=self.credentials,
                max_body_bytes=self.settings.http_max_body_bytes,
                rate_limits=self._rate_limits(),
                failed_auth=(TokenBuckets(self.settings.rate_failed_auth_per_s, self.settings.rate_failed_auth_burst)
                             if self.settings.rate_failed_auth_per_s else None),
                outbound_allowed_networks=tuple(self.settings.outbound_allowed_networks),
                generator=lambda: generation_configured.generator(self.settings),
            )
        )

    def _rate_limits(self) -> RateLimits | None:
        s = self.settings
        if not s.rate_key_per_s or not s.rate_workspace_per_s:
            return None
        return RateLimits.of(s.rate_key_per_s, s.rate_key_burst, s.rate_workspace_per_s, s.rate_workspace_burst)

    def relay(self) -> Relay:
        relay = Relay(
            app=self.app,
            pool=self.pool,
            make_producer=lambda: kafka_io.make_producer(self.kafka_bootstrap, idempotent=self.idempotent),
            topic=self.settings.events_topic,
            batch_size=self.settings.relay_batch_size,
            poll_interval_s=self.settings.relay_poll_interval_s,
            after_outage=lambda: self.resume_relays(self.ensure_topics()),
            cluster=kafka_io.ClusterWatch(self.kafka_bootstrap),
        )
        self._closers.append(relay.close)  # its producer and metadata client connect on first use
        return relay

    def inbox_relay(self) -> inbox.InboxRelay:
        return inbox.InboxRelay(
            pool=self.pool,
            producer=self.producer,
            topic=self.settings.commands_topic,
            batch_size=self.settings.relay_batch_size,
            poll_interval_s=self.settings.relay_poll_interval_s,
        )

    def resume_relays(self, new_topics: set[str]) -> None:
        """Before relaying: republish whatever a new or emptied topic lost."""
        s = self.settings
        self.relay().resume(
            topic_is_new=s.events_topic in new_topics,
            earliest_in_topic=lambda: kafka_io.earliest_event_position(self.kafka_bootstrap, s.events_topic),
        )
        commands_lost = s.commands_topic in new_topics or not kafka_io.topic_has_messages(
            self.kafka_bootstrap, s.commands_topic
        )
        self.inbox_relay().resume(topic_is_new=commands_lost)

    def command_handler(self) -> CommandHandler:
        s = self.settings
        return CommandHandler(
            app=self.app,
            consumer=kafka_io.make_consumer(self.kafka_bootstrap, f"{s.consumer_group_prefix}handler", []),
            producer=self.producer,
            topic=s.commands_topic,
            dlq_topic=s.dlq_topic,
            poll_timeout_ms=s.poll_timeout_ms,
            max_records=s.batch_size_for("handler"),
            on_decided=lambda commands: inbox.mark_decided(self.pool, commands),
            pool=self.pool,
            failure_policy=FailurePolicy.from_settings(s),
        )

    def event_consumer(self, name: str, handler: EventHandler, on_batch: BatchHook | None = None) -> EventConsumer:
        s = self.settings
        return EventConsumer(
            name=name,
            topic=s.events_topic,
            commands_topic=s.commands_topic,
            dlq_topic=s.dlq_topic,
            consumer=kafka_io.make_consumer(self.kafka_bootstrap, f"{s.consumer_group_prefix}{name}", []),
            producer=self.producer,
            pool=self.pool,
            handler=handler,
            poll_timeout_ms=s.poll_timeout_ms,
            max_records=s.batch_size_for(name),
            on_batch=on_batch,
            failure_policy=FailurePolicy.from_settings(s),
        )

    def adapters(self) -> AdapterRegistry:
        s = self.settings
        # Adapters call an account's instance_url (client-supplied): guarded at each connection.
        # A client per publishing thread, sharing one TLS context (herald/net/per_thread.py).
        tls = ssl.create_default_context(cafile=certifi.where())
        http = PerThreadClient(lambda: guarded_client(
            allowed_networks=s.outbound_allowed_networks, timeout_s=s.platform_timeout_s,
            limits=httpx.Limits(max_keepalive_connections=8), resolve=self.resolve, verify=tls))
        self._closers.append(http.close)
        media = SafeFetcher(timeout_s=s.platform_timeout_s, max_bytes=s.media_max_bytes,
                            allowed_networks=s.outbound_allowed_networks, resolve=self.resolve)
        self._closers.append(media.close)
        urls, timeout = s.platform_api_urls, s.platform_timeout_s

        def api(platform: str, public: str) -> dict[str, object]:
            return {"base_url": urls.get(platform, public), "timeout_s": timeout}

        # The generic webhook calls a URL the client gave: its own client, each POST pinned to the address the
        # guard checked (processors/platforms/webhook.py).
        webhook = WebhookAdapter(timeout_s=timeout, guard=media)
        self._closers.append(webhook.http.close)

        # Every adapter Herald runs, registered here once (the engine, the gateway's GET /v1/platforms and
        # its connect checks, and token refresh all read this registry).
        return AdapterRegistry(
            [
                SandboxAdapter(self.pool),
                MastodonAdapter(http, default_base_url=s.mastodon_base_url, timeout_s=timeout, media=media),
                FacebookAdapter(http, **api("facebook", facebook.GRAPH_URL)),
                InstagramAdapter(http, **api("instagram", instagram.GRAPH_URL)),
                ThreadsAdapter(http, **api("threads", threads.THREADS_URL)),
                LinkedInAdapter(http, **api("linkedin", linkedin.API_URL), media=media),
                XAdapter(http, **api("x", x_api.API_URL), media=media),
                BlueskyAdapter(http, **api("bluesky", bluesky.DEFAULT_PDS), media=media),
                PinterestAdapter(http, **api("pinterest", pinterest.DEFAULT_BASE), media=media),
                RedditAdapter(http, **api("reddit", reddit.DEFAULT_BASE), media=media,
                              user_agent=s.reddit_user_agent or reddit.DEFAULT_USER_AGENT),
                YouTubeAdapter(http, **api("youtube", youtube.DEFAULT_BASE), media=media),
                TikTokAdapter(http, **api("tiktok", tiktok.DEFAULT_BASE), media=media),
                DiscordAdapter(http, **api("discord", discord.DEFAULT_BASE), media=media),
                TelegramAdapter(http, **api("telegram", telegram.DEFAULT_BASE), media=media),
                webhook,
            ]
        )

    def role_health(self, roles: list[str], threads: list[threading.Thread]) -> RoleHealth:
        return RoleHealth(
            loops=[name for role in roles for name in LOOP_NAMES.get(role, ())],
            threads=threads,
            checks={"postgres": self._check_postgres, "kafka": self._check_kafka},
            stale_after_s=self.settings.health_stale_after_s,
        )

    def loops(self, role: str) -> list[Callable[[threading.Event], None]]:
        """The long-running loops one role consists of; each runs until the stop event is set."""
        if role == "handler":
            return [self.command_handler().run]
        if role == "relay":
            return [self.relay().run, self.inbox_relay().run]
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
        return [self.event_consumer(c.name, c.handler(self), on_batch=c.on_batch).run
                if isinstance(c, Consumer) else c.loop(self)
                for c in CATALOGUE if c.role == role]

    def _check_postgres(self) -> None:
        with self.pool.connection(timeout=2) as conn:
            conn.execute("SELECT 1")

    def _check_kafka(self) -> None:
        kafka_io.check_broker(self.kafka_bootstrap)


def run_loops(loops: list[Callable[[threading.Event], None]], stop: threading.Event) -> list[threading.Thread]:
    """Start each loop in its own thread; a loop that dies stops the others (fail fast)."""

    def guarded(loop: Callable[[threading.Event], None]) -> None:
        try:
            loop(stop)
        except Exception:
            log.exception("a role loop died; stopping Herald")
            stop.set()

    threads = [threading.Thread(target=guarded, args=(loop,), daemon=True, name=getattr(loop, "__qualname__", "loop"))
               for loop in loops]
    for thread in threads:
        thread.start()
    return threads
