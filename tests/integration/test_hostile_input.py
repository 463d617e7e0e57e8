"""Hostile and sloppy input, each reproduction of issue 13 (item 7): every one answers a
documented 4xx problem, nothing is written that the schema forbids, and no stored row can break
a read model.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.body_limits import DEFAULT_MAX_BYTES
from tests.integration.test_gateway import ADMIN, assert_problem
from tests.integration.test_gateway import gw, ready  # noqa: F401 - the fixtures

pytestmark = pytest.mark.integration


def _in(days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


def test_a_workspace_id_outside_the_id_alphabet_is_a_422_on_every_endpoint(gw, ready):
    _, _, account = ready
    bodies = {
        "/v1/workspaces/a%20b/credits/grants": {"amount": 1},
        "/v1/workspaces/a%20b/social-accounts": {"platform": "sandbox", "handle": "x"},
        "/v1/workspaces/a%20b/posts": {"text": "x", "destinations": [account], "publish_at": _in(1)},
        "/v1/workspaces/a%20b/posts/p/cancel": {},
    }
    for path, body in bodies.items():
        answer = gw.http.post(path, json=body, headers=ADMIN)
        errors = assert_problem(answer, 422, "validation_error")["errors"]
        assert ["path", "workspace_id"] in [e["loc"] for e in errors], path
    for path in ("/v1/workspaces/a%20b", "/v1/workspaces/a%20b/queue", "/v1/workspaces/a%20b/wallet",
                 "/v1/workspaces/a/posts/a%20b", "/v1/workspaces/a/social-accounts/%C3%A9"):
        assert_problem(gw.get(path, headers=ADMIN), 422, "validation_error")
    # And through the generic inlet, where the envelope's own pattern applies.
    envelope = {"command_id": "c1", "type": "grant_credits.v1", "workspace_id": "a b",
                "issued_at": datetime.now(UTC).isoformat(), "issued_by": "t", "payload": {"amount": 1}}
    assert_problem(gw.http.post("/v1/commands", json=envelope, headers=ADMIN), 422, "validation_error")
    assert gw.submitted == []


def test_publish_at_is_bounded_whatever_the_offset(gw, ready):
    ws, key, account = ready
    body = {"text": "x", "destinations": [account]}
    year_10000_in_utc = gw.http.post(f"/v1/workspaces/{ws}/posts", headers=key,
                                     json={**body, "publish_at": "9999-12-31T23:59:59-05:00"})
    assert_problem(year_10000_in_utc, 422, "validation_error")
    beyond = gw.http.post(f"/v1/workspaces/{ws}/posts", headers=key, json={**body, "publish_at": _in(400)})
    assert_problem(beyond, 422, "publish_at_beyond_horizon")
    as_number = gw.http.post(f"/v1/workspaces/{ws}/posts", headers=key, json={**body, "publish_at": 1e10})
    assert_problem(as_number, 422, "validation_error")
    beyond_the_tier = gw.http.post(f"/v1/workspaces/{ws}/posts", headers=key, json={**body, "publish_at": _in(300)})
    assert_problem(beyond_the_tier, 409, "scheduling_horizon_exceeded")  # the pro tier's own horizon is 30 days
    within = gw.http.post(f"/v1/workspaces/{ws}/posts", headers=key, json={**body, "publish_at": _in(20)})
    assert within.status_code == 201, within.text
    queue = gw.get(f"/v1/workspaces/{ws}/queue", headers=key)
    assert queue.status_code == 200 and len(queue.json()["destinations"]) == 1


def test_one_stored_row_out_of_pythons_range_does_not_break_the_read_models(gw, ready):
    ws, key, account = ready
    post_id = gw.api.schedule(ws, key, [account]).json()["post_id"]
    gw.project()
    with gw.pool.connection() as conn:  # as main stored it before publish_at was bounded
        conn.execute("UPDATE queue_destinations SET due_at = '10000-01-01T04:59:59Z' WHERE post_id = %s", (post_id,))
    queue = gw.get(f"/v1/workspaces/{ws}/queue", headers=key)
    assert queue.status_code == 200, queue.text
    [entry] = queue.json()["destinations"]
    assert entry["post_id"] == post_id and entry["due_at"].startswith("9999-12-31T23:59:59")
    post = gw.get(f"/v1/workspaces/{ws}/posts/{post_id}", headers=key)
    assert post.status_code == 200, post.text


@pytest.mark.parametrize("body", [
    {"amount": "5"}, {"amount": True}, {"amount": 5.0}, {"amount": 5, "expires_at": 0},
    {"amount": 5, "expires_at": "2030-01-01T00:00:00"},  # no offset
    {"amount": 5, "expires_at": "9999-12-31T23:59:59-05:00"},
])
def test_credit_grants_take_no_coerced_values(gw, ready, body):
    ws, key, _ = ready
    assert_problem(gw.http.post(f"/v1/workspaces/{ws}/credits/grants", json=body, headers=ADMIN),
                   422, "validation_error")
    assert gw.get(f"/v1/workspaces/{ws}/wallet", headers=key).json()["granted"] == 5, "nothing was granted"


def test_a_grant_must_expire_in_the_future(gw, ready):
    ws, key, _ = ready
    past = gw.http.post(f"/v1/workspaces/{ws}/credits/grants", headers=ADMIN,
                        json={"amount": 3, "expires_at": "2020-01-01T00:00:00Z"})
    assert_problem(past, 422, "expires_at_in_past")
    future = gw.http.post(f"/v1/workspaces/{ws}/credits/grants", headers=ADMIN, json={"amount": 3, "expires_at": _in(30)})
    assert future.status_code == 201 and future.json()["available"] == 8


@pytest.mark.parametrize("overrides", [{"queue_size": True}, {"queue_size": "3"}, {"queue_size": 2.0},
                                       {"queue_size": -1}])
def test_limit_overrides_are_strict_integers(gw, overrides):
    answer = gw.http.post("/v1/workspaces", json={"name": "x", "limit_overrides": overrides}, headers=ADMIN)
    assert_problem(answer, 422, "validation_error")


def test_an_idempotency_key_reused_with_another_body_is_a_422(gw, ready):
    ws, key, account = ready
    headers = {**ADMIN, "Idempotency-Key": "grant-k"}
    first = gw.http.post(f"/v1/workspaces/{ws}/credits/grants", json={"amount": 2}, headers=headers)
    assert first.status_code == 201
    other = gw.http.post(f"/v1/workspaces/{ws}/credits/grants", json={"amount": 200}, headers=headers)
    assert assert_problem(other, 422, "idempotency_key_reused")["command_id"] == first.json()["command_id"]
    again = gw.http.post(f"/v1/workspaces/{ws}/credits/grants", json={"amount": 2}, headers=headers)
    assert again.status_code == 201 and again.json()["grant_id"] == first.json()["grant_id"]
    assert gw.get(f"/v1/workspaces/{ws}/wallet", headers=key).json()["granted"] == 7

    # Cancelling another post with the same key is another request too.
    posts = [gw.api.schedule(ws, key, [account]).json()["post_id"] for _ in range(2)]
    cancel = {**key, "Idempotency-Key": "cancel-k"}
    assert gw.http.post(f"/v1/workspaces/{ws}/posts/{posts[0]}/cancel", headers=cancel).status_code == 200
    assert_problem(gw.http.post(f"/v1/workspaces/{ws}/posts/{posts[1]}/cancel", headers=cancel),
                   422, "idempotency_key_reused")


def test_a_body_over_the_limit_is_a_413(gw, ready):
    ws, key, account = ready
    huge = b'{"text": "' + b"x" * DEFAULT_MAX_BYTES + b'", "destinations": ["%s"]}' % account.encode()
    answer = gw.http.post(f"/v1/workspaces/{ws}/posts", content=huge,
                          headers={**key, "Content-Type": "application/json"})
    assert_problem(answer, 413, "body_too_large")

    def streamed():  # no Content-Length: counted as it arrives
        for _ in range(DEFAULT_MAX_BYTES // 65536 + 2):
            yield b" " * 65536

    chunked = gw.http.post(f"/v1/workspaces/{ws}/posts", content=streamed(),
                           headers={**key, "Content-Type": "application/json"})
    assert_problem(chunked, 413, "body_too_large")


def test_a_body_that_is_not_utf8_is_a_422_like_other_malformed_json(gw, ready):
    ws, key, _ = ready
    answer = gw.http.post(f"/v1/workspaces/{ws}/credits/grants", content=b'{"amount": 1, "source": "\xff"}',
                          headers={**ADMIN, "Content-Type": "application/json"})
    assert assert_problem(answer, 422, "validation_error")["errors"][0]["type"] == "json_invalid"


def test_every_error_an_operation_answers_is_documented_as_a_problem(gw):
    spec = gw.http.get("/openapi.json").json()
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            expected = {"413", "422"} if "requestBody" in operation else set()
            if operation.get("security"):
                expected |= {"401", "429"}
            assert expected <= set(responses), f"{method} {path} lacks {expected - set(responses)}"
            for status, response in responses.items():
                if status.startswith(("4", "5")):
                    assert list(response["content"]) == ["application/problem+json"], f"{method} {path} {status}"


@pytest.mark.parametrize("url", ["http://127.0.0.1/a.png", "http://[::1]/a.png", "http://169.254.169.254/latest/",
                                 "http://localhost:8080/a.png", "http://10.0.0.7/a.png", "file:///etc/passwd"])
def test_media_on_internal_hosts_are_refused_when_scheduled(gw, ready, url):
    ws, key, account = ready
    answer = gw.api.schedule(ws, key, [account], media_urls=[url])
    assert ["body", "media_urls", 0] in [e["loc"] for e in assert_problem(answer, 422, "validation_error")["errors"]]


def test_a_min_position_no_decision_of_the_workspace_has_is_refused_at_once(gw, ready):
    ws, key, account = ready
    _, other = gw.api.open_workspace("b")
    connected = gw.http.post("/v1/workspaces/b/social-accounts", json={"platform": "sandbox", "handle": "b"},
                             headers=other)
    theirs = connected.json()["position"]  # a decision of workspace b, after every one of a
    gw.deps.read_wait_s = 30  # were it to wait, the test would notice
    for min_position in (theirs, 10**18, 2**63 - 1):
        started = datetime.now(UTC)
        answer = gw.get(f"/v1/workspaces/{ws}/queue?min_position={min_position}", headers=key)
        assert_problem(answer, 422, "unknown_position")
        assert (datetime.now(UTC) - started).total_seconds() < 5
    assert_problem(gw.get(f"/v1/workspaces/{ws}/queue?min_position={2**63}", headers=key), 422, "validation_error")
    mine = gw.api.schedule(ws, key, [account]).json()["position"]
    assert gw.get(f"/v1/workspaces/{ws}/queue?min_position={mine}", headers=key).status_code == 200


@pytest.mark.parametrize("url", ["http://169.254.169.254", "http://localhost:3000", "http://[::1]",
                                 "http://10.0.0.5", "https://metadata.google.internal"])
def test_an_instance_url_herald_would_call_inside_is_refused_at_connect(gw, ready, url):
    ws, key, _ = ready

    def kept() -> int:
        with gw.pool.connection() as conn:
            return conn.execute("SELECT count(*) FROM account_credentials").fetchone()[0]

    before = kept()
    answer = gw.http.post(f"/v1/workspaces/{ws}/social-accounts", headers=key,
                          json={"platform": "mastodon", "handle": "x", "access_token": "t", "instance_url": url})
    assert_problem(answer, 422, "instance_url_not_allowed")
    oauth = gw.http.post(f"/v1/workspaces/{ws}/social-accounts/oauth/start", headers=key,
                         json={"platform": "mastodon", "redirect_uri": "https://app.example/cb", "instance_url": url})
    assert_problem(oauth, 422, "instance_url_not_allowed")
    assert kept() == before, "no token kept"
