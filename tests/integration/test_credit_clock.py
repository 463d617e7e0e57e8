"""The credit clock end to end on real PostgreSQL and the broker: the read models write due
items from the wallet's events, the clock ticker turns due items into commands, the handler
decides them, and the items go once the outcome's events are applied. Then the clock's role is
killed (SIGKILL) mid-run and restarted: every grant expired exactly once."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from projections import credit_clock
from schemas import commands as cmd
from tests.support import (
    decide, query_all, role_processes, running, stored_notifications, wait_until,
)

pytestmark = pytest.mark.integration


def _open(herald, ws: str) -> None:
    decide(herald.app, ws, "open", cmd.OpenWorkspace(name=ws, timezone="Europe/Berlin", start_with_monthly_credits=True))


def _events_of(herald, type_name: str) -> list[dict]:
    events = [herald.app.mapper.to_domain_event(n) for n in stored_notifications(herald.app)]
    return [{"workspace": e.workspace_id, **e.data} for e in events if e.type == type_name]


def _expired_events(herald) -> list[dict]:
    return _events_of(herald, "herald.wallet.grant_expired.v1")


def _renewals(herald) -> list[dict]:
    """Periods started by a renewal (not by opening: those start at the opening)."""
    seen: set[str] = set()
    renewed = []
    for event in _events_of(herald, "herald.wallet.credit_period_started.v1"):
        if event["workspace"] in seen:
            renewed.append(event)
        seen.add(event["workspace"])
    return renewed


def test_the_clock_expires_and_warns_from_its_due_items(herald):
    ws = "ws-clock"
    _open(herald, ws)
    soon = datetime.now(UTC) + timedelta(seconds=20)  # warned at once (within three days), expired then
    decide(herald.app, ws, "grant-soon", cmd.GrantCredits(grant_id="soon", amount=4, source="promotion", expires_at=soon))
    decide(herald.app, ws, "grant-later", cmd.GrantCredits(grant_id="later", amount=2, source="purchase",
                                                           expires_at=datetime.now(UTC) + timedelta(days=30)))
    with running([*herald.loops("relay"), *herald.loops("handler"), *herald.loops("projections")]) as loops:
        def items() -> list[tuple]:
            return query_all(herald, "SELECT kind, ref FROM credit_clock WHERE workspace_id = %s ORDER BY 1, 2", (ws,))

        written = wait_until(lambda: items() if len(items()) >= 5 else None, "the due items written", timeout=60)
        assert [i for i in written if i[0] != "renew"] == [
            ("expire_grant", "later"), ("expire_grant", "soon"), ("warn_expiring", "later"), ("warn_expiring", "soon")]
        assert len([i for i in written if i[0] == "renew"]) == 1
        with running(herald.loops("processors")):
            # "soon" is warned at once, then expires at its time.
            wait_until(lambda: _expired_events(herald), "the grant expired", timeout=60)
            [expired] = _expired_events(herald)
            assert (expired["grant_id"], expired["amount"], expired["reason"]) == ("soon", 4, "expired")
            wait_until(lambda: not query_all(herald, "SELECT 1 FROM credit_clock WHERE ref = 'soon'"),
                       "the done items gone", timeout=60)
            notices = wait_until(lambda: query_all(herald,
                                                   "SELECT cause, notice_id FROM notifications WHERE workspace_id = %s",
                                                   (ws,)), "the expiring-soon notice", timeout=60)
            assert ("credits_expiring", "credits_expiring:soon") in notices
            grants = wait_until(lambda: query_all(herald,
                                                  "SELECT grant_id, remaining, expired FROM wallet_grants"
                                                  " WHERE workspace_id = %s AND grant_id = 'soon' AND expired > 0", (ws,)),
                                "the wallet read model shows the expiry", timeout=60)
            assert grants == [("soon", 0, 4)]
            assert ("warn_expiring", "later") in items(), "the later grant is warned three days before it expires"
            loops.assert_running()


def test_a_killed_clock_resumes_and_every_expiry_and_renewal_happens_once(herald, settings, tmp_path):
    workspaces = [f"ws-crash-{n}" for n in range(12)]
    expected: dict[tuple[str, str], int] = {}
    renewals: dict[str, datetime] = {}

    def set_up() -> None:
        """Made once the clock runs (however long its process took to start): due over half a minute,
        so some fall due before the kill, some while no clock runs, some after the restart."""
        start = datetime.now(UTC)
        for n, ws in enumerate(workspaces):
            renewals[ws] = start + timedelta(seconds=5 + n * 2.4)  # the subscription renews during the run
            decide(herald.app, ws, "open", cmd.OpenWorkspace(name=ws, timezone="Europe/Berlin",
                                                             first_renewal_at=renewals[ws]))
            for g in range(3):
                grant_id = f"g{g}"
                due = start + timedelta(seconds=4 + (n * 3 + g) * 0.8)
                decide(herald.app, ws, f"grant-{g}", cmd.GrantCredits(grant_id=grant_id, amount=2 + g,
                                                                      source="promotion", expires_at=due))
                expected[(ws, grant_id)] = 2 + g

    canary = "ws-canary"
    _open(herald, canary)
    decide(herald.app, canary, "grant", cmd.GrantCredits(grant_id="c", amount=1, source="promotion",
                                                         expires_at=datetime.now(UTC) + timedelta(seconds=1)))
    env = {"HERALD_CLOCK_BATCH_SIZE": "2", "HERALD_CLOCK_INTERVAL_S": "0.2", "HERALD_CLOCK_REDELIVER_AFTER_S": "2"}
    with running([*herald.loops("relay"), *herald.loops("handler"), *herald.loops("projections")]):
        with role_processes(["processors"], settings, tmp_path, **env) as [clock]:
            wait_until(lambda: _expired_events(herald), "the clock running (the canary expired)", timeout=90)
            set_up()
            wait_until(lambda: len(_expired_events(herald)) >= 3, "the clock at work", timeout=60, interval=0.05)
            clock.process.kill()  # SIGKILL: no clean shutdown
            clock.process.wait(timeout=10)
        done_at_kill = len(_expired_events(herald)) - 1
        assert done_at_kill < len(expected), "killed mid-run"
        time.sleep(3)  # more become due while no clock runs
        (tmp_path / "restart").mkdir()
        with role_processes(["processors"], settings, tmp_path / "restart", **env) as [restarted]:
            wait_until(lambda: len(_expired_events(herald)) >= len(expected) + 1, "every expiry after the restart",
                       timeout=90)
            wait_until(lambda: len(_renewals(herald)) >= len(workspaces), "every renewal after the restart", timeout=90)
            time.sleep(3)  # a redelivered command would show up by now
            assert restarted.process.poll() is None, restarted.log_tail()
    expired = [e for e in _expired_events(herald) if e["workspace"] != canary]
    counted: dict[tuple[str, str], list[int]] = {}
    for event in expired:
        counted.setdefault((event["workspace"], event["grant_id"]), []).append(event["amount"])
    assert counted == {key: [amount] for key, amount in expected.items()}, "each grant expired exactly once, in full"
    renewed: dict[str, list[str]] = {}
    for event in _renewals(herald):
        renewed.setdefault(event["workspace"], []).append(event["period_start"])
    assert {ws: [datetime.fromisoformat(p) for p in starts] for ws, starts in renewed.items() if ws != canary} == {
        ws: [at] for ws, at in renewals.items()}, "each workspace renewed exactly once"
    monthly = [e for e in _events_of(herald, "herald.wallet.credits_granted.v1")
               if e["source"] == "monthly" and e["workspace"] != canary]
    assert sorted(e["workspace"] for e in monthly) == sorted(workspaces), "one monthly grant each, at the renewal"


def test_grants_from_before_the_clock_get_their_items_once(herald):
    """The first start of this version writes items for live grants the wallet read model already has."""
    assert query_all(herald, "SELECT name FROM herald_upgrades WHERE name LIKE 'credit-%%' ORDER BY name") == [
        ("credit-clock-items-v1",), ("credit-periods-v1",)]
    expires_at = datetime(2031, 1, 10, tzinfo=UTC)
    with herald.pool.connection() as conn:
        conn.execute(
            "INSERT INTO wallet_grants (workspace_id, grant_id, amount, remaining, source, expires_at, granted_at,"
            " position) VALUES ('old', 'g-live', 5, 2, 'purchase', %s, now(), 1), ('old', 'g-used', 5, 0, 'purchase',"
            " %s, now(), 2), ('old', 'g-forever', 5, 5, 'purchase', NULL, now(), 3)", (expires_at, expires_at))
        assert credit_clock.backfill(conn) == 2
        assert credit_clock.backfill(conn) == 0, "once"
    rows = query_all(herald, "SELECT kind, ref, due_at FROM credit_clock WHERE workspace_id = 'old' ORDER BY kind")
    assert rows == [("expire_grant", "g-live", expires_at), ("warn_expiring", "g-live", expires_at - timedelta(days=3))]
