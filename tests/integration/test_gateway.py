"""The HTTP gateway on a real PostgreSQL: auth, workspace isolation, every command endpoint,
queries, rejection → status mapping, problem documents, the asynchronous command inlet.

The commands topic is the one boundary replaced: ``submit_command`` collects envelopes
(producing to Kafka is tested with the broker elsewhere).
"""

from __future__ import annotations

import os

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from domain.application import HeraldApplication
from domain.rejections import Reason
from gateway import auth, idempotency
from gateway.app import GatewayDeps, create_app
from gateway.problems import REASON_STATUS
from herald.crypto import TokenCipher
from processors.accounts import vault
from processors.notifications import deliveries, email, preferences, webhooks
from processors.accounts.credentials import Credentials
from herald.storage import db, event_store
from herald.messaging.relay import to_cloud_event
from herald.messaging import inbox
from projections import catalogue as read_models
from projections import positions
from schemas import commands as cmd
from schemas.commands import CommandEnvelope
from tests.support import ADMIN_KEY, Api, bearer

pytestmark = pytest.mark.integration

ADMIN = bearer(ADMIN_KEY)
PROBLEM = "application/problem+json"


class Gateway:
    """A TestClient on a gateway wired to a fresh database, plus what the tests look at."""

    def __init__(self, database_url: str) -> None:
        self.pool = db.connection_pool(database_url, max_size=4)
        self.app = HeraldApplication(db.eventsourcing_env(database_url),
                                     recorded_at=event_store.recorded_at_in(self.pool))
        db.apply_ddl(database_url, *read_models.DDL, auth.DDL, idempotency.DDL, vault.DDL, webhooks.DDL,
                     deliveries.DDL, preferences.DDL, email.DDL, inbox.DDL)
        self.projected = 0  # last event-store position applied to the read models
        self.submitted: list[CommandEnvelope] = []
        self.fail_submit = False
        self.ready_checks: dict = {}
        self.deps = GatewayDeps(
            app=self.app, pool=self.pool, submit_command=self._submit, admin_api_key=ADMIN_KEY,
            ready_checks=self.ready_checks,
            credentials=Credentials(pool=self.pool, cipher=TokenCipher(os.urandom(32))),  # connect seals tokens here
        )
        self.http = TestClient(create_app(self.deps))
        self.api = Api(self.http)

    def _submit(self, envelope: CommandEnvelope) -> None:
        if self.fail_submit:
            raise ConnectionError("broker unreachable")
        self.submitted.append(envelope)

    def close(self) -> None:
        self.http.close()
        self.pool.close()
        self.app.close()

    def project(self) -> None:
        """Apply the events stored since the last call to every read model, with their positions
        (the projections role's job, done here in step so each test reads settled read models)."""
        notifications = self.app.recorder.select_notifications(start=self.projected + 1, limit=1_000_000)
        events = [to_cloud_event(self.app, n) for n in notifications]
        with self.pool.connection() as conn:
            for event in events:
                read_models.apply_all(conn, event)
            positions.record(conn, events)
        if events:
            self.projected = events[-1].position

    def get(self, path: str, **kwargs):
        """A GET once the read models have caught up with every decision so far."""
        self.project()
        return self.http.get(path, **kwargs)


@pytest.fixture
def gw(database_url):
    gateway = Gateway(database_url)
    yield gateway
    gateway.close()


@pytest.fixture
def ready(gw):
    """Workspace "a" with a sandbox account and 5 credits: (workspace id, its key, account id)."""
    ws, key = gw.api.open_workspace("a", tier="pro")
    account = gw.api.connect(ws, key)
    gw.api.grant(ws, key, 5)
    return ws, key, account


