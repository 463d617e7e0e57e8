"""Shared fixtures: real PostgreSQL (local server when reachable, else embedded) and a real
Kafka-protocol broker (Tansu). Every test gets its own database and its own topic names."""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

import psycopg
import pytest

from herald.storage import db
from herald.storage.embedded import EmbeddedBroker, start_embedded_postgres
from herald.settings import Settings

LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(scope="session")
def pg_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    try:
        with psycopg.connect(LOCAL_POSTGRES, connect_timeout=2):
            return LOCAL_POSTGRES
    except psycopg.OperationalError:
        return start_embedded_postgres(tmp_path_factory.mktemp("pg") / "data")


@pytest.fixture
def database_url(pg_url: str):
    name = f"herald_t_{secrets.token_hex(6)}"
    db.create_database(pg_url, name)
    yield db.with_database(pg_url, name)
    db.drop_database(pg_url, name)


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory):
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
        admin_api_key="test-admin-key",
        token_key=base64.b64encode(os.urandom(32)).decode(),
    )


def role_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a `herald <role>` subprocess use this test's database and topics."""
    return {
        **os.environ,
        "HERALD_DATABASE_URL": settings.database_url,
        "HERALD_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "HERALD_TOPIC_PREFIX": settings.topic_prefix,
        "HERALD_TOPIC_PARTITIONS": str(settings.topic_partitions),
        "HERALD_CONSUMER_GROUP_PREFIX": settings.consumer_group_prefix,
        "HERALD_DATA_DIR": str(settings.data_dir),
        "HERALD_TOKEN_KEY": settings.token_key,
        "HERALD_ADMIN_API_KEY": settings.admin_api_key,
        "HERALD_METRICS_PORT": "0",
    }
