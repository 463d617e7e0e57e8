"""The shared fixtures, a pytest plugin loaded by ``tests/conftest.py``: real PostgreSQL (the local
server when reachable, else embedded) and a real Kafka-protocol broker (Tansu). Every test gets
its own database and its own topic names."""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest

from herald.settings import Settings
from herald.storage import db
from herald.storage.embedded import EmbeddedBroker, start_embedded_postgres
from tests.support.heralds import Heralds
from tests.support.http import ADMIN_KEY, Api

if TYPE_CHECKING:
    from herald.runtime.wiring import Herald

LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(scope="session")
def pg_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    try:
        with psycopg.connect(LOCAL_POSTGRES, connect_timeout=2):
            return LOCAL_POSTGRES
    except psycopg.OperationalError:
        return start_embedded_postgres(tmp_path_factory.mktemp("pg") / "data")


@pytest.fixture
def database_url(pg_url: str) -> Iterator[str]:
    name = f"herald_t_{secrets.token_hex(6)}"
    db.create_database(pg_url, name)
    yield db.with_database(pg_url, name)
    db.drop_database(pg_url, name)


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(tmp_path_factory.mktemp("broker")) as running:
        yield running


@pytest.fixture
def kafka_bootstrap(broker: EmbeddedBroker) -> str:
    return broker.bootstrap


@pytest.fixture
def topic_prefix() -> str:
    return f"t{secrets.token_hex(4)}."


@pytest.fixture
def settings(database_url: str, kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,
        database_url=database_url,
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topic_prefix,
        topic_partitions=3,
        consumer_group_prefix=topic_prefix,
        data_dir=tmp_path / "herald",
        admin_api_key=ADMIN_KEY,
        token_key=base64.b64encode(os.urandom(32)).decode(),
        outbound_allowed_networks=["127.0.0.0/8"],  # the fake platforms listen on 127.0.0.1
    )


@pytest.fixture
def heralds(settings: Settings, tmp_path: Path) -> Iterator[Heralds]:
    """Starts Heralds (``heralds.start(...)``) and private brokers (``heralds.own_broker()``);
    closes them all when the test ends."""
    started = Heralds(settings, tmp_path)
    yield started
    started.close()


@pytest.fixture
def herald(heralds: Heralds) -> Herald:
    """A prepared Herald on the test's database and the shared broker, relays resumed, no loops running."""
    return heralds.start()


@pytest.fixture
def api(herald: Herald) -> Iterator[Api]:
    """The gateway of ``herald`` through a TestClient, with the admin key."""
    from fastapi.testclient import TestClient  # imported here: only the tests that use it pay for it
    with TestClient(herald.gateway()) as http:
        yield Api(http, admin_key=herald.admin_api_key)
