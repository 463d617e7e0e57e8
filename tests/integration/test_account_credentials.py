"""Social-account credentials: the private store, token refresh (on 401, just in time, ahead of
expiry, with rotation), needs_reconnect, the publication policy (no token on the events topic),
and the upgrade that fills the store from events stored before it. Real PostgreSQL, broker and
HTTP (the fake Mastodon's POST /oauth/token)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from domain.account import SocialAccount
from domain.base import Context
from herald.settings import OAuthClientSettings
from herald.storage import event_store
from processors.accounts import vault
from processors.accounts.credentials import connect_with_tokens
from processors.accounts.upgrade import upgrade_version
from schemas import commands as cmd
from tests.fakes.mastodon_server import FakeMastodon
from tests.support import (
    decide, envelope, event_types, query_all, query_one, read_topic, role_loops, running,
    stored_notifications, wait_until,
)

pytestmark = pytest.mark.integration

WS = "ws-cred"
ACCOUNT = f"{WS}-masto"
CLIENT = ("herald-test-client", "herald-test-secret")
FAST = {"dispatch_interval_s": 0.1, "publish_lead_s": 1.0, "retry_delays_s": [1.0, 1.0, 1.0],
        "publish_maintain_every_s": 0.5, "token_refresh_interval_s": 0.2,
        "oauth_clients": {"mastodon": OAuthClientSettings(client_id=CLIENT[0], client_secret=SecretStr(CLIENT[1]))}}
ROLES = ("handler", "relay", "processors", "projections")


@pytest.fixture
def mastodon():
    with FakeMastodon(valid_tokens=(), oauth_client=CLIENT) as fake:
        yield fake


def _start(heralds, **extra):
    herald = heralds.start(**{**FAST, **extra})
    decide(herald.app, WS, "open", cmd.OpenWorkspace(name=WS, tier="business"))
    decide(herald.app, WS, "grant", cmd.GrantCredits(amount=20))
    return herald


def _connect(herald, mastodon, tokens: dict, command_id: str = "connect") -> None:
    expires_in = tokens.get("expires_in")
    connect = cmd.ConnectSocialAccount(social_account_id=ACCOUNT, platform="mastodon", handle="cred",
                                       instance_url=mastodon.base_url)
    decision = connect_with_tokens(
        herald.app, herald.credentials, envelope(connect, workspace_id=WS, command_id=command_id),
        access_token=tokens["access_token"], refresh_token=tokens.get("refresh_token"),
        access_expires_at=datetime.now(UTC) + timedelta(seconds=expires_in) if expires_in else None)
    assert decision.accepted, decision


def _schedule(herald, post_id: str, text: str, in_s: float = 1.5) -> None:
    decide(herald.app, WS, f"schedule-{post_id}", cmd.SchedulePost(
        post_id=post_id, text=text, destinations=[ACCOUNT], publish_at=datetime.now(UTC) + timedelta(seconds=in_s)))


def _status(herald, post_id: str) -> str | None:
    return query_one(herald, "SELECT status FROM queue_destinations WHERE post_id = %s", (post_id,))


def _row(herald) -> vault.StoredCredential:
    with herald.pool.connection() as conn:
        row = vault.current(conn, ACCOUNT, WS)
    assert row is not None
    return row


def _events(herald, kind: str) -> list[dict]:
    decoded = (herald.app.mapper.to_domain_event(n) for n in stored_notifications(herald.app))
    return [e.data for e in decoded if e.type == kind]


def test_a_refused_token_is_refreshed_and_the_post_published_once(heralds, mastodon):
    herald = _start(heralds)
    tokens = mastodon.issue_tokens(expires_in=3600)
    _connect(herald, mastodon, tokens)
    mastodon.revoke(tokens["access_token"])  # the platform refuses it from now on: 401
    with running(role_loops(herald, *ROLES)):
        _schedule(herald, "p-401", "after a refresh")
        wait_until(lambda: _status(herald, "p-401") == "published", "published", timeout=40)
    (refresh,) = mastodon.refreshes
    assert refresh["http_status"] == 200 and refresh["refresh_token"] == tokens["refresh_token"]
    posts = [r for r in mastodon.received() if r["text"] == "after a refresh"]
    assert [(p["token"], p["http_status"]) for p in posts] == [(tokens["access_token"], 401),
                                                             (refresh["access_token"], 200)]
    assert mastodon.count_for("after a refresh") == 1
    types = event_types(herald)
    assert types["herald.post.attempt_started.v1"] == 1, "retried within the attempt, not as a new one"
    assert types["herald.social_account.needs_reconnect.v1"] == 0
    row = _row(herald)
    assert row.revision == 1 and row.status == "active"
    assert herald.cipher.unseal(row.sealed_access_token) == refresh["access_token"]


def test_a_refresh_refused_for_good_marks_the_account_and_skips_its_destinations_until_reconnected(heralds, mastodon):
    herald = _start(heralds)
    tokens = mastodon.issue_tokens(expires_in=3600)
    _connect(herald, mastodon, tokens)
    mastodon.revoke(tokens["access_token"])
    mastodon.fail_refresh_next(1, error="invalid_grant")
    with running(role_loops(herald, *ROLES)):
        _schedule(herald, "p-dead", "never posted")
        wait_until(lambda: _status(herald, "p-dead") == "skipped", "skipped", timeout=40)
        wait_until(lambda: event_types(herald)["herald.wallet.hold_released.v1"] == 1, "its hold released", timeout=20)
        (marked,) = _events(herald, "herald.social_account.needs_reconnect.v1")
        assert marked["reason"] == "invalid_grant" and marked["social_account_id"] == ACCOUNT
        (skipped,) = _events(herald, "herald.post.destination_skipped.v1")
        assert skipped["reason"] == "account_needs_reconnect"
        assert _row(herald).status == "needs_reconnect"
        wait_until(lambda: query_one(herald, "SELECT status FROM social_accounts WHERE social_account_id = %s",
                                     (ACCOUNT,)) == "needs_reconnect", "the accounts read model shows it", timeout=20)

        # Later posts are skipped by the domain at attempt start: no platform call, no attempt.
        _schedule(herald, "p-later", "not even tried")
        wait_until(lambda: _status(herald, "p-later") == "skipped", "skipped at start", timeout=40)
        assert event_types(herald)["herald.post.attempt_started.v1"] == 1
        assert [s for s in _events(herald, "herald.post.destination_skipped.v1") if s["post_id"] == "p-later"][0][
            "reason"] == "account_needs_reconnect"

        # Connecting the account again with new tokens clears it.
        _connect(herald, mastodon, mastodon.issue_tokens(expires_in=3600), command_id="reconnect")
        assert herald.app.find(SocialAccount, ACCOUNT).needs_reconnect == ""
        wait_until(lambda: query_one(herald, "SELECT status FROM social_accounts WHERE social_account_id = %s",
                                     (ACCOUNT,)) == "active", "the read model shows it active again", timeout=20)
        _schedule(herald, "p-after", "after the reconnect")
        wait_until(lambda: _status(herald, "p-after") == "published", "published after the reconnect", timeout=40)
        wait_until(lambda: event_types(herald)["herald.wallet.hold_released.v1"] == 2, "both holds released",
                   timeout=20)
        wait_until(lambda: event_types(herald)["herald.wallet.hold_consumed.v1"] == 1, "the third one's consumed",
                   timeout=20)
    assert mastodon.count_for("never posted") == 0 and mastodon.count_for("not even tried") == 0
    assert mastodon.count_for("after the reconnect") == 1
    assert query_one(herald, "SELECT count(*) FROM account_credentials WHERE social_account_id = %s", (ACCOUNT,)) == 1, \
        "the reconnect replaced the refused credentials"


def test_tokens_expiring_soon_are_refreshed_ahead_by_the_refresher(heralds, mastodon):
    herald = _start(heralds, token_refresh_ahead_s=600, token_refresh_margin_s=0)
    tokens = mastodon.issue_tokens(expires_in=120)  # within the refresher's 10 minutes
    mastodon.expire_tokens_after(3600)  # what a refresh gives lasts an hour: refreshed once
    _connect(herald, mastodon, tokens)
    with running(role_loops(herald, "processors")):
        wait_until(lambda: _row(herald).revision == 1, "refreshed ahead of expiry", timeout=30)
        threading.Event().wait(1.0)  # a few more ticks: nothing else is due
    (refresh,) = mastodon.refreshes
    row = _row(herald)
    assert herald.cipher.unseal(row.sealed_access_token) == refresh["access_token"]
    assert row.access_expires_at > datetime.now(UTC) + timedelta(minutes=50)
    # The refresher finds due rows through the expiry index, not by reading every account.
    with herald.pool.connection() as conn:
        conn.execute("SET LOCAL enable_seqscan = off")
        plan = "\n".join(r[0] for r in conn.execute(
            "EXPLAIN SELECT * FROM account_credentials WHERE status = 'active' AND sealed_refresh_token IS NOT NULL"
            " AND access_expires_at IS NOT NULL AND access_expires_at < now() + interval '10 minutes'"
            " ORDER BY access_expires_at LIMIT 100").fetchall())
    assert "account_credentials_expiring" in plan, plan


def test_rotation_is_persisted_and_a_rotated_refresh_token_is_never_presented_again(heralds, mastodon):
    # Every call finds its token within the margin, so each publish refreshes just in time.
    herald = _start(heralds, token_refresh_margin_s=3600, token_refresh_ahead_s=0)
    mastodon.expire_tokens_after(600)
    tokens = mastodon.issue_tokens(expires_in=600)
    _connect(herald, mastodon, tokens)
    with running(role_loops(herald, *ROLES)):
        for n in range(3):
            _schedule(herald, f"p-rot-{n}", f"rotation {n}", in_s=1.0)
            wait_until(lambda: _status(herald, f"p-rot-{n}") == "published", "published", timeout=40)
    refreshes = mastodon.refreshes
    assert len(refreshes) == 3 and all(r["http_status"] == 200 for r in refreshes)
    presented = [r["refresh_token"] for r in refreshes]
    assert presented[0] == tokens["refresh_token"] and len(set(presented)) == 3
    assert mastodon.refresh_token_reuses == 0
    row = _row(herald)
    assert row.revision == 3
    assert herald.cipher.unseal(row.sealed_access_token) == refreshes[-1]["access_token"]
    assert herald.cipher.unseal(row.sealed_refresh_token) not in presented, "the newest refresh token is stored"
    used = [p["token"] for p in mastodon.received()]
    assert used == [r["access_token"] for r in refreshes], "each post used the token its refresh gave"


def test_two_refreshers_at_once_make_one_refresh_and_share_its_tokens(heralds, mastodon):
    herald = _start(heralds)
    _connect(herald, mastodon, mastodon.issue_tokens(expires_in=60))
    seen = _row(herald)
    results, gate = [], threading.Barrier(4)

    def refresh() -> None:
        gate.wait()
        results.append(herald.credentials.refresh(seen, because="expiring"))

    threads = [threading.Thread(target=refresh) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(results) == 4
    assert len(mastodon.refreshes) == 1 and mastodon.refresh_token_reuses == 0
    assert {r.revision for r in results} == {1}
    assert {herald.cipher.unseal(r.sealed_access_token) for r in results} == {mastodon.refreshes[0]["access_token"]}


def test_no_token_clear_or_sealed_reaches_the_events_topic(heralds, mastodon, tmp_path):
    from fastapi.testclient import TestClient

    herald = heralds.start(**FAST)
    mastodon.expire_tokens_after(3600)
    tokens = mastodon.issue_tokens(expires_in=3600)
    secrets = {tokens["access_token"], tokens["refresh_token"]}
    admin = {"Authorization": f"Bearer {herald.admin_api_key}"}
    with TestClient(herald.gateway()) as http:
        opened = http.post("/v1/workspaces", json={"workspace_id": WS, "name": WS, "tier": "business"}, headers=admin)
        assert opened.status_code == 201, opened.text
        key = {"Authorization": f"Bearer {opened.json()['api_key']}"}
        connect = {"social_account_id": ACCOUNT, "platform": "mastodon", "handle": "cred",
                   "instance_url": mastodon.base_url, **{k: tokens[k] for k in ("access_token", "refresh_token")},
                   "expires_in": tokens["expires_in"]}
        answer = http.post(f"/v1/workspaces/{WS}/social-accounts", json=connect, headers=key)
        assert answer.status_code == 201, answer.text
        assert not secrets & set(answer.text.split('"'))
        assert http.post(f"/v1/workspaces/{WS}/credits/grants", json={"amount": 5}, headers=admin).status_code == 201
        sealed = {_row(herald).sealed_access_token, _row(herald).sealed_refresh_token}
        mastodon.revoke(tokens["access_token"])  # a refresh happens during the workload too
        with running(role_loops(herald, *ROLES)):
            due = (datetime.now(UTC) + timedelta(seconds=1.5)).isoformat()
            scheduled = http.post(f"/v1/workspaces/{WS}/posts", headers=key,
                                  json={"text": "policy", "destinations": [ACCOUNT], "publish_at": due})
            assert scheduled.status_code == 201, scheduled.text
            wait_until(lambda: mastodon.count_for("policy") == 1 and event_types(herald)[
                "herald.wallet.hold_consumed.v1"] == 1, "published and settled", timeout=40)
    (refresh,) = mastodon.refreshes
    secrets |= {refresh["access_token"]} | {herald.cipher.unseal(_row(herald).sealed_refresh_token)}
    sealed |= {_row(herald).sealed_access_token, _row(herald).sealed_refresh_token}
    records = read_topic(herald.kafka_bootstrap, herald.settings.events_topic,
                         until=lambda rs: len(rs) >= len(stored_notifications(herald.app)))
    assert len(records) == len(stored_notifications(herald.app)), "every stored event was read back"
    for record in records:
        text = record.value.decode() + "".join(k + v.decode() for k, v in record.headers)
        assert "sealed_token" not in text and "token" not in [k for k, _ in record.headers]
        leaked = [s for s in secrets | sealed if s in text]
        assert not leaked, f"{record.topic}@{record.offset} carries token material"
    assert query_one(herald, "SELECT count(*) FROM publish_journal WHERE sealed_token IS NOT NULL") == 0
    assert query_one(herald, "SELECT count(*) FROM account_credentials WHERE sealed_access_token = ANY(%s)"
                             " OR sealed_refresh_token = ANY(%s)", (list(secrets), list(secrets))) == 0, \
        "the store holds sealed values only"


def test_upgrade_copies_sealed_tokens_of_earlier_accounts_into_the_store(heralds, mastodon):
    herald = _start(heralds)
    old_token = "token-from-before"
    mastodon.valid_tokens.add(old_token)
    sealed = herald.cipher.seal(old_token)
    # An account as the previous version stored it: its connect event carried the sealed token.
    ctx = Context(command_id="old-connect", correlation_id="old-connect", workspace_id=WS, issued_by="old",
                  now=datetime.now(UTC))
    old_data = {"social_account_id": ACCOUNT, "platform": "mastodon", "handle": "old", "sealed_token": sealed,
                "instance_url": mastodon.base_url}
    account = SocialAccount._create(SocialAccount.Started, id=SocialAccount.aggregate_id(ACCOUNT),
                                    type="herald.social_account.connected.v1", data=old_data, workspace_id=WS,
                                    causation_id=ctx.command_id, correlation_id=ctx.correlation_id, timestamp=ctx.now)
    workspace = herald.app.workspace(ctx)
    workspace.link_account(ctx, ACCOUNT, "mastodon")
    herald.app.save(account, workspace)
    with herald.pool.connection() as conn:  # as if this version had never started on that store
        conn.execute("DELETE FROM herald_upgrades WHERE name = 'credentials-store-v1'")
    assert query_one(herald, "SELECT count(*) FROM account_credentials") == 0

    herald.prepare()
    rows = query_all(herald, "SELECT version, workspace_id, sealed_access_token, status FROM account_credentials")
    assert rows == [(upgrade_version(ACCOUNT), WS, sealed, "active")], "copied, still sealed"
    herald.prepare()  # recorded: a second start copies nothing
    assert query_one(herald, "SELECT count(*) FROM account_credentials") == 1
    assert event_store.run_upgrade_once(herald.database_url, "credentials-store-v1", lambda: 1 / 0) is False

    assert herald.app.find(SocialAccount, ACCOUNT).credential_version is None  # the old event still loads
    with running(role_loops(herald, *ROLES)):
        _schedule(herald, "p-old", "with the old token")
        wait_until(lambda: _status(herald, "p-old") == "published", "published with the copied token", timeout=40)
    assert [p["token"] for p in mastodon.received()] == [old_token]
    records = read_topic(herald.kafka_bootstrap, herald.settings.events_topic,
                         until=lambda rs: any(b"herald.social_account.connected.v1" in r.value for r in rs))
    connected = [r for r in records if b"herald.social_account.connected.v1" in r.value]
    assert connected and all(b"sealed_token" not in r.value and sealed.encode() not in r.value for r in connected)
