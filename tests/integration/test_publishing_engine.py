"""The publishing engine against a fake platform that misbehaves as real ones do: 429 with
Retry-After, 5xx, a timeout after the platform took the post, an answer lost twice, and a
publisher killed in the middle of a call. Real PostgreSQL, broker and HTTP."""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime, timedelta

import pytest

from processors.accounts.credentials import connect_with_tokens
from schemas import commands as cmd
from tests.fakes.mastodon_server import FakeMastodon
from tests.support import (
    decide, envelope, event_types, query_all, query_one, role_loops, role_processes, running, stored_notifications,
    wait_until,
)

pytestmark = pytest.mark.integration

TOKEN = "engine-token"
WS = "ws-engine"
ACCOUNT = f"{WS}-masto"
FAST = {"dispatch_interval_s": 0.1, "publish_lead_s": 1.0, "retry_delays_s": [1.0, 1.0, 1.0],
        "publish_maintain_every_s": 0.5}


def _workspace(herald, mastodon: FakeMastodon) -> None:
    decide(herald.app, WS, "open", cmd.OpenWorkspace(name=WS, tier="business"))
    connect = cmd.ConnectSocialAccount(social_account_id=ACCOUNT, platform="mastodon", handle="engine",
                                       instance_url=mastodon.base_url)
    assert connect_with_tokens(herald.app, herald.credentials, envelope(connect, workspace_id=WS, command_id="connect"),
                               access_token=TOKEN).accepted
    decide(herald.app, WS, "grant", cmd.GrantCredits(amount=10))


def _schedule(herald, post_id: str, text: str, in_s: float = 1.5) -> None:
    decide(herald.app, WS, f"schedule-{post_id}", cmd.SchedulePost(
        post_id=post_id, text=text, destinations=[ACCOUNT], publish_at=datetime.now(UTC) + timedelta(seconds=in_s)))


def _status(herald, post_id: str) -> str | None:
    return query_one(herald, "SELECT status FROM queue_destinations WHERE post_id = %s", (post_id,))


def _events(herald, kind: str) -> list[dict]:
    decoded = (herald.app.mapper.to_domain_event(n) for n in stored_notifications(herald.app))
    return [e.data for e in decoded if e.type == kind]


@contextlib.contextmanager
def _admin_http(herald):
    from fastapi.testclient import TestClient

    with TestClient(herald.gateway(), headers={"Authorization": f"Bearer {herald.admin_api_key}"}) as http:
        yield http


@pytest.fixture
def mastodon():
    with FakeMastodon(valid_tokens={TOKEN}) as fake:
        yield fake


def _setup(heralds, mastodon, **extra):
    herald = heralds.start(**{**FAST, **extra})
    _workspace(herald, mastodon)  # the token goes to the credentials store, as the connect endpoint does
    return herald


def test_429_with_retry_after_waits_that_long_without_using_up_a_retry(heralds, mastodon):
    herald = _setup(heralds, mastodon, retry_delays_s=[])  # no retry at all: a throttle must not need one
    mastodon.fail_next(1, status=429, headers={"Retry-After": "3"}, body={"error": "Too many requests"})
    with running(role_loops(herald, "handler", "relay", "processors", "projections")):
        _schedule(herald, "p-429", "throttled once")
        wait_until(lambda: _status(herald, "p-429") == "published", "published after the wait", timeout=40)
    types = event_types(herald)
    assert types["herald.post.destination_throttled.v1"] == 1
    assert types["herald.post.retry_scheduled.v1"] == 0 and types["herald.post.destination_failed.v1"] == 0
    assert mastodon.count_for("throttled once") == 1
    posted = [p for p in mastodon.received() if p["text"] == "throttled once"]
    throttled_at, published_at = posted[0]["received_at"], posted[-1]["received_at"]
    assert published_at - throttled_at >= 3.0, "the platform's Retry-After was honoured"
    throttled_until = query_one(herald, "SELECT throttled_until FROM queue_destinations WHERE post_id = 'p-429'")
    assert throttled_until is not None, "the queue shows the throttle"


def test_5xx_is_retried_with_backoff_and_each_attempt_is_audited(heralds, mastodon):
    herald = _setup(heralds, mastodon)
    mastodon.fail_next(2, status=503, body={"error": "Service unavailable"})
    with running(role_loops(herald, "handler", "relay", "processors", "projections")):
        _schedule(herald, "p-503", "after two 503s")
        wait_until(lambda: _status(herald, "p-503") == "published", "published on the third attempt", timeout=40)
    types = event_types(herald)
    assert types["herald.post.retry_scheduled.v1"] == 2 and types["herald.post.attempt_started.v1"] == 3
    assert mastodon.count_for("after two 503s") == 1
    statuses = query_all(herald, "SELECT outcome->>'status_code', outcome->>'outcome' FROM publish_journal"
                                 " WHERE post_id = 'p-503' ORDER BY attempt")
    assert statuses == [("503", "retry"), ("503", "retry"), (None, "published")]


