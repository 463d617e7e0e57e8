"""The consumers' one failure policy, without broker or database: which failures are the
infrastructure's, how a failing batch is retried and then isolated, and the per-consumer
batch sizes setting. The same policy against PostgreSQL and the broker:
tests/integration/test_failure_policy.py."""

from __future__ import annotations

import threading

import eventsourcing.persistence
import psycopg
import pytest
from kafka.errors import KafkaConnectionError, KafkaTimeoutError, NoBrokersAvailable
from psycopg_pool import PoolTimeout

from herald.messaging.consumer import FailurePolicy, HandlerFailed, InfrastructureFailure, describe, is_infrastructure
from herald.runtime import metrics
from herald.settings import Settings


@pytest.mark.parametrize("error", [
    psycopg.OperationalError("server closed the connection unexpectedly"),
    psycopg.InterfaceError("the connection is closed"),
    PoolTimeout("couldn't get a connection after 30.00 sec"),
    eventsourcing.persistence.OperationalError("wrapped"),
    eventsourcing.persistence.InterfaceError("wrapped"),
    KafkaTimeoutError("Failed to update metadata after 10.0 secs."),
    KafkaConnectionError("broker away"),
    NoBrokersAvailable(),
    InfrastructureFailure("conn.broken"),
])
def test_database_and_broker_failures_are_infrastructure(error):
    assert is_infrastructure(error)


def _raised_from(cause: BaseException) -> BaseException:
    try:
        try:
            raise cause
        except Exception as error:
            raise HandlerFailed(describe(error)) from error
    except HandlerFailed as wrapped:
        return wrapped


@pytest.mark.parametrize("error", [ValueError("poison"), KeyError("x"), RuntimeError("bug"),
                                   psycopg.errors.UniqueViolation("duplicate key"), psycopg.DataError("bad")])
def test_other_failures_are_the_messages(error):
    assert not is_infrastructure(error)
    assert not is_infrastructure(_raised_from(error))


def test_a_wrapped_infrastructure_failure_is_still_infrastructure():
    assert is_infrastructure(_raised_from(psycopg.OperationalError("terminating connection")))
    try:
        try:
            raise KafkaTimeoutError("dlq send")
        except KafkaTimeoutError:
            raise RuntimeError("while parking")  # implicit context
    except RuntimeError as error:
        assert is_infrastructure(error)


def test_describe_names_type_and_message():
    assert describe(ValueError("no such thing")) == "ValueError: no such thing"


def test_a_failing_batch_is_retried_then_isolated():
    waits: list[float] = []
    attempts: list[str] = []

    def whole():
        attempts.append("whole")
        raise ValueError("poison")

    before = metrics.FAILURES.labels("p-isolate")._value.get()
    result = FailurePolicy(retries=3, backoff_initial_s=0.5, backoff_max_s=1.0).apply(
        "p-isolate", whole, lambda: attempts.append("alone") or "isolated", waits.append)
    assert result == "isolated"
    assert attempts == ["whole"] * 4 + ["alone"]
    assert waits == [0.5, 1.0, 1.0], "growing delays, capped"
    assert metrics.FAILURES.labels("p-isolate")._value.get() - before == 4


def test_a_batch_that_succeeds_on_a_retry_is_not_isolated():
    attempts: list[int] = []

    def whole():
        attempts.append(1)
        if len(attempts) < 3:
            raise ValueError("flaky")
        return "whole"

    assert FailurePolicy(retries=3).apply("p-flaky", whole, lambda: "alone", lambda _: None) == "whole"
    assert len(attempts) == 3


def test_no_retries_isolates_at_once():
    assert FailurePolicy(retries=0).apply("p-none", lambda: 1 / 0, lambda: "alone", lambda _: None) == "alone"


def test_an_infrastructure_failure_is_not_retried_in_place_nor_isolated():
    attempts: list[int] = []

    def whole():
        attempts.append(1)
        raise psycopg.OperationalError("connection refused")

    with pytest.raises(psycopg.OperationalError):
        FailurePolicy().apply("p-infra", whole, lambda: pytest.fail("isolated"), lambda _: pytest.fail("waited"))
    assert attempts == [1]


def test_run_backs_off_and_goes_on_after_failed_iterations():
    waits: list[float] = []
    calls: list[int] = []

    class Stop(threading.Event):
        def wait(self, timeout=None):
            waits.append(timeout)
            return False

    stop = Stop()

    def iteration():
        calls.append(1)
        if len(calls) <= 4:
            raise KafkaTimeoutError("broker away")
        if len(calls) == 6:
            raise psycopg.OperationalError("database away")
        if len(calls) == 7:
            stop.set()

    FailurePolicy(backoff_initial_s=0.5, backoff_max_s=2.0).run("p-run", stop, iteration)
    assert len(calls) == 7
    assert waits == [0.5, 1.0, 2.0, 2.0, 0.5], "growing, capped, and reset by a good iteration"


def test_policy_from_settings_and_batch_sizes_per_consumer(monkeypatch):
    monkeypatch.setenv("HERALD_CONSUMER_BATCH_SIZES", '{"publisher": 50, "handler": 2000}')
    monkeypatch.setenv("HERALD_BATCH_MAX_RECORDS", "300")
    monkeypatch.setenv("HERALD_CONSUMER_RETRIES", "5")
    settings = Settings(_env_file=None)
    assert settings.batch_size_for("publisher") == 50
    assert settings.batch_size_for("handler") == 2000
    assert settings.batch_size_for("settler") == 300
    assert FailurePolicy.from_settings(settings) == FailurePolicy(5, 0.5, 10.0)
    monkeypatch.setenv("HERALD_CONSUMER_BATCH_SIZES", '{"publisher": 0}')
    with pytest.raises(ValueError):
        Settings(_env_file=None)
