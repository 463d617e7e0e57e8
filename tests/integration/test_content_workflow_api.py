"""The content workflow over HTTP: each endpoint, its answers and its problem documents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.test_gateway import ADMIN, assert_problem
from tests.integration.test_gateway import gw  # noqa: F401 - the fixtures
from tests.support import bearer

pytestmark = pytest.mark.integration


def soon(hours: float = 1) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


@pytest.fixture
def ws(gw):
    """Workspace "a" (pro) with two sandbox accounts, 10 credits, its own key and an editor's key
    (read and write, not approver): (key, editor, account 1, account 2)."""
    _, key = gw.api.open_workspace("a", tier="pro")
    one, two = gw.api.connect("a", key, "one"), gw.api.connect("a", key, "two")
    gw.api.grant("a", key, 10)
    made = gw.http.post("/v1/api-keys", json={"scopes": ["workspace:read", "workspace:write"]}, headers=key)
    assert made.status_code == 201, made.text
    return key, bearer(made.json()["api_key"]), one, two


def held(gw, key) -> int:
    return gw.get("/v1/workspaces/a/wallet", headers=key).json()["held"]


def test_a_draft_is_created_read_listed_and_submitted(gw, ws):
    key, editor, one, two = ws
    created = gw.http.post("/v1/workspaces/a/drafts", headers=editor, json={
        "post_id": "p1", "text": "Hello", "destinations": [one, two], "publish_at": soon(),
        "destination_text": {two: "Hello two"}, "destination_media": {one: ["https://example.com/a.png"]}})
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "draft" and created.headers["Location"] == "/v1/workspaces/a/posts/p1"
    post = gw.get("/v1/workspaces/a/posts/p1", headers=editor).json()
    assert post["status"] == "draft" and post["last_change"]["reason"] == "drafted"
    assert [(d["destination_id"], d["text"], d["media_urls"]) for d in post["destinations"]] == [
        (one, "Hello", ["https://example.com/a.png"]), (two, "Hello two", None)]
    assert held(gw, key) == 0

    submitted = gw.http.post("/v1/workspaces/a/posts/p1/submit", headers=editor, json={})
    assert submitted.status_code == 200 and submitted.json()["status"] == "scheduled", submitted.text
    assert held(gw, key) == 2
    post = gw.get("/v1/workspaces/a/posts/p1", headers=editor).json()
    assert post["status"] == "scheduled" and {d["status"] for d in post["destinations"]} == {"pending"}
    assert_problem(gw.http.post("/v1/workspaces/a/posts/p1/submit", headers=editor), 409, "post_not_draft")


def test_draft_errors(gw, ws):
    key, editor, one, _ = ws
    assert_problem(gw.http.post("/v1/workspaces/a/drafts", headers=editor, json={"text": "x", "destinations": ["nope"]}),
                   422, "unknown_social_account")
    assert_problem(gw.http.post("/v1/workspaces/a/drafts", headers=editor, json={"text": "x", "stage": "published"}),
                   422, "validation_error")
    gw.http.post("/v1/workspaces/a/drafts", headers=editor, json={"post_id": "idea", "stage": "idea", "text": "x"})
    assert_problem(gw.http.post("/v1/workspaces/a/drafts", headers=editor, json={"post_id": "idea", "text": "x"}),
                   409, "post_exists")
    assert_problem(gw.http.post("/v1/workspaces/a/posts/idea/submit", headers=editor), 409, "post_not_draft")
    gw.http.post("/v1/workspaces/a/drafts", headers=editor, json={"post_id": "empty", "text": "x"})
    assert_problem(gw.http.post("/v1/workspaces/a/posts/empty/submit", headers=editor), 422, "no_destinations")
    gw.http.post("/v1/workspaces/a/drafts", headers=editor, json={"post_id": "long", "text": "x" * 5001,
                                                                   "destinations": [one]})
    assert_problem(gw.http.post("/v1/workspaces/a/posts/long/submit", headers=editor), 422, "content_invalid")
    assert_problem(gw.http.post("/v1/workspaces/a/posts/nope/submit", headers=editor), 404, "unknown_post")
    assert held(gw, key) == 0


def test_approval_needs_the_approver_scope_and_rejection_returns_to_draft(gw, ws):
    key, editor, one, _ = ws
    assert_problem(gw.http.put("/v1/workspaces/a/content-policy", headers=editor, json={"requires_approval": True}),
                   403, "forbidden")
    policy = gw.http.put("/v1/workspaces/a/content-policy", headers=key, json={"requires_approval": True})
    assert policy.status_code == 200 and policy.json()["requires_approval"] is True, policy.text
    shown = gw.get("/v1/workspaces/a", headers=editor).json()
    assert shown["requires_approval"] is True and shown["disconnect_waiting"] == "cancel"

    gw.http.post("/v1/workspaces/a/drafts", headers=editor, json={"post_id": "p1", "text": "Hi", "destinations": [one],
                                                                   "publish_at": soon()})
    assert gw.http.post("/v1/workspaces/a/posts/p1/submit", headers=editor).json()["status"] == "needs_approval"
    assert held(gw, key) == 0
    assert_problem(gw.http.post("/v1/workspaces/a/posts/p1/approve", headers=editor), 403, "forbidden")
    assert_problem(gw.http.post("/v1/workspaces/a/posts/p1/reject", headers=key, json={}), 422, "validation_error")
    rejected = gw.http.post("/v1/workspaces/a/posts/p1/reject", headers=key, json={"comment": "add a link"})
    assert rejected.status_code == 200 and rejected.json()["status"] == "draft", rejected.text
    post = gw.get("/v1/workspaces/a/posts/p1", headers=editor).json()
    assert post["status"] == "draft" and post["last_change"]["reason"] == "add a link"
    assert_problem(gw.http.post("/v1/workspaces/a/posts/p1/approve", headers=key), 409, "post_not_awaiting_approval")

    gw.http.post("/v1/workspaces/a/posts/p1/submit", headers=editor)
    approved = gw.http.post("/v1/workspaces/a/posts/p1/approve", headers=key, json={"comment": "ok"})
    assert approved.status_code == 200 and approved.json()["status"] == "scheduled", approved.text
    assert held(gw, key) == 1
    # schedule_post in an approval workspace lands in needs_approval
    scheduled = gw.api.schedule("a", editor, [one])
    assert scheduled.status_code == 201 and scheduled.json()["status"] == "needs_approval", scheduled.text


def test_edit_reschedule_publish_now_and_cancel_a_destination(gw, ws):
    key, editor, one, two = ws
    gw.http.post("/v1/workspaces/a/drafts", headers=editor, json={"post_id": "p1", "text": "Hi", "destinations": [one],
                                                                   "publish_at": soon()})
    gw.http.post("/v1/workspaces/a/posts/p1/submit", headers=editor)

    edited = gw.http.patch("/v1/workspaces/a/posts/p1", headers=editor,
                           json={"text": "Hi there", "add_destinations": [two], "destination_text": {two: "Yo"}})
    assert edited.status_code == 200 and edited.json()["destinations"] == [one, two], edited.text
    assert held(gw, key) == 2
    post = gw.get("/v1/workspaces/a/posts/p1", headers=editor).json()
    assert [(d["destination_id"], d["text"]) for d in post["destinations"]] == [(one, "Hi there"), (two, "Yo")]
    assert_problem(gw.http.patch("/v1/workspaces/a/posts/p1", headers=editor, json={"text": "x" * 5001}),
                   422, "content_invalid")
    assert_problem(gw.http.patch("/v1/workspaces/a/posts/p1", headers=editor, json={"add_destinations": [two]}),
                   409, "destination_exists")
    assert_problem(gw.http.patch("/v1/workspaces/a/posts/p1", headers=editor, json={"stage": "idea"}),
                   409, "post_not_draft")
    assert_problem(gw.http.patch("/v1/workspaces/a/posts/p1", headers=editor,
                                 json={"add_destinations": [one], "remove_destinations": [one]}), 422, "validation_error")

    later = soon(5)
    moved = gw.http.post("/v1/workspaces/a/posts/p1/reschedule", headers=editor, json={"publish_at": later})
    assert moved.status_code == 200 and len(moved.json()["released_holds"]) == 2, moved.text
    assert held(gw, key) == 2
    assert_problem(gw.http.post("/v1/workspaces/a/posts/p1/reschedule", headers=editor,
                                json={"publish_at": "2000-01-01T00:00:00Z"}), 422, "publish_at_in_past")

    cancelled = gw.http.post("/v1/workspaces/a/posts/p1/cancel", headers=editor, json={"destination_ids": [two]})
    assert cancelled.status_code == 200 and cancelled.json()["cancelled"] == [two], cancelled.text
    assert held(gw, key) == 1
    assert_problem(gw.http.post("/v1/workspaces/a/posts/p1/cancel", headers=editor, json={"destination_ids": [two]}),
                   409, "post_not_cancellable")

    now = gw.http.post("/v1/workspaces/a/posts/p1/publish-now", headers=editor)
    assert now.status_code == 200, now.text
    post = gw.get("/v1/workspaces/a/posts/p1", headers=editor).json()
    due = datetime.fromisoformat(post["destinations"][0]["due_at"])
    assert due <= datetime.now(UTC) and post["destinations"][1]["status"] == "cancelled"

    # once publishing has started, the post can no longer be changed
    gw.http.post("/v1/commands", headers=ADMIN, json={
        "command_id": "start-1", "type": "start_publish_attempt.v1", "workspace_id": "a", "issued_by": "test",
        "issued_at": datetime.now(UTC).isoformat(), "payload": {"post_id": "p1", "destination_id": one, "attempt": 1}})
    gw.app.handle(gw.submitted[-1])
    assert_problem(gw.http.patch("/v1/workspaces/a/posts/p1", headers=editor, json={"text": "late"}),
                   409, "destination_started")
    assert_problem(gw.http.post("/v1/workspaces/a/posts/p1/publish-now", headers=editor), 409, "destination_started")

    gw.http.post("/v1/workspaces/a/drafts", headers=editor, json={"post_id": "d", "text": "x"})
    assert_problem(gw.http.post("/v1/workspaces/a/posts/d/publish-now", headers=editor), 409, "post_not_editable")


def test_list_posts_filters_and_pages(gw, ws):
    key, editor, one, two = ws
    gw.http.post("/v1/workspaces/a/drafts", headers=editor, json={"post_id": "idea", "stage": "idea", "text": "x"})
    gw.http.post("/v1/workspaces/a/drafts", headers=editor, json={"post_id": "d1", "text": "x", "destinations": [two],
                                                                   "publish_at": soon(30)})
    for n in range(3):
        gw.api.schedule("a", editor, [one], post_id=f"s{n}", in_s=3600 * (n + 1))
    gw.http.post("/v1/workspaces/a/posts/s2/cancel", headers=editor)

    def ids(**params) -> list[str]:
        answer = gw.get("/v1/workspaces/a/posts", headers=editor, params=params)
        assert answer.status_code == 200, answer.text
        return [p["post_id"] for p in answer.json()["posts"]]

    assert ids() == ["s2", "s1", "s0", "d1", "idea"]  # newest first
    assert ids(status="scheduled") == ["s1", "s0"]
    assert ids(status=["draft", "idea"]) == ["d1", "idea"]
    assert ids(status="cancelled") == ["s2"]
    assert ids(social_account_id=two) == ["d1"]
    assert ids(platform="sandbox") == ["s2", "s1", "s0", "d1"]
    assert ids(publish_from=soon(1.5), publish_to=soon(10)) == ["s2", "s1"]

    first = gw.get("/v1/workspaces/a/posts", headers=editor, params={"limit": 2}).json()
    assert [p["post_id"] for p in first["posts"]] == ["s2", "s1"] and first["next_cursor"]
    rest = gw.get("/v1/workspaces/a/posts", headers=editor, params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [p["post_id"] for p in rest["posts"]] == ["s0", "d1"]
    assert_problem(gw.get("/v1/workspaces/a/posts", headers=editor, params={"status": "nope"}), 422, "invalid_query")
    assert_problem(gw.get("/v1/workspaces/a/posts", headers=editor, params={"cursor": "garbage"}), 422,
                   "invalid_query")


def test_disconnect_lists_what_it_cancelled_and_shows_the_account_disconnected(gw, ws):
    key, editor, one, two = ws
    gw.api.schedule("a", editor, [one, two], post_id="p1")
    answer = gw.http.post(f"/v1/workspaces/a/social-accounts/{one}/disconnect", headers=editor, json={})
    assert answer.status_code == 200, answer.text
    assert answer.json()["cancelled"] == [{"post_id": "p1", "destination_id": one}]
    assert held(gw, key) == 1
    accounts = {a["social_account_id"]: a["status"] for a in
                gw.get("/v1/workspaces/a/social-accounts", headers=editor).json()["social_accounts"]}
    assert accounts == {one: "disconnected", two: "active"}
    assert_problem(gw.http.post(f"/v1/workspaces/a/social-accounts/{one}/disconnect", headers=editor), 422,
                   "unknown_social_account")
    assert_problem(gw.http.post("/v1/workspaces/a/social-accounts/nope/disconnect", headers=editor), 422,
                   "unknown_social_account")


def test_disconnect_with_hold_keeps_the_destinations_on_hold(gw, ws):
    key, editor, one, two = ws
    gw.api.schedule("a", editor, [one, two], post_id="p1")
    policy = gw.http.put("/v1/workspaces/a/content-policy", headers=key,
                         json={"requires_approval": False, "disconnect_waiting": "hold"})
    assert policy.status_code == 200 and policy.json()["disconnect_waiting"] == "hold", policy.text
    assert gw.get("/v1/workspaces/a", headers=editor).json()["disconnect_waiting"] == "hold"
    answer = gw.http.post(f"/v1/workspaces/a/social-accounts/{one}/disconnect", headers=editor,
                          json={"reason": "agency left"})  # the workspace's choice: hold
    assert answer.status_code == 200, answer.text
    assert answer.json()["on_hold"] == [{"post_id": "p1", "destination_id": one}] and answer.json()["cancelled"] == []
    assert held(gw, key) == 1
    post = gw.get("/v1/workspaces/a/posts/p1", headers=editor).json()
    assert {d["destination_id"]: d["status"] for d in post["destinations"]} == {one: "on_hold", two: "pending"}
    gw.http.post("/v1/workspaces/a/posts/p1/cancel", headers=editor, json={"destination_ids": [two]})
    listed = gw.get("/v1/workspaces/a/posts", headers=editor, params={"status": "on_hold"}).json()
    assert [p["post_id"] for p in listed["posts"]] == ["p1"]
    assert_problem(gw.http.post(f"/v1/workspaces/a/social-accounts/{two}/disconnect", headers=editor,
                                json={"waiting": "later"}), 422, "validation_error")


def test_reschedule_and_publish_now_of_one_destination(gw, ws):
    key, editor, one, two = ws
    gw.http.post("/v1/workspaces/a/drafts", headers=editor, json={"post_id": "p1", "text": "Hi",
                                                                   "destinations": [one, two], "publish_at": soon()})
    gw.http.post("/v1/workspaces/a/posts/p1/submit", headers=editor)

    later = soon(5)
    moved = gw.http.post("/v1/workspaces/a/posts/p1/reschedule", headers=editor,
                         json={"publish_at": later, "destination_ids": [two]})
    assert moved.status_code == 200, moved.text
    assert moved.json()["destinations"] == [two] and len(moved.json()["released_holds"]) == 1
    assert datetime.fromisoformat(moved.json()["due_at"][two]) == datetime.fromisoformat(later)
    assert held(gw, key) == 2
    post = gw.get("/v1/workspaces/a/posts/p1", headers=editor).json()
    due = {d["destination_id"]: datetime.fromisoformat(d["due_at"]) for d in post["destinations"]}
    assert due[two] == datetime.fromisoformat(later) and due[one] < datetime.now(UTC) + timedelta(hours=2)
    assert_problem(gw.http.post("/v1/workspaces/a/posts/p1/reschedule", headers=editor,
                                json={"publish_at": later, "destination_ids": []}), 422, "validation_error")

    now = gw.http.post("/v1/workspaces/a/posts/p1/publish-now", headers=editor, json={"destination_ids": [one]})
    assert now.status_code == 200 and now.json()["destinations"] == [one], now.text
    post = gw.get("/v1/workspaces/a/posts/p1", headers=editor).json()
    due = {d["destination_id"]: datetime.fromisoformat(d["due_at"]) for d in post["destinations"]}
    assert due[one] <= datetime.now(UTC) and due[two] == datetime.fromisoformat(later)
    assert held(gw, key) == 2

    # one has started: it can no longer be moved, two still can
    gw.http.post("/v1/commands", headers=ADMIN, json={
        "command_id": "start-one", "type": "start_publish_attempt.v1", "workspace_id": "a", "issued_by": "test",
        "issued_at": datetime.now(UTC).isoformat(), "payload": {"post_id": "p1", "destination_id": one, "attempt": 1}})
    gw.app.handle(gw.submitted[-1])
    assert_problem(gw.http.post("/v1/workspaces/a/posts/p1/publish-now", headers=editor,
                                json={"destination_ids": [one]}), 409, "destination_started")
    assert_problem(gw.http.post("/v1/workspaces/a/posts/p1/reschedule", headers=editor,
                                json={"publish_at": soon(7), "destination_ids": [one]}), 409, "destination_started")
    again = gw.http.post("/v1/workspaces/a/posts/p1/publish-now", headers=editor, json={"destination_ids": [two]})
    assert again.status_code == 200, again.text