def test_a_timeout_after_the_platform_took_the_post_is_reconciled_without_a_second_post(heralds, mastodon):
    herald = _setup(heralds, mastodon, platform_timeout_s=0.5)
    mastodon.delay_next(1.5)  # the platform posts it, after the client gave up
    with running(role_loops(herald, "handler", "relay", "processors", "projections")):
        _schedule(herald, "p-timeout", "slow but taken")
        wait_until(lambda: _status(herald, "p-timeout") == "published", "published", timeout=40)
        time.sleep(2)  # the slow request lands by now
    assert mastodon.count_for("slow but taken") == 1
    assert event_types(herald)["herald.post.retry_scheduled.v1"] == 0, "reconciled at once, no retry needed"


def test_an_outcome_nobody_can_tell_is_rechecked_later_and_resolved(heralds, mastodon):
    herald = _setup(heralds, mastodon, publish_rechecks_s=[1.0])
    # The post is taken but its answer is lost, and the look-up right after fails too.
    mastodon.fail_next(1, status=500, after_create=True, drop_connection=True)
    mastodon.fail_next(1, status=503)
    with running(role_loops(herald, "handler", "relay", "processors", "projections")):
        _schedule(herald, "p-unknown", "nobody knows")
        wait_until(lambda: event_types(herald)["herald.post.outcome_unknown.v1"] == 1, "flagged unknown", timeout=40)
        wait_until(lambda: _status(herald, "p-unknown") == "published", "resolved by the re-check", timeout=40)
        wait_until(lambda: event_types(herald)["herald.wallet.hold_consumed.v1"] == 1, "its hold consumed", timeout=20)
    assert mastodon.count_for("nobody knows") == 1
    (published,) = _events(herald, "herald.post.destination_published.v1")
    assert published["resolved_by"] == "publisher"


def test_an_admin_resolves_an_unknown_outcome_and_the_hold_follows(heralds, mastodon):
    herald = _setup(heralds, mastodon, publish_rechecks_s=[])
    mastodon.fail_next(1, status=500, after_create=True, drop_connection=True)
    mastodon.fail_next(1, status=503)
    with running(role_loops(herald, "handler", "relay", "processors", "projections")):
        _schedule(herald, "p-admin", "ask an admin")
        wait_until(lambda: _status(herald, "p-admin") == "outcome_unknown", "waiting for an admin", timeout=40)
        attempt = query_one(herald, "SELECT attempt FROM queue_destinations WHERE post_id = 'p-admin'")
        path = f"/v1/admin/workspaces/{WS}/posts/p-admin/destinations/{ACCOUNT}/resolution"
        with _admin_http(herald) as http:
            missing_id = http.post(path, json={"attempt": attempt, "resolution": "published"})
            assert missing_id.status_code == 422
            answer = http.post(path, json={"attempt": attempt, "resolution": "not_published", "note": "checked"})
            assert answer.status_code == 200, answer.text
            assert answer.json()["status"] == "failed"
            again = http.post(path, json={"attempt": attempt, "resolution": "not_published"})
            assert again.status_code == 409 and again.json()["reason_code"] == "outcome_fenced"
        wait_until(lambda: event_types(herald)["herald.wallet.hold_released.v1"] == 1, "its hold released", timeout=20)


def test_a_publisher_killed_mid_call_is_taken_over_and_posts_once(heralds, mastodon, tmp_path):
    herald = _setup(heralds, mastodon, publish_lease_s=3.0)
    env = {"HERALD_DISPATCH_INTERVAL_S": "0.1", "HERALD_PUBLISH_LEAD_S": "1.0", "HERALD_PUBLISH_LEASE_S": "3.0",
           "HERALD_PUBLISH_MAINTAIN_EVERY_S": "0.5", "HERALD_RETRY_DELAYS_S": "[1.0, 1.0, 1.0]"}
    mastodon.delay_next(4.0)  # the call is still open when its process dies
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
    with running(role_loops(herald, "handler", "relay", "projections")):
        with role_processes(["processors"], herald.settings, tmp_path / "first", **env) as (first,):
            _schedule(herald, "p-kill", "killed mid-call", in_s=3.0)
            wait_until(lambda: query_one(herald, "SELECT count(*) FROM publish_journal WHERE post_id = 'p-kill'"
                                                 " AND state = 'in_flight'") == 1, "the call is in flight",
                       timeout=90)  # a processors role started on a loaded 2-core machine (CI) can take long
            first.process.kill()
            first.process.wait(timeout=10)
        with role_processes(["processors"], herald.settings, tmp_path / "second", **env):
            wait_until(lambda: _status(herald, "p-kill") == "published", "published by the take-over", timeout=60)
            time.sleep(2)
    assert mastodon.count_for("killed mid-call") == 1
    assert event_types(herald)["herald.post.attempt_started.v1"] == 1
