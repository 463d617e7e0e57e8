"""One failure policy for every consumer, on the real broker and PostgreSQL: a command whose
deciding raises is dead-lettered with its cause after the retries, the handler's position moves
past it and the commands after it are decided; an events-consumer handler raising for one event
parks that event and applies the others (a flaky one is retried, not parked); a database outage
is waited out and retried, never dead-lettered."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import psycopg
import pytest
from kafka import KafkaConsumer, TopicPartition

from domain.account import SocialAccount
from domain.application import HeraldApplication
from domain.wallet import Wallet
from herald.messaging import kafka_io
from herald.messaging.command_handler import CommandHandler
from herald.messaging.consumer import EventConsumer, FailurePolicy, load_positions, produce_commands
from herald.messaging.dead_letters import list_dead_letters
from herald.runtime import metrics
from herald.runtime.wiring import Herald
from herald.storage import db, event_store
from schemas import commands as cmd

pytestmark = pytest.mark.integration


@pytest.fixture
def herald(settings):
    settings = settings.model_copy(update={"consumer_retries": 3, "consumer_backoff_initial_s": 0.05,
                                           "consumer_backoff_max_s": 0.2})
    herald = Herald(settings, settings.database_url, settings.kafka_bootstrap)
    herald.resume_relays(herald.prepare())
    with herald.pool.connection() as conn:
        conn.execute("CREATE TABLE probe_effects (event_id text NOT NULL)")
        conn.execute("CREATE TABLE probe_batches (event_id text NOT NULL)")
    yield herald
    herald.close()


def _envelope(ws: str, command_id: str, payload: cmd.Payload) -> cmd.CommandEnvelope:
    return cmd.CommandEnvelope.wrap(payload, command_id=command_id, workspace_id=ws, issued_by="t",
                                    issued_at=datetime.now(UTC))


def _failures(name: str) -> float:
    return metrics.FAILURES.labels(name)._value.get()


def _dead_letters(name: str) -> float:
    return metrics.DEAD_LETTERS.labels(name)._value.get()


def _run_until(loop, done, timeout_s: float = 60) -> None:
    stop = threading.Event()
    failed: list[BaseException] = []

    def guarded() -> None:
        try:
            loop(stop)
        except BaseException as error:  # noqa: BLE001 - reported below
            failed.append(error)

    thread = threading.Thread(target=guarded, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and not done():
            assert thread.is_alive(), f"the loop died: {failed}"
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join(timeout=20)
    assert not failed, failed
    assert done(), "not there in time"


def _app(herald: Herald, looked_up: list[str]) -> HeraldApplication:
    """The application as wiring builds it, except that loading the social account ``acct-bad``
    fails (an exception, not a rejection); ``looked_up`` collects the accounts looked up."""
    env = {**db.eventsourcing_env(herald.database_url), "APPLICATION_RECORDER_TOPIC": event_store.RECORDER_TOPIC}

    class Poisoned(HeraldApplication):
        name = "herald"  # eventsourcing names tables after the application

        def find(self, kind, herald_id):
            if kind is SocialAccount:
                looked_up.append(herald_id)
                if herald_id == "acct-bad":
                    raise RuntimeError("token key unavailable")
            return super().find(kind, herald_id)

    return Poisoned(env, versions=event_store.versions_in(herald.pool))


def _handler(herald: Herald, app: HeraldApplication, name: str, decided: list[str]) -> CommandHandler:
    s = herald.settings
    return CommandHandler(
        app=app,
        consumer=kafka_io.make_consumer(herald.kafka_bootstrap, f"{s.consumer_group_prefix}{name}", []),
        producer=herald.producer,
        topic=s.commands_topic,
        dlq_topic=s.dlq_topic,
        pool=herald.pool,
        name=name,
        on_decided=lambda commands: decided.extend(c.command_id for c in commands),
        failure_policy=FailurePolicy.from_settings(s),
    )


def test_a_command_whose_deciding_raises_is_dead_lettered_and_the_next_ones_are_decided(herald):
    s = herald.settings
    sealed: list[str] = []  # the accounts looked up; loading "acct-bad" raises

    ws = "ws-poison"
    commands = [
        _envelope(ws, "open", cmd.OpenWorkspace(name="P", tier="pro")),
        _envelope(ws, "grant-5", cmd.GrantCredits(amount=5)),
        _envelope(ws, "connect-bad", cmd.ConnectSocialAccount(social_account_id="acct-bad", platform="sandbox",
                                                               handle="bad")),
        _envelope(ws, "grant-7", cmd.GrantCredits(amount=7)),
        _envelope(ws, "connect-good", cmd.ConnectSocialAccount(social_account_id="acct-good", platform="sandbox",
                                                                handle="good")),
        _envelope(ws, "open-again", cmd.OpenWorkspace(name="P")),  # rejected: a decision, not a failure
    ]
    produce_commands(herald.producer, s.commands_topic, commands)
    name = "handler-fp"
    failures, parked = _failures(name), _dead_letters(name)
    decided: list[str] = []
    handler = _handler(herald, _app(herald, sealed), name, decided)
    _run_until(handler.run, lambda: len(decided) >= 5 and _dead_letters(name) > parked)

    assert decided == ["open", "grant-5", "grant-7", "connect-good", "open-again"]
    assert herald.app.find(Wallet, ws).available == 12
    assert herald.app.find(SocialAccount, "acct-good") is not None
    assert herald.app.find(SocialAccount, "acct-bad") is None
    assert sealed.count("acct-bad") == s.consumer_retries + 2, "the batch tried 1 + retries times, then the command alone"
    assert _failures(name) - failures == s.consumer_retries + 1
    assert _dead_letters(name) - parked == 1

    (letter,) = list_dead_letters(s.kafka_bootstrap, s.dlq_topic)
    assert letter.consumer == name
    assert letter.cause == "RuntimeError: token key unavailable"
    assert letter.source_topic == s.commands_topic and letter.source_offset == 2
    assert cmd.CommandEnvelope.model_validate_json(letter.value).command_id == "connect-bad"

    # The position moved past the parked command, in the event store's transaction: a handler
    # resuming from it decides only what comes after.
    with herald.pool.connection() as conn:
        positions = event_store.load_command_positions(conn, name, s.commands_topic)
    assert [p.offset for p in positions.values()] == [len(commands) - 1]
    produce_commands(herald.producer, s.commands_topic, [_envelope(ws, "grant-1", cmd.GrantCredits(amount=1))])
    again: list[str] = []
    _run_until(_handler(herald, herald.app, name, again).run, lambda: again == ["grant-1"])
    assert herald.app.find(Wallet, ws).available == 13


def _publish_events(herald: Herald) -> int:
    """Decide commands for three workspaces and relay their events; returns how many there are."""
    for ws in ("ws-1", "ws-2", "ws-3"):
        for n, payload in enumerate([cmd.OpenWorkspace(name=ws), cmd.GrantCredits(amount=5),
                                     cmd.GrantCredits(amount=13 if ws == "ws-2" else 6),
                                     cmd.GrantCredits(amount=21 if ws == "ws-3" else 7)]):
            herald.app.handle(_envelope(ws, f"{ws}-{n}", payload))
    relay = herald.relay()
    while relay.relay_once():
        pass
    return len(herald.app.recorder.select_notifications(start=1, limit=10_000))


def _effects(herald: Herald, table: str = "probe_effects") -> list[str]:
    with herald.pool.connection() as conn:
        return [row[0] for row in conn.execute(f"SELECT event_id FROM {table}").fetchall()]  # noqa: S608


def _amount(event) -> int | None:
    return event.data.get("amount") if event.type == "herald.wallet.credits_granted.v1" else None


def _consumer(herald: Herald, name: str, handler, on_batch=None) -> EventConsumer:
    s = herald.settings
    return EventConsumer(
        name=name, topic=s.events_topic, commands_topic=s.commands_topic, dlq_topic=s.dlq_topic,
        consumer=kafka_io.make_consumer(herald.kafka_bootstrap, f"{s.consumer_group_prefix}{name}", []),
        producer=herald.producer, pool=herald.pool, handler=handler, poll_timeout_ms=s.poll_timeout_ms,
        max_records=s.batch_max_records, on_batch=on_batch, failure_policy=FailurePolicy.from_settings(s),
    )


def test_an_event_whose_handler_raises_is_dead_lettered_and_the_others_applied(herald):
    s = herald.settings
    total = _publish_events(herald)
    flaky_tries: list[int] = []
    poison_tries: list[int] = []

    def handler(conn, event):
        if _amount(event) == 13:
            poison_tries.append(1)
            raise ValueError("no such ledger for 13")
        if _amount(event) == 21 and len(flaky_tries) < 2:
            flaky_tries.append(1)
            raise TimeoutError("flaky downstream")
        conn.execute("INSERT INTO probe_effects VALUES (%s)", (event.id,))
        return []

    def on_batch(conn, events):
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO probe_batches VALUES (%s)", [(e.id,) for e in events])

    name = "probe-fp"
    parked = _dead_letters(name)
    consumer = _consumer(herald, name, handler, on_batch)
    _run_until(consumer.run, lambda: len(_effects(herald)) >= total - 1 and _dead_letters(name) > parked)

    effects = _effects(herald)
    assert len(effects) == len(set(effects)) == total - 1, "every other event applied, once"
    assert sorted(_effects(herald, "probe_batches")) == sorted(effects), \
        "on_batch saw, in the batch's transaction, exactly the events applied"
    assert len(flaky_tries) == 2, "the flaky event failed twice, then was applied on a retry"
    (letter,) = list_dead_letters(s.kafka_bootstrap, s.dlq_topic)
    assert letter.consumer == name and letter.cause == "ValueError: no such ledger for 13"
    assert letter.source_topic == s.events_topic
    assert '"amount":13' in letter.value.replace(" ", "")
    assert _dead_letters(name) - parked == 1

    # The position moved past the parked event: every partition's stored offset is its last record.
    with herald.pool.connection() as conn:
        stored = {p: pos.offset for p, pos in load_positions(conn, name, s.events_topic).items()}
    assert stored == _last_offsets(s.kafka_bootstrap, s.events_topic)


def _last_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    reader = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                           auto_offset_reset="earliest")
    try:
        partitions = [TopicPartition(topic, p) for p in reader.partitions_for_topic(topic) or ()]
        reader.assign(partitions)
        reader.seek_to_beginning(*partitions)
        last: dict[int, int] = {}
        idle = time.monotonic()
        while time.monotonic() - idle < 1.0:
            for tp, records in reader.poll(timeout_ms=200).items():
                last[tp.partition] = records[-1].offset
                idle = time.monotonic()
        return last
    finally:
        reader.close()


class Outage:
    """The test database refuses connections and every connection to it is cut, for ``seconds``."""

    def __init__(self, pg_url: str, dbname: str, seconds: float) -> None:
        self.pg_url, self.dbname, self.seconds = pg_url, dbname, seconds
        self.started = threading.Event()
        self.over = threading.Event()

    def _admin(self, sql: str) -> None:
        with psycopg.connect(self.pg_url, autocommit=True) as admin:
            admin.execute(sql)

    def start(self) -> None:
        self.started.set()
        self._admin(f'ALTER DATABASE "{self.dbname}" ALLOW_CONNECTIONS false')
        with psycopg.connect(self.pg_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                          (self.dbname,))
        threading.Timer(self.seconds, self.end).start()

    def end(self) -> None:
        self._admin(f'ALTER DATABASE "{self.dbname}" ALLOW_CONNECTIONS true')
        self.over.set()


def test_a_database_outage_under_the_events_consumer_is_retried_not_dead_lettered(herald, pg_url):
    s = herald.settings
    total = _publish_events(herald)
    outage = Outage(pg_url, db.parse_database_url(s.database_url)["dbname"], seconds=2.0)

    def handler(conn, event):
        if not outage.started.is_set():
            outage.start()  # mid-batch: this very connection is cut under the handler
        conn.execute("INSERT INTO probe_effects VALUES (%s)", (event.id,))
        return []

    name = "probe-outage"
    failures, parked = _failures(name), _dead_letters(name)
    try:
        _run_until(_consumer(herald, name, handler).run, lambda: outage.over.is_set() and len(_effects(herald)) >= total)
    finally:
        outage.over.wait(10)
    effects = _effects(herald)
    assert len(effects) == len(set(effects)) == total, "every event applied once, after the outage"
    assert _failures(name) - failures >= 1, "the failed batch was counted"
    assert _dead_letters(name) == parked
    assert list_dead_letters(s.kafka_bootstrap, s.dlq_topic) == []


def test_a_database_outage_under_the_handler_is_retried_not_dead_lettered(herald, pg_url):
    """The cut strikes after the batch's decisions were saved, in what the handler does next on
    its own pool (as ``inbox.mark_decided`` does): the batch is read again after the outage and
    its commands are answered as repeats. (An outage while the domain saves is first waited out
    by eventsourcing's own retries; once they give up, it raises an OperationalError, retried the same way.)"""
    s = herald.settings
    outage = Outage(pg_url, db.parse_database_url(s.database_url)["dbname"], seconds=2.0)

    def on_decided(commands):
        with herald.pool.connection() as conn:
            if not outage.started.is_set():
                outage.start()  # this very connection is cut under the handler
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO probe_effects VALUES (%s)", [(c.command_id,) for c in commands])

    ws = "ws-outage"
    produce_commands(herald.producer, s.commands_topic, [
        _envelope(ws, "open", cmd.OpenWorkspace(name="O", tier="pro")),
        _envelope(ws, "grant-3", cmd.GrantCredits(amount=3)),
        _envelope(ws, "grant-4", cmd.GrantCredits(amount=4)),
    ])
    name = "handler-outage"
    failures, parked = _failures(name), _dead_letters(name)
    handler = _handler(herald, herald.app, name, [])
    handler.on_decided = on_decided
    try:
        _run_until(handler.run, lambda: outage.over.is_set() and "grant-4" in _effects(herald))
    finally:
        outage.over.wait(10)
    assert sorted(_effects(herald)) == ["grant-3", "grant-4", "open"]
    assert herald.app.find(Wallet, ws).available == 7, "each grant applied once"
    assert _failures(name) - failures >= 1, "the failed batch was counted"
    assert _dead_letters(name) == parked
    assert list_dead_letters(s.kafka_bootstrap, s.dlq_topic) == []
