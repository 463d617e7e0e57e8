"""The gateway's HTTP API as the tests drive it: a workspace opened with the admin key, accounts
connected and posts scheduled with the workspace's own key, credits granted with the admin key
(a workspace's own key cannot grant)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

ADMIN_KEY = "test-admin-key"  # the admin key of the ``settings`` fixture


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class Api:
    """Helpers over an HTTP client (a TestClient, or an httpx.Client on a running gateway). Each
    POST made through them is kept in ``sent`` as (path, body, headers), to be sent again."""

    def __init__(self, http: Any, admin_key: str = ADMIN_KEY) -> None:
        self.http = http
        self.admin = bearer(admin_key)
        self.sent: list[tuple[str, dict, dict]] = []

    def request(self, path: str, body: dict, headers: dict, *, idempotency_key: str | None = None) -> Any:
        if idempotency_key is not None:
            headers = {**headers, "Idempotency-Key": idempotency_key}
        self.sent.append((path, body, headers))
        return self.http.post(path, json=body, headers=headers)

    def create(self, path: str, body: dict, headers: dict, *, idempotency_key: str | None = None) -> dict:
        """POST that must answer 201 Created; returns the body."""
        response = self.request(path, body, headers, idempotency_key=idempotency_key)
        assert response.status_code == 201, response.text
        return response.json()

    def open_workspace(self, workspace_id: str | None = None, *, name: str | None = None,
                       idempotency_key: str | None = None, **body: Any) -> tuple[str, dict[str, str]]:
        """Opens a workspace with the admin key: (its id, the Authorization header of its key)."""
        body = {"name": name or workspace_id or "Workspace", **body}
        if workspace_id is not None:
            body["workspace_id"] = workspace_id
        opened = self.create("/v1/workspaces", body, self.admin, idempotency_key=idempotency_key)
        return opened["workspace_id"], bearer(opened["api_key"])

    def connect(self, ws: str, key: dict, handle: str = "acme", *, platform: str = "sandbox",
                access_token: str = "s3cret-token", idempotency_key: str | None = None, **body: Any) -> str:
        """Connects a social account; returns its id."""
        body = {"platform": platform, "handle": handle, "access_token": access_token, **body}
        return self.create(f"/v1/workspaces/{ws}/social-accounts", body, key,
                           idempotency_key=idempotency_key)["social_account_id"]

    def grant(self, ws: str, key: dict, amount: int, *, idempotency_key: str | None = None, **body: Any) -> dict:
        """Grants credits with the admin key (a workspace's own key cannot: it lacks credits:grant);
        ``key`` is kept so callers read as before."""
        return self.create(f"/v1/workspaces/{ws}/credits/grants", {"amount": amount, **body}, self.admin,
                           idempotency_key=idempotency_key)

    def schedule(self, ws: str, key: dict, destinations: list[str], *, text: str = "Hello", in_s: float = 3600,
                 publish_at: datetime | None = None, idempotency_key: str | None = None, **extra: Any) -> Any:
        """Schedules a post due ``in_s`` seconds from now (or at ``publish_at``); returns the
        response, whatever it is (rejections are what some tests look at)."""
        due = publish_at or datetime.now(UTC) + timedelta(seconds=in_s)
        body = {"text": text, "destinations": destinations, "publish_at": due.isoformat(), **extra}
        return self.request(f"/v1/workspaces/{ws}/posts", body, key, idempotency_key=idempotency_key)