def assert_problem(response, status: int, reason_code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status and body["reason_code"] == reason_code
    assert body["type"] and body["title"] and isinstance(body["detail"], str)
    return body


def test_open_connect_grant_schedule_inspect_cancel(gw):
    opened = gw.http.post("/v1/workspaces", json={"name": "Acme", "tier": "pro", "timezone": "Europe/Berlin"},
                          headers={**ADMIN, "Idempotency-Key": "open-acme"})
    assert opened.status_code == 201, opened.text
    body = opened.json()
    ws, key = body["workspace_id"], bearer(body["api_key"])
    assert body["tier"] == "pro" and body["timezone"] == "Europe/Berlin" and body["limits"]["queue_size"] == 50
    assert body["api_key"].startswith("hk_")

    connected = gw.http.post(f"/v1/workspaces/{ws}/social-accounts",
                             json={"platform": "sandbox", "handle": "acme", "access_token": "s3cret-token"},
                             headers=key)
    assert connected.status_code == 201, connected.text
    assert "s3cret-token" not in connected.text
    account = connected.json()["social_account_id"]
    assert connected.json()["platform"] == "sandbox" and connected.json()["handle"] == "acme"

    # A workspace's own key cannot pay itself: only the admin (or a credits:grant key) grants.
    assert_problem(gw.http.post(f"/v1/workspaces/{ws}/credits/grants", json={"amount": 5, "source": "purchase"},
                                headers=key), 403, "forbidden")
    granted = gw.http.post(f"/v1/workspaces/{ws}/credits/grants", json={"amount": 5, "source": "purchase"},
                           headers=ADMIN)
    assert granted.status_code == 201 and granted.json()["available"] == 5

    scheduled = gw.api.schedule(ws, key, [account], media_urls=["https://example.com/a.png"])
    assert scheduled.status_code == 201, scheduled.text
    post_id = scheduled.json()["post_id"]
    assert scheduled.headers["location"] == f"/v1/workspaces/{ws}/posts/{post_id}"

    post = gw.get(f"/v1/workspaces/{ws}/posts/{post_id}", headers=key).json()
    assert post["status"] == "scheduled" and post["text"] == "Hello"
    assert post["media_urls"] == ["https://example.com/a.png"]
    assert datetime.fromisoformat(post["publish_at"]) == datetime.fromisoformat(scheduled.json()["publish_at"])
    [dest] = post["destinations"]
    assert dest["destination_id"] == account and dest["status"] == "pending" and dest["attempt"] == 0
    assert dest["platform_post_id"] is None and dest["url"] is None and dest["reason"] == ""

    wallet = gw.get(f"/v1/workspaces/{ws}/wallet", headers=key).json()
    assert (wallet["available"], wallet["granted"], wallet["held"]) == (4, 5, 1)
    [grant] = wallet["grants"]
    assert (grant["amount"], grant["remaining"], grant["source"]) == (5, 5, "purchase")
    [hold] = wallet["holds"]
    assert (hold["post_id"], hold["destination_id"], hold["amount"], hold["status"]) == (post_id, account, 1, "pending")

    shown = gw.get(f"/v1/workspaces/{ws}/queue", headers=key).json()
    assert (shown["tier"], shown["queue_size"], shown["waiting"]) == ("pro", 50, 1)
    assert [(d["post_id"], d["status"]) for d in shown["destinations"]] == [(post_id, "pending")]

    cancelled = gw.http.post(f"/v1/workspaces/{ws}/posts/{post_id}/cancel", json={"reason": "changed my mind"},
                             headers=key)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    post = gw.get(f"/v1/workspaces/{ws}/posts/{post_id}", headers=key).json()
    assert post["status"] == "cancelled" and post["destinations"][0]["reason"] == "changed my mind"
    # The cancellation's own decision released the hold: nothing is held, all 5 credits are available again.
    wallet = gw.get(f"/v1/workspaces/{ws}/wallet", headers=key).json()
    assert all(h["status"] != "pending" for h in wallet["holds"]) and wallet["available"] == 5, wallet
    assert gw.submitted == [], "synchronous commands are decided in-process, not queued"


def test_a_repeated_idempotency_key_returns_the_first_outcome(gw):
    headers = {**ADMIN, "Idempotency-Key": "open-1"}
    first = gw.http.post("/v1/workspaces", json={"name": "One"}, headers=headers)
    again = gw.http.post("/v1/workspaces", json={"name": "One"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json()["workspace_id"] == again.json()["workspace_id"]
    assert first.json()["api_key"] and again.json()["api_key"] is None, "no second key is minted"
    assert first.json()["api_key_id"] == again.json()["api_key_id"]
    ws, key = first.json()["workspace_id"], bearer(first.json()["api_key"])

    account = gw.api.connect(ws, key)
    gw.api.grant(ws, key, 5)
    post_headers = {**key, "Idempotency-Key": "post-1"}
    publish_at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    body = {"text": "Once", "destinations": [account], "publish_at": publish_at}
    posted = [gw.http.post(f"/v1/workspaces/{ws}/posts", json=body, headers=post_headers) for _ in range(2)]
    assert [p.status_code for p in posted] == [201, 201]
    assert posted[0].json() == posted[1].json()
    assert gw.get(f"/v1/workspaces/{ws}/wallet", headers=key).json()["held"] == 1

    # A rejection is an outcome too: repeating it answers the same problem.
    grant_headers = {**ADMIN, "Idempotency-Key": "grant-1"}
    gw.http.post(f"/v1/workspaces/{ws}/credits/grants", json={"amount": 1, "grant_id": "g"}, headers=grant_headers)
    dup = {**ADMIN, "Idempotency-Key": "grant-2"}
    rejected = [gw.http.post(f"/v1/workspaces/{ws}/credits/grants", json={"amount": 1, "grant_id": "g"}, headers=dup)
                for _ in range(2)]
    assert assert_problem(rejected[0], 409, "grant_exists") == assert_problem(rejected[1], 409, "grant_exists")

    # The same key in another workspace is another command.
    _, other = gw.api.open_workspace("other")
    other_account = gw.api.connect("other", other)
    gw.api.grant("other", other, 1)
    body = {"text": "Once", "destinations": [other_account], "publish_at": publish_at}
    elsewhere = gw.http.post("/v1/workspaces/other/posts", json=body, headers={**other, "Idempotency-Key": "post-1"})
    assert elsewhere.status_code == 201 and elsewhere.json()["post_id"] != posted[0].json()["post_id"]

    bad = gw.http.post(f"/v1/workspaces/{ws}/credits/grants", json={"amount": 1},
                       headers={**key, "Idempotency-Key": "spaces are not allowed"})
    assert assert_problem(bad, 422, "validation_error")["errors"][0]["loc"] == ["header", "Idempotency-Key"]


def test_a_service_key_sees_nothing_of_another_workspace(gw, ready):
    ws_a, key_a, _ = ready
    _, key_b = gw.api.open_workspace("b")
    account_b = gw.api.connect("b", key_b)
    gw.api.grant("b", key_b, 2)
    post_b = gw.api.schedule("b", key_b, [account_b]).json()["post_id"]

    assert_problem(gw.get(f"/v1/workspaces/b/posts/{post_b}", headers=key_a), 404, "unknown_workspace")
    assert_problem(gw.get("/v1/workspaces/b/wallet", headers=key_a), 404, "unknown_workspace")
    assert_problem(gw.get("/v1/workspaces/b/queue", headers=key_a), 404, "unknown_workspace")
    assert_problem(gw.api.schedule("b", key_a, [account_b]), 404, "unknown_workspace")
    assert_problem(gw.http.post(f"/v1/workspaces/b/posts/{post_b}/cancel", headers=key_a), 404, "unknown_workspace")
    assert_problem(gw.http.post("/v1/workspaces/b/credits/grants", json={"amount": 9}, headers=key_a),
                   404, "unknown_workspace")
    # Another workspace answers exactly like one that does not exist.
    missing = gw.get("/v1/workspaces/nope/wallet", headers=key_a)
    assert missing.json()["detail"].replace("nope", "b") == gw.get("/v1/workspaces/b/wallet", headers=key_a).json()["detail"]
    # Naming B's post under A's own path does not find it either.
    assert_problem(gw.get(f"/v1/workspaces/{ws_a}/posts/{post_b}", headers=key_a), 404, "unknown_post")
    assert_problem(gw.http.post(f"/v1/workspaces/{ws_a}/posts/{post_b}/cancel", headers=key_a), 404, "unknown_post")

    envelope = _envelope("b", "cancel_post.v1", {"post_id": post_b})
    assert_problem(gw.http.post("/v1/commands", json=envelope, headers=key_a), 404, "unknown_workspace")
    assert gw.submitted == []
    post = gw.get(f"/v1/workspaces/b/posts/{post_b}", headers=key_b).json()
    assert post["status"] == "scheduled", "B's post is untouched"
    assert gw.get("/v1/workspaces/b/wallet", headers=ADMIN).json()["available"] == 1, "the admin sees all"


def test_keys(gw):
    assert_problem(gw.get("/v1/workspaces/a/wallet"), 401, "unauthenticated")
    unknown = gw.get("/v1/workspaces/a/wallet", headers=bearer("hk_guess"))
    assert assert_problem(unknown, 401, "unauthenticated") and unknown.headers["www-authenticate"] == "Bearer"
    assert_problem(gw.get("/v1/workspaces/a/wallet", headers={"Authorization": f"Basic {ADMIN_KEY}"}),
                   401, "unauthenticated")

    opened = gw.http.post("/v1/workspaces", json={"workspace_id": "a", "name": "A"}, headers=ADMIN).json()
    as_header = gw.get("/v1/workspaces/a/wallet", headers={"X-API-Key": opened["api_key"]})
    assert as_header.status_code == 200
    assert_problem(gw.http.post("/v1/workspaces", json={"name": "B"}, headers={"X-API-Key": opened["api_key"]}),
                   403, "forbidden")

    with gw.pool.connection() as conn:
        stored = conn.execute("SELECT key_sha256, scope, workspace_id FROM gateway_api_keys").fetchall()
    assert stored == [(auth.digest(opened["api_key"]), "service", "a")], "only the key's hash is stored"

    assert auth.revoke(gw.pool, opened["api_key_id"])
    assert_problem(gw.get("/v1/workspaces/a/wallet", headers={"X-API-Key": opened["api_key"]}),
                   401, "unauthenticated")


def test_every_rejection_reason_has_a_status():
    assert set(REASON_STATUS) == set(Reason)


def test_rejections_map_to_statuses(gw, ready):
    ws, key, account = ready
    assert_problem(gw.api.schedule(ws, key, ["not-an-account"]), 422, "unknown_social_account")
    assert_problem(gw.api.schedule(ws, key, [account], in_s=-3600), 422, "publish_at_in_past")
    rejected = gw.http.post("/v1/workspaces", json={"workspace_id": ws, "name": "again"}, headers=ADMIN)
    assert assert_problem(rejected, 409, "workspace_exists")["command_id"]
    assert rejected.json()["detail"] == f"workspace {ws} is already open"

    _, poor = gw.api.open_workspace("poor")
    poor_account = gw.api.connect("poor", poor)
    assert_problem(gw.api.schedule("poor", poor, [poor_account]), 402, "insufficient_credits")
    second = gw.http.post("/v1/workspaces/poor/social-accounts", json={"platform": "sandbox", "handle": "two"},
                          headers=poor)
    assert_problem(second, 409, "account_limit_reached")  # the free tier allows one account per platform

    _, tight = gw.api.open_workspace("tight", limit_overrides={"queue_size": 1})
    tight_account = gw.api.connect("tight", tight)
    gw.api.grant("tight", tight, 5)
    first = gw.api.schedule("tight", tight, [tight_account])
    assert first.status_code == 201
    assert_problem(gw.api.schedule("tight", tight, [tight_account]), 409, "queue_full")

    post_id = first.json()["post_id"]
    assert gw.http.post(f"/v1/workspaces/tight/posts/{post_id}/cancel", headers=tight).status_code == 200
    assert_problem(gw.http.post(f"/v1/workspaces/tight/posts/{post_id}/cancel", headers=tight),
                   409, "post_not_cancellable")
    assert_problem(gw.http.post("/v1/workspaces/tight/posts/no-such-post/cancel", headers=tight), 404, "unknown_post")
    assert_problem(gw.get("/v1/workspaces/tight/posts/no-such-post", headers=tight), 404, "unknown_post")
    assert_problem(gw.get("/v1/workspaces/ghost/wallet", headers=ADMIN), 404, "unknown_workspace")
    assert_problem(gw.get("/v1/workspaces/ghost/queue", headers=ADMIN), 404, "unknown_workspace")
    assert_problem(gw.http.post("/v1/workspaces/ghost/credits/grants", json={"amount": 1}, headers=ADMIN),
                   404, "unknown_workspace")


def test_malformed_bodies_are_422_problems(gw, ready):
    ws, key, account = ready
    missing_text = gw.http.post(f"/v1/workspaces/{ws}/posts", json={"destinations": [account]}, headers=key)
    errors = assert_problem(missing_text, 422, "validation_error")["errors"]
    assert ["body", "text"] in [e["loc"] for e in errors]
    assert_problem(gw.http.post(f"/v1/workspaces/{ws}/credits/grants", json={"amount": -1}, headers=key),
                   422, "validation_error")
    assert_problem(gw.http.post(f"/v1/workspaces/{ws}/credits/grants", json={"amount": 1, "surprise": 1},
                                headers=key), 422, "validation_error")
    assert_problem(gw.http.post(f"/v1/workspaces/{ws}/credits/grants", content=b"{not json",
                                headers={**key, "content-type": "application/json"}), 422, "validation_error")
    naive = gw.http.post(f"/v1/workspaces/{ws}/posts",
                         json={"text": "x", "destinations": [account], "publish_at": "2030-01-01T10:00:00"}, headers=key)
    assert_problem(naive, 422, "validation_error")
    assert_problem(gw.http.post("/v1/workspaces", json={"name": "x", "timezone": "Mars/Olympus"}, headers=ADMIN),
                   422, "validation_error")
    assert_problem(gw.get("/v1/nowhere", headers=key), 404, "not_found")
    assert_problem(gw.http.delete("/v1/commands", headers=key), 405, "method_not_allowed")


def _envelope(workspace_id: str, type_: str, payload: dict, command_id: str = "cmd-1") -> dict:
    return {
        "command_id": command_id, "type": type_, "workspace_id": workspace_id,
        "issued_at": datetime.now(UTC).isoformat(), "issued_by": "billing-service", "payload": payload,
    }


def test_commands_are_validated_then_submitted(gw, ready):
    ws, key, _ = ready
    good = _envelope(ws, "cancel_post.v1", {"post_id": "p-10", "reason": "changed"})
    accepted = gw.http.post("/v1/commands", json=good, headers=key)
    assert accepted.status_code == 202, accepted.text
    assert accepted.json() == {"command_id": "cmd-1", "status": "accepted_for_processing"}
    [submitted] = gw.submitted
    assert submitted.command_id == "cmd-1" and submitted.workspace_id == ws and submitted.payload["post_id"] == "p-10"
    assert submitted.issued_by.startswith("api-key:key_"), "a service key's commands are attributed to the key"

    unknown = gw.http.post("/v1/commands", json=_envelope(ws, "launch_rocket.v1", {}), headers=key)
    assert "grant_credits.v1" in assert_problem(unknown, 422, "unknown_command_type")["known_types"]
    bad = gw.http.post("/v1/commands", json=_envelope(ws, "grant_credits.v1", {"amount": "lots"}), headers=ADMIN)
    assert assert_problem(bad, 422, "invalid_payload")["errors"][0]["loc"] == ["body", "payload", "amount"]
    paying_itself = _envelope(ws, "grant_credits.v1", {"amount": 10})
    assert_problem(gw.http.post("/v1/commands", json=paying_itself, headers=key), 403, "forbidden")
    bad = gw.http.post("/v1/commands", json=_envelope(ws, "cancel_post.v1", {"post_id": 5}), headers=key)
    assert assert_problem(bad, 422, "invalid_payload")["errors"][0]["loc"] == ["body", "payload", "post_id"]
    no_id = {k: v for k, v in good.items() if k != "command_id"}
    assert_problem(gw.http.post("/v1/commands", json=no_id, headers=key), 422, "validation_error")
    internal = _envelope(ws, "release_hold.v1", {"hold_id": "h"})
    assert_problem(gw.http.post("/v1/commands", json=internal, headers=key), 403, "forbidden")
    assert_problem(gw.http.post("/v1/commands", json=good), 401, "unauthenticated")
    assert len(gw.submitted) == 1

    by_admin = gw.http.post("/v1/commands", json=_envelope(ws, "release_hold.v1", {"hold_id": "h"}, "cmd-2"),
                            headers=ADMIN)
    assert by_admin.status_code == 202 and gw.submitted[-1].issued_by == "billing-service"
    grant = _envelope(ws, "grant_credits.v1", {"amount": 10, "source": "purchase"}, "cmd-3")
    assert gw.http.post("/v1/commands", json=grant, headers=ADMIN).status_code == 202, "the admin grants on this path"


def test_a_command_the_broker_does_not_take_is_a_503(gw, ready):
    ws, key, _ = ready
    gw.fail_submit = True
    failed = gw.http.post("/v1/commands", json=_envelope(ws, "cancel_post.v1", {"post_id": "p"}), headers=key)
    body = assert_problem(failed, 503, "submit_failed")
    assert "broker unreachable" not in body["detail"] and failed.headers["retry-after"] == "1"


def test_health_and_readiness(gw):
    assert gw.get("/healthz").json() == {"status": "ok"}

    def postgres() -> None:
        with gw.pool.connection() as conn:
            conn.execute("SELECT 1")

    gw.ready_checks["postgres"] = postgres
    assert gw.get("/readyz").json() == {"status": "ready", "checks": {"postgres": "ok"}}

    def broker_down() -> None:
        raise ConnectionError("no broker at 127.0.0.1:9")

    gw.ready_checks["kafka"] = broker_down
    body = assert_problem(gw.get("/readyz"), 503, "not_ready")
    assert body["checks"] == {"postgres": "ok", "kafka": "ConnectionError: no broker at 127.0.0.1:9"}
    assert gw.get("/healthz").status_code == 200, "liveness does not depend on the checks"


def test_an_unexpected_error_is_a_500_problem_without_internals(gw):
    with gw.pool.connection() as conn:
        conn.execute("DROP TABLE gateway_api_keys")
    http = TestClient(create_app(gw.deps), raise_server_exceptions=False)
    response = http.get("/v1/workspaces/a/wallet", headers=bearer("hk_something"))
    body = assert_problem(response, 500, "internal_error")
    assert "gateway_api_keys" not in response.text and "Traceback" not in response.text
    assert set(body) == {"type", "title", "status", "detail", "reason_code"}


def test_docs_and_openapi_are_served(gw):
    assert gw.get("/docs").status_code == 200
    spec = gw.get("/openapi.json").json()
    assert spec["info"]["title"] == "Herald" and "404" in spec["info"]["description"]
    for path in ("/v1/workspaces", "/v1/workspaces/{workspace_id}/posts", "/v1/commands", "/readyz"):
        assert path in spec["paths"]
    assert "Problem" in spec["components"]["schemas"]
    assert {"HTTPBearer", "APIKeyHeader"} <= set(spec["components"]["securitySchemes"])
    grants = spec["paths"]["/v1/workspaces/{workspace_id}/credits/grants"]["post"]
    assert PROBLEM in grants["responses"]["404"]["content"]


def test_a_read_waits_for_its_own_write_and_says_where_it_is(gw, ready):
    ws, key, account = ready
    gw.project()
    scheduled = gw.api.schedule(ws, key, [account])
    position = scheduled.json()["position"]
    assert int(scheduled.headers["Herald-Position"]) == position > 0

    gw.deps.read_wait_s = 0.2  # nothing projects meanwhile: the read models stay behind
    behind = gw.http.get(f"/v1/workspaces/{ws}/wallet", headers=key, params={"min_position": position})
    body = assert_problem(behind, 503, "read_model_behind")
    assert body["position"] < position and behind.headers["Retry-After"] == "1"
    stale = gw.http.get(f"/v1/workspaces/{ws}/wallet", headers=key)  # without min_position: what is there
    assert stale.status_code == 200 and stale.json()["held"] == 0
    assert int(stale.headers["Herald-Position"]) < position

    caught_up = gw.get(f"/v1/workspaces/{ws}/wallet", headers=key, params={"min_position": position})
    assert caught_up.status_code == 200 and caught_up.json()["held"] == 1
    assert int(caught_up.headers["Herald-Position"]) >= position


def test_the_queue_pages_through_what_is_waiting_and_filters(gw):
    ws, key = gw.api.open_workspace("q", tier="business")
    accounts = [gw.api.connect(ws, key, f"h{n}") for n in range(2)]
    gw.api.grant(ws, key, 20)
    start = datetime.now(UTC) + timedelta(hours=1)
    posts = [gw.api.schedule(ws, key, accounts, publish_at=start + timedelta(minutes=n))
             .json()["post_id"] for n in range(5)]
    cancelled = posts.pop(0)
    assert gw.http.post(f"/v1/workspaces/{ws}/posts/{cancelled}/cancel", headers=key).status_code == 200

    seen, cursor = [], None
    while True:
        page = gw.get(f"/v1/workspaces/{ws}/queue", headers=key,
                      params={"limit": 3, **({"cursor": cursor} if cursor else {})}).json()
        seen += [(d["post_id"], d["destination_id"]) for d in page["destinations"]]
        assert len(page["destinations"]) <= 3
        cursor = page["next_cursor"]
        if cursor is None:
            break
    # Every waiting destination once, soonest first, the cancelled post not at all.
    assert seen == [(p, a) for p in posts for a in sorted(accounts)]

    shown = gw.get(f"/v1/workspaces/{ws}/queue", headers=key, params={"status": "cancelled"}).json()
    assert {d["post_id"] for d in shown["destinations"]} == {cancelled}
    one = gw.get(f"/v1/workspaces/{ws}/queue", headers=key, params={"social_account_id": accounts[0]}).json()
    assert {d["destination_id"] for d in one["destinations"]} == {accounts[0]} and len(one["destinations"]) == 4
    due = gw.get(f"/v1/workspaces/{ws}/queue", headers=key,
                 params={"due_to": (start + timedelta(minutes=2, seconds=30)).isoformat()}).json()
    assert {d["post_id"] for d in due["destinations"]} == set(posts[:2])

    assert_problem(gw.get(f"/v1/workspaces/{ws}/queue", headers=key, params={"cursor": "nope"}), 422, "invalid_query")
    assert_problem(gw.get(f"/v1/workspaces/{ws}/queue", headers=key, params={"status": "lost"}), 422,
                   "invalid_query")


def test_a_workspace_sets_its_missed_window(gw):
    ws, key = gw.api.open_workspace(name="Policy", tier="pro")
    other, other_key = gw.api.open_workspace(name="Other", tier="pro")
    path = f"/v1/workspaces/{ws}/publishing-policy"
    set_ = gw.http.put(path, json={"missed_window_minutes": 10}, headers=key)
    assert set_.status_code == 200, set_.text
    assert set_.json()["effective_missed_window_s"] == 600
    shown = gw.get(f"/v1/workspaces/{ws}", headers=key, params={"min_position": set_.json()["position"]}).json()
    assert shown["missed_window_s"] == 600
    assert_problem(gw.http.put(path, json={"missed_window_minutes": 0}, headers=key), 422, "validation_error")
    assert_problem(gw.http.put(path, json={"missed_window_minutes": "10"}, headers=key), 422, "validation_error")
    assert_problem(gw.http.put(path, json={"missed_window_minutes": 10}, headers=other_key), 404, "unknown_workspace")
    back = gw.http.put(path, json={"missed_window_minutes": None}, headers=key)
    assert back.status_code == 200 and back.json()["effective_missed_window_s"] == 3600
    shown = gw.get(f"/v1/workspaces/{ws}", headers=key, params={"min_position": back.json()["position"]}).json()
    assert shown["missed_window_s"] is None


def test_an_admin_retries_a_failed_destination(gw):
    ws, key = gw.api.open_workspace(name="Retry", tier="pro")
    account = gw.api.connect(ws, key, handle="retry")
    assert gw.http.post(f"/v1/workspaces/{ws}/credits/grants", json={"amount": 3, "source": "purchase"},
                        headers=ADMIN).status_code == 201
    post_id = gw.api.schedule(ws, key, [account]).json()["post_id"]
    path = f"/v1/admin/workspaces/{ws}/posts/{post_id}/destinations/{account}/retry"
    # Still waiting: nothing to retry.
    assert_problem(gw.http.post(path, headers=ADMIN), 409, "destination_not_retryable")
    for payload in (cmd.StartPublishAttempt(post_id=post_id, destination_id=account, attempt=1),
                    cmd.RecordPublishOutcome(post_id=post_id, destination_id=account, attempt=1,
                                             outcome=cmd.Outcome.failed, error_kind="permanent", detail="refused")):
        assert gw.app.handle(CommandEnvelope.wrap(payload, command_id=f"{payload.__class__.__name__}-1",
                                                  workspace_id=ws, issued_by="publisher",
                                                  issued_at=datetime.now(UTC))).accepted
    assert_problem(gw.http.post(path, headers=key), 403, "forbidden")  # the workspace's own key: admin only
    retried = gw.http.post(path, headers=ADMIN)
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "retry_scheduled"
    queue = gw.get(f"/v1/workspaces/{ws}/queue", headers=key, params={"min_position": retried.json()["position"]}).json()
    assert [(d["post_id"], d["status"]) for d in queue["destinations"]] == [(post_id, "retry_scheduled")]
    other, _ = gw.api.open_workspace(name="Elsewhere", tier="pro")
    assert_problem(gw.http.post(f"/v1/admin/workspaces/{other}/posts/{post_id}/destinations/{account}/retry",
                                headers=ADMIN), 404, "unknown_post")
