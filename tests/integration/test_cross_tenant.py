"""Cross-tenant: every operation that names a workspace, called with workspace B's ids and A's key,
answers 404 (as for ids that do not exist, so ids do not leak) and changes nothing of B's. The
operations are read from the OpenAPI description, so a new endpoint is covered or this fails."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.test_gateway import ADMIN
from tests.integration.test_gateway import gw  # noqa: F401 - the fixtures
from tests.support import bearer

pytestmark = pytest.mark.integration


def test_no_operation_reaches_another_workspace(gw):
    _, key_a = gw.api.open_workspace("a", tier="pro")
    account_a = gw.api.connect("a", key_a)
    _, key_b = gw.api.open_workspace("b", tier="pro")
    account_b = gw.api.connect("b", key_b)
    gw.api.grant("b", key_b, 5)
    gw.api.grant("a", key_a, 5)
    post_b = gw.api.schedule("b", key_b, [account_b]).json()["post_id"]
    spare_b = gw.http.post("/v1/api-keys", json={"scopes": ["workspace:read"]}, headers=key_b).json()
    rcpt_b = gw.http.post("/v1/workspaces/b/notifications/email-recipients", json={"address": "ops@b.example"},
                          headers=key_b).json()
    hook_b = gw.http.post("/v1/workspaces/b/webhooks", json={"url": "https://hooks.example.com/b"}, headers=key_b).json()
    # A's own key, made as strong as a workspace key can be from the admin: every scope but admin.
    strong_a = bearer(gw.http.post("/v1/api-keys", headers=ADMIN, json={
        "workspace_id": "a", "scopes": ["workspace:read", "workspace:write", "credits:grant", "analytics:read",
                                     "approver"],
    }).json()["api_key"])
    due = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    ids = {"workspace_id": "b", "post_id": post_b, "social_account_id": account_b, "key_id": spare_b["key_id"],
           "destination_id": account_b, "endpoint_id": hook_b["endpoint_id"],
           "recipient_id": rcpt_b["recipient_id"], "slot_id": "slot-b", "series_id": "series-b"}
    bodies = {
        ("post", "/v1/workspaces/{workspace_id}/social-accounts"): {"platform": "sandbox", "handle": "x"},
        ("post", "/v1/workspaces/{workspace_id}/credits/grants"): {"amount": 100},
        ("post", "/v1/workspaces/{workspace_id}/posts"): {"text": "x", "destinations": [account_a], "publish_at": due},
        ("post", "/v1/workspaces/{workspace_id}/posts/{post_id}/cancel"): {},
        ("post", "/v1/api-keys/{key_id}/rotate"): {},
        ("post", "/v1/workspaces/{workspace_id}/social-accounts/oauth/start"):
            {"platform": "mastodon", "redirect_uri": "https://app.example/back"},
        ("post", "/v1/workspaces/{workspace_id}/social-accounts/oauth/callback"): {"state": "s", "code": "c"},
        ("post", "/v1/admin/workspaces/{workspace_id}/posts/{post_id}/destinations/{destination_id}/resolution"):
            {"attempt": 1, "resolution": "not_published"},
        ("post", "/v1/workspaces/{workspace_id}/tier"): {"tier": "free"},
        ("put", "/v1/workspaces/{workspace_id}/limit-overrides"): {"limit_overrides": {}},
        ("put", "/v1/workspaces/{workspace_id}/publishing-policy"): {"missed_window_minutes": 10},
        ("post", "/v1/workspaces/{workspace_id}/limit-overrides"): {"limit_overrides": {}},
        ("post", "/v1/workspaces/{workspace_id}/notifications/read"): {"notice_ids": ["n-1"]},
        ("post", "/v1/workspaces/{workspace_id}/webhooks"): {"url": "https://hooks.example.com/a"},
        ("post", "/v1/workspaces/{workspace_id}/webhooks/{endpoint_id}/rotate-secret"): {},
        ("post", "/v1/workspaces/{workspace_id}/notifications/email-recipients"): {"address": "a@a.example"},
        ("put", "/v1/workspaces/{workspace_id}/notifications/preferences"):
            {"cause": "low_credits", "channel": "webhook", "enabled": False},
        ("post", "/v1/workspaces/{workspace_id}/generations"): {"topic": "x", "platforms": ["x"]},
        ("put", "/v1/workspaces/{workspace_id}/brand-voice"): {"tone": "x"},
        ("put", "/v1/workspaces/{workspace_id}/social-accounts/{social_account_id}/posting-schedule"):
            {"posts_per_week": 3, "times": ["09:00"]},
        ("post", "/v1/workspaces/{workspace_id}/slots/top-off"): {},
        ("post", "/v1/workspaces/{workspace_id}/slots/{slot_id}/content"): {"text": "x"},
        ("put", "/v1/workspaces/{workspace_id}/series/{series_id}"):
            {"rrule": "FREQ=DAILY", "starts_at": "2030-01-01T09:00:00", "destinations": [account_a],
             "items": [{"item_id": "i", "text": "x"}]},
        ("post", "/v1/workspaces/{workspace_id}/drafts"): {"text": "x", "destinations": [account_a]},
        ("post", "/v1/workspaces/{workspace_id}/posts/{post_id}/submit"): {},
        ("post", "/v1/workspaces/{workspace_id}/posts/{post_id}/approve"): {},
        ("post", "/v1/workspaces/{workspace_id}/posts/{post_id}/reject"): {"comment": "no"},
        ("patch", "/v1/workspaces/{workspace_id}/posts/{post_id}"): {"text": "changed"},
        ("post", "/v1/workspaces/{workspace_id}/posts/{post_id}/reschedule"): {"publish_at": due},
        ("post", "/v1/workspaces/{workspace_id}/posts/{post_id}/publish-now"): {},
        ("put", "/v1/workspaces/{workspace_id}/content-policy"): {"requires_approval": True},
    }
    queries = {("get", "/v1/workspaces/{workspace_id}/limits/check"): {"action": "schedule", "platform": "sandbox"}}
    before = {path: gw.get(path, headers=ADMIN).json() for path in
              ("/v1/workspaces/b/wallet", f"/v1/workspaces/b/posts/{post_b}", "/v1/workspaces/b/social-accounts",
                      "/v1/workspaces/b/webhooks", "/v1/workspaces/b/notifications/preferences",
                      "/v1/workspaces/b/notifications/email-recipients")}

    missing = {name: f"no-such-{name.replace('_', '-')}" for name in ids}

    def problem(answer) -> tuple[int, str]:
        return answer.status_code, answer.json().get("reason_code")

    spec = gw.http.get("/openapi.json").json()
    called = []
    for template, item in spec["paths"].items():
        for method in item:
            if "{workspace_id}" not in template and "{key_id}" not in template:
                continue
            path = template.format(**ids)
            # Admin operations refuse every other key alike (403, whatever the ids); the rest answer 404.
            refused = 403 if template.startswith("/v1/admin/") else 404
            for key in (key_a, strong_a):
                kwargs = {"headers": key, "json": bodies.get((method, template)),
                          "params": queries.get((method, template))}
                answer = gw.http.request(method.upper(), path, **kwargs)
                assert answer.status_code == refused, f"{method.upper()} {path}: {answer.status_code} {answer.text}"
                # The same answer as for ids that exist nowhere: B's ids do not leak.
                nowhere = gw.http.request(method.upper(), template.format(**missing), **kwargs)
                assert problem(answer) == problem(nowhere), f"{method.upper()} {path}: {answer.text} {nowhere.text}"
            called.append((method, template))
    assert len(called) >= 12, called

    # The other doors: the generic inlet, listing keys, creating a key for B.
    envelope = {"command_id": "x", "type": "cancel_post.v1", "workspace_id": "b", "issued_by": "a",
                "issued_at": datetime.now(UTC).isoformat(), "payload": {"post_id": post_b}}
    assert gw.http.post("/v1/commands", json=envelope, headers=strong_a).status_code == 404
    assert gw.http.get("/v1/api-keys?workspace_id=b", headers=strong_a).status_code == 404
    assert gw.http.post("/v1/api-keys", json={"workspace_id": "b", "scopes": ["workspace:read"]},
                        headers=strong_a).status_code == 404
    assert gw.submitted == []

    after = {path: gw.get(path, headers=ADMIN).json() for path in before}
    assert after == before, "nothing of B's changed"
    assert gw.get("/v1/workspaces/b", headers=bearer(spare_b["api_key"])).status_code == 200, "B's key still works"
