"""PostgreSQL plumbing: URLs, databases, idempotent DDL and connection pools."""

from __future__ import annotations

import contextlib
from typing import Iterator

from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool


def parse_database_url(url: str) -> dict[str, str]:
    """host, port, user, password, dbname of a postgresql:// URL or key=value conninfo.

    Parsed by libpq's rules, so ``postgresql://postgres@/db?host=/socket/dir`` (the embedded
    server's form), percent-encoded passwords and ``%2F``-encoded socket hosts all work.
    """
    params = conninfo_to_dict(url)
    return {
        "host": str(params.get("host") or "localhost"),
        "port": str(params.get("port") or "5432"),
        "user": str(params.get("user") or "postgres"),
        "password": str(params.get("password") or ""),
        "dbname": str(params.get("dbname") or "postgres"),
    }


def eventsourcing_env(url: str) -> dict[str, str]:
    """The eventsourcing library's settings for the database at ``url``.

    A socket directory works as POSTGRES_HOST (it goes to libpq as ``host``). DB functions stay
    off: with them on, eventsourcing skips the table lock that keeps notification ids in commit order.
    """
    p = parse_database_url(url)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": p["dbname"],
        "POSTGRES_HOST": p["host"],
        "POSTGRES_PORT": p["port"],
        "POSTGRES_USER": p["user"],
        "POSTGRES_PASSWORD": p["password"],
        "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
        "CREATE_TABLE": "y",
    }


def with_database(url: str, name: str) -> str:
    """The same server, another database."""
    if "://" not in url:
        return make_conninfo(url, dbname=name)
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + quote(name, safe="")))


def create_database(server_url: str, name: str, *, exist_ok: bool = False) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists and exist_ok:
            return
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.errors.DuplicateDatabase:
            if not exist_ok:  # another starter won the race
                raise


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextlib.contextmanager
def schema_lock(url: str) -> Iterator[None]:
    """Held while a process creates the event store's tables and its own: two roles starting at
    once would otherwise race in the catalog ("tuple concurrently updated")."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(hashtext('herald.schema'))")
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext('herald.schema'))")


def apply_ddl(url: str, *statements: str) -> None:
    """Run idempotent DDL in one transaction; an advisory lock keeps concurrent starters apart."""
    with psycopg.connect(url) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('herald.ddl'))")
        for ddl in statements:
            conn.execute(ddl)


def connection_pool(url: str, min_size: int = 1, max_size: int = 10) -> ConnectionPool:
    """An open pool (autocommit off) that checks connections on checkout, so a restarted server
    costs one reconnect rather than an error."""
    pool = ConnectionPool(
        url, min_size=min_size, max_size=max_size, open=True, name="herald",
        check=ConnectionPool.check_connection,
    )
    pool.wait(timeout=30)
    return pool
