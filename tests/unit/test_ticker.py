"""The generic Ticker for timed work (no broker, no database): it ticks on its interval, ticks
again at once after a full tick, survives a tick that raises (backing off), and stops on the event."""

from __future__ import annotations

import threading
import time

import pytest

from herald.runtime import metrics
from herald.runtime.ticker import Backoff, Ticker


def _run(ticker: Ticker) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    thread = threading.Thread(target=ticker.run, args=(stop,), daemon=True)
    thread.start()
    return stop, thread


def _wait_for(condition, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.005)


def _stop(stop: threading.Event, thread: threading.Thread) -> None:
    stop.set()
    thread.join(timeout=2)
    assert not thread.is_alive(), "the ticker did not stop on the event"


def test_it_ticks_every_interval_and_beats_the_heartbeat():
    ticks: list[float] = []
    ticker = Ticker("t-ticks", 0.02, lambda: ticks.append(time.monotonic()) or 0)
    stop, thread = _run(ticker)
    try:
        _wait_for(lambda: len(ticks) >= 3)
    finally:
        _stop(stop, thread)
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    assert all(gap >= 0.015 for gap in gaps), f"waited the interval between ticks: {gaps}"
    assert metrics.last_beat("t-ticks") is not None and time.time() - metrics.last_beat("t-ticks") < 5


def test_a_full_tick_is_followed_by_another_at_once():
    done = [5, 5, 5, 2]  # three full ticks (limit 5), then less: the fourth waits the interval
    ticks: list[int] = []

    def tick() -> int:
        ticks.append(1)
        return done[len(ticks) - 1] if len(ticks) <= len(done) else 0

    ticker = Ticker("t-full", 30.0, tick, full=5)
    stop, thread = _run(ticker)
    try:
        _wait_for(lambda: len(ticks) >= 4, timeout_s=2)  # far less than one 30 s interval
        time.sleep(0.05)
        assert len(ticks) == 4, "after a tick below the limit it waits the interval"
    finally:
        _stop(stop, thread)


def test_without_full_a_busy_tick_still_waits_the_interval():
    ticks: list[int] = []
    ticker = Ticker("t-nofull", 30.0, lambda: ticks.append(1) or 1000)
    stop, thread = _run(ticker)
    try:
        _wait_for(lambda: len(ticks) >= 1)
        time.sleep(0.05)
        assert len(ticks) == 1
    finally:
        _stop(stop, thread)


def test_it_survives_a_failing_tick_counts_it_and_backs_off():
    before = metrics.FAILURES.labels("t-fails")._value.get()
    calls: list[float] = []

    def tick() -> int:
        calls.append(time.monotonic())
        if len(calls) <= 3:
            raise ConnectionError("database away")
        return 0

    ticker = Ticker("t-fails", 30.0, tick, backoff_initial_s=0.02, backoff_max_s=0.05)
    stop, thread = _run(ticker)
    try:
        _wait_for(lambda: len(calls) >= 4)
        assert thread.is_alive()
    finally:
        _stop(stop, thread)
    assert metrics.FAILURES.labels("t-fails")._value.get() - before == 3
    gaps = [b - a for a, b in zip(calls, calls[1:])]
    assert gaps[0] >= 0.015 and gaps[1] >= 0.035 and gaps[2] >= 0.045, f"a growing delay, capped: {gaps}"
    assert metrics.last_beat("t-fails") is not None, "the tick after the failures beat"


def test_a_failing_tick_does_not_beat():
    ticker = Ticker("t-never-beats", 30.0, lambda: 1 / 0, backoff_initial_s=0.01, backoff_max_s=0.01)
    stop, thread = _run(ticker)
    try:
        _wait_for(lambda: metrics.FAILURES.labels("t-never-beats")._value.get() >= 3)
    finally:
        _stop(stop, thread)
    assert metrics.last_beat("t-never-beats") is None


def test_it_stops_on_the_event_even_mid_interval_or_backoff():
    for ticker in (Ticker("t-stop", 60.0, lambda: 0),
                   Ticker("t-stop-failing", 60.0, lambda: 1 / 0, backoff_initial_s=60.0, backoff_max_s=60.0)):
        stop, thread = _run(ticker)
        time.sleep(0.05)
        started = time.monotonic()
        _stop(stop, thread)
        assert time.monotonic() - started < 1


def test_a_set_event_means_no_tick_at_all():
    ticks: list[int] = []
    stop = threading.Event()
    stop.set()
    Ticker("t-stopped", 0.01, lambda: ticks.append(1) or 0).run(stop)
    assert ticks == []


def test_backoff_grows_to_its_cap_and_resets():
    backoff = Backoff(0.5, 10.0)
    assert [backoff.next() for _ in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    backoff.reset()
    assert backoff.next() == 0.5
    for _ in range(200):
        backoff.next()  # no overflow after many failures
    assert backoff.next() == 10.0
    with pytest.raises(ValueError):
        Backoff(0, 1)
    with pytest.raises(ValueError):
        Ticker("bad", 0, lambda: 0)
