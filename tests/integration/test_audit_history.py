"""The audit endpoints on a real PostgreSQL: a post's, a wallet's and a social account's history
(who, which command, why), rejected commands listed per workspace, and state at a past version.

Commands go through the gateway (services) or the domain application (as the dispatcher,
publisher and settler send them); the read models are applied in step from the event store.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from domain.application import HeraldApplication
from domain.post import PublishPolicy
from gateway import auth, idempotency
from gateway.app import GatewayDeps, create_app
from herald.crypto import TokenCipher
from herald.messaging.relay import to_cloud_event
from herald.storage import db, event_store
from processors.accounts import vault
from processors.accounts.credentials import Credentials
from projections import catalogue as read_models
from projections import positions
from schemas import commands as cmd
from tests.support import ADMIN_KEY, Api, envelope

pytestmark = pytest.mark.integration


class Clock:
    """The domain's clock: a millisecond passes at every look, and tests may jump it forward."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


class Audited:
    def __init__(self, database_url: str) -> None:
        self.clock = Clock()
        self.pool = db.connection_pool(database_url, max_size=4)
        self.app = HeraldApplication(db.eventsourcing_env(database_url), clock=self.clock,
                                     policy=PublishPolicy(missed_window_s=3600),
                                     recorded_at=event_store.recorded_at_in(self.pool))
        db.apply_ddl(database_url, *read_models.DDL, auth.DDL, idempotency.DDL, vault.DDL)
        self.projected = 0
        deps = GatewayDeps(app=self.app, pool=self.pool, submit_command=lambda c: None, admin_api_key=ADMIN_KEY,
                           credentials=Credentials(pool=self.pool, cipher=TokenCipher(os.urandom(32))))
        self.http = TestClient(create_app(deps))
        self.api = Api(self.http)

    def as_processor(self, ws: str, command_id: str, payload: cmd.Payload, issued_by: str):
        return self.app.handle(envelope(payload, workspace_id=ws, command_id=command_id, issued_by=issued_by))

    def get(self, path: str, key: dict, **params) -> dict:
        notifications = self.app.recorder.select_notifications(start=self.projected + 1, limit=1_000_000)
        events = [to_cloud_event(self.app, n) for n in notifications]
        with self.pool.connection() as conn:
            for event in events:
                read_models.apply_all(conn, event)
            positions.record(conn, events)
        if events:
            self.projected = events[-1].position
        response = self.http.get(path, headers=key, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    def close(self) -> None:
        self.http.close()
        self.pool.close()
        self.app.close()


@pytest.fixture
def audited(database_url):
    a = Audited(database_url)
    yield a
    a.close()


@pytest.fixture
def story(audited):
    """Workspace "w" with a sandbox account and 2 credits; post "failing" fails on its first
    attempt; post "late" is skipped (its attempt starts two hours after it was due); the
    schedule of post "broke" is rejected for want of credits, a repeat schedule of "failing"
    is rejected as existing, and a second attempt of "failing" is fenced. The settler releases the
    holds of the failed and the skipped destination, with their reasons."""
    api = audited.api
    ws, key = api.open_workspace("w", tier="pro")
    account = api.connect(ws, key, handle="acme", social_account_id="acct")
    api.grant(ws, key, 2, grant_id="g1")
    soon = audited.clock.now + timedelta(minutes=10)
    assert api.schedule(ws, key, [account], post_id="failing", publish_at=soon).status_code == 201
    assert api.schedule(ws, key, [account], post_id="late", publish_at=soon).status_code == 201
    assert api.schedule(ws, key, [account], post_id="failing", publish_at=soon).status_code == 409  # post_exists
    assert api.schedule(ws, key, [account], post_id="broke", publish_at=soon).status_code == 402  # no credits

    started = audited.as_processor(ws, "start-1", cmd.StartPublishAttempt(post_id="failing", destination_id=account,
                                                                          attempt=1), "dispatcher")
    assert started.accepted
    failed = audited.as_processor(ws, "outcome-1", cmd.RecordPublishOutcome(
        post_id="failing", destination_id=account, attempt=1, outcome=cmd.Outcome.failed,
        error_kind="invalid_content", detail="422 Validation failed: Text character limit of 500 exceeded"),
        "publisher")
    assert failed.accepted
    fenced = audited.as_processor(ws, "start-again", cmd.StartPublishAttempt(post_id="failing", destination_id=account,
                                                                             attempt=1), "dispatcher")
    assert fenced.reason_code == "attempt_fenced"
    audited.clock.now += timedelta(hours=2)
    late = audited.as_processor(ws, "start-late", cmd.StartPublishAttempt(post_id="late", destination_id=account,
                                                                          attempt=1), "dispatcher")
    assert late.accepted and late.result["status"] == "skipped"
    return ws, key, account


def by_type(entries: list[dict], suffix: str) -> list[dict]:
    return [e for e in entries if e["type"].endswith(suffix)]


def test_post_history_explains_a_failed_publish_a_fenced_attempt_and_a_rejected_schedule(audited, story):
    ws, key, account = story
    history = audited.get(f"/v1/workspaces/{ws}/posts/failing/history", key)
    entries = history["entries"]
    assert [e["position"] for e in entries] == sorted(e["position"] for e in entries)
    assert [e["type"] for e in entries] == [
        "herald.post.scheduled.v1", "herald.command.rejected.v1", "herald.post.attempt_started.v1",
        "herald.post.destination_failed.v1", "herald.command.rejected.v1"]

    scheduled = entries[0]
    assert scheduled["actor"].startswith("api-key:") and scheduled["command_type"] == "schedule_post.v1"
    assert scheduled["version"] == 1 and scheduled["reason"] is None and scheduled["causation_id"] == scheduled["command_id"]
    repeat = entries[1]
    assert repeat["kind"] == "rejection" and repeat["reason"]["code"] == "post_exists"
    assert "already exists" in repeat["reason"]["sentence"] and repeat["actor"].startswith("api-key:")
    attempt = entries[2]
    assert (attempt["actor"], attempt["command_id"]) == ("dispatcher", "start-1")
    assert "sealed_token" not in attempt["data"], "no token, sealed or not, in an event"
    failed = entries[3]
    assert (failed["actor"], failed["command_id"], failed["command_type"]) == (
        "publisher", "outcome-1", "record_publish_outcome.v1")
    assert failed["reason"]["code"] == "invalid_content"
    assert "refused the content" in failed["reason"]["sentence"] and "character limit" in failed["reason"]["sentence"]
    fenced = entries[4]
    assert (fenced["reason"]["code"], fenced["actor"], fenced["command_id"]) == ("attempt_fenced", "dispatcher", "start-again")

    # The rejected schedule of a post that never came to exist is its whole history.
    broke = audited.get(f"/v1/workspaces/{ws}/posts/broke/history", key)["entries"]
    assert [(e["kind"], e["reason"]["code"]) for e in broke] == [("rejection", "insufficient_credits")]
    assert "too few credits" in broke[0]["reason"]["sentence"]


def test_post_history_explains_a_skipped_destination(audited, story):
    ws, key, _ = story
    entries = audited.get(f"/v1/workspaces/{ws}/posts/late/history", key)["entries"]
    [skipped] = by_type(entries, "destination_skipped.v1")
    assert (skipped["actor"], skipped["command_id"]) == ("dispatcher", "start-late")
    assert skipped["reason"]["code"] == "missed" and "missed window" in skipped["reason"]["sentence"]


def test_post_state_at_a_past_version(audited, story):
    ws, key, account = story
    at_1 = audited.get(f"/v1/workspaces/{ws}/posts/failing/history", key, version=1)
    assert at_1["version"] == 1
    assert at_1["state"]["destinations"][account]["status"] == "pending" and at_1["state"]["status"] == "scheduled"
    at_2 = audited.get(f"/v1/workspaces/{ws}/posts/failing/history", key, version=2)
    assert at_2["state"]["destinations"][account]["status"] == "attempting"
    at_3 = audited.get(f"/v1/workspaces/{ws}/posts/failing/history", key, version=3)
    assert at_3["state"]["destinations"][account]["status"] == "failed"
    assert "character limit" in at_3["state"]["destinations"][account]["reason"]
    missing = audited.http.get(f"/v1/workspaces/{ws}/posts/failing/history", headers=key, params={"version": 4})
    assert missing.status_code == 404 and missing.json()["reason_code"] == "unknown_version"

    # By time: each event's own time gives the state right after it; before the first, nothing.
    times = [e["time"] for e in audited.get(f"/v1/workspaces/{ws}/posts/failing/history", key)["entries"]
             if e["kind"] == "event"]
    for version, at in enumerate(times, start=1):
        assert audited.get(f"/v1/workspaces/{ws}/posts/failing/history", key, at=at)["version"] == version
    before = audited.http.get(f"/v1/workspaces/{ws}/posts/failing/history", headers=key,
                              params={"at": "2000-01-01T00:00:00Z"})
    assert before.status_code == 404 and before.json()["reason_code"] == "unknown_version"


def test_wallet_history_and_state_at_a_past_version(audited, story):
    ws, key, _ = story
    entries = audited.get(f"/v1/workspaces/{ws}/wallet/history", key)["entries"]
    types = [e["type"].split(".")[2] for e in entries]
    assert types == ["opened", "credit_period_started", "credits_granted", "hold_placed", "credits_low", "hold_placed",
                     "rejected", "hold_released", "hold_released"]
    rejected = entries[6]
    assert rejected["reason"]["code"] == "insufficient_credits" and rejected["command_type"] == "schedule_post.v1"
    assert "too few credits" in rejected["reason"]["sentence"]
    # Each hold ended in the decision that ended its destination: the failed outcome (the publisher's
    # command), then the late post's skip (the dispatcher's start).
    failed, skipped = entries[7], entries[8]
    assert (failed["actor"], failed["command_id"], failed["reason"]["code"]) == ("publisher", "outcome-1",
                                                                                 "publish_failed")
    assert (skipped["actor"], skipped["command_id"], skipped["reason"]["code"]) == ("dispatcher", "start-late",
                                                                                    "skipped:missed")
    assert "released: skipped:missed" in skipped["reason"]["sentence"]
    # Version 3 is after the grant, 6 after both holds: 2 granted, 2 held, nothing available.
    at_3 = audited.get(f"/v1/workspaces/{ws}/wallet/history", key, version=3)["state"]
    assert (at_3["granted"], at_3["held"], at_3["available"]) == (2, 0, 2)
    at_6 = audited.get(f"/v1/workspaces/{ws}/wallet/history", key, version=6)["state"]
    assert (at_6["granted"], at_6["held"], at_6["available"]) == (2, 2, 0)

    # Paging: two entries at a time gives the same timeline.
    paged, cursor = [], None
    while True:
        page = audited.get(f"/v1/workspaces/{ws}/wallet/history", key, limit=2, **({"cursor": cursor} if cursor else {}))
        paged += page["entries"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [e["position"] for e in paged] == [e["position"] for e in entries]


def test_account_history_shows_its_publishing_and_hides_the_token(audited, story):
    ws, key, account = story
    again = audited.api.request(f"/v1/workspaces/{ws}/social-accounts",
                                {"platform": "sandbox", "handle": "acme", "social_account_id": account}, key)
    assert again.status_code == 409
    history = audited.get(f"/v1/workspaces/{ws}/social-accounts/{account}/history", key)
    entries = history["entries"]
    assert entries[0]["type"] == "herald.social_account.connected.v1" and entries[0]["actor"].startswith("api-key:")
    assert "sealed_token" not in entries[0]["data"]
    [failed] = by_type(entries, "destination_failed.v1")
    assert failed["post_id"] == "failing" and failed["reason"]["code"] == "invalid_content" and failed["actor"] == "publisher"
    [skipped] = by_type(entries, "destination_skipped.v1")
    assert skipped["post_id"] == "late" and skipped["reason"]["code"] == "missed"
    rejected = [(e["command_type"], e["reason"]["code"]) for e in entries if e["kind"] == "rejection"]
    assert rejected == [("schedule_post.v1", "post_exists"), ("schedule_post.v1", "insufficient_credits"),
                        ("connect_social_account.v1", "account_exists")], "schedules refused for it, and its own"
    assert entries[-1]["kind"] == "rejection" and entries[-1]["reason"]["code"] == "account_exists"
    state = audited.get(f"/v1/workspaces/{ws}/social-accounts/{account}/history", key, version=1)["state"]
    assert state["handle"] == "acme" and "sealed_token" not in state
    assert "s3cret" not in str(history) + str(state)


def test_rejections_are_listed_per_workspace(audited, story):
    ws, key, _ = story
    other, other_key = audited.api.open_workspace("other")
    assert audited.api.schedule(other, other_key, ["nope"], in_s=4 * 3600).status_code == 422
    listed = audited.get(f"/v1/workspaces/{ws}/rejections", key)["rejections"]
    assert [(r["command_type"], r["reason_code"]) for r in listed] == [
        ("schedule_post.v1", "post_exists"), ("schedule_post.v1", "insufficient_credits"),
        ("start_publish_attempt.v1", "attempt_fenced")]
    assert listed[1]["subjects"] == ["post:broke", "wallet", "social_account:acct"]
    assert listed[2]["issued_by"] == "dispatcher"
    assert [r["reason_code"] for r in audited.get(f"/v1/workspaces/{other}/rejections", other_key)["rejections"]] == [
        "unknown_social_account"]
    # Another workspace's key cannot read this workspace's audit trail; unknown subjects are 404.
    hidden = audited.http.get(f"/v1/workspaces/{ws}/posts/failing/history", headers=other_key)
    assert hidden.status_code == 404
    for path, code in ((f"/v1/workspaces/{ws}/posts/nope/history", "unknown_post"),
                       (f"/v1/workspaces/{other}/social-accounts/acct/history", "unknown_social_account"),
                       ("/v1/workspaces/ghost/wallet/history", "unknown_workspace")):
        missing = audited.http.get(path, headers=audited.api.admin)
        assert missing.status_code == 404 and missing.json()["reason_code"] == code, (path, missing.text)
