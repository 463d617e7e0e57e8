"""A workspace's webhook endpoints: create (the secret shown once), list, rotate the secret,
test-send, re-enable, delete; the delivery log and the preferences per notice cause and channel.
See processors/notifications/webhooks.py and docs/notifications.md."""

# No `from __future__ import annotations`: FastAPI must see the endpoint-local Annotated aliases.
import json
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Annotated

import httpx
from fastapi import APIRouter, Depends, Query, Response

from gateway import auth
from gateway.deps import MinPosition, ResourceId, Shared, WorkspaceId
from gateway.problems import ProblemError, openapi_responses
from herald.crypto import TokenCipher
from herald.net.guarded import guarded_client
from processors.notifications import email, preferences, webhooks
from projections import notification_deliveries
from schemas import api


def router(shared: Shared) -> APIRouter:
    r = APIRouter(tags=["webhooks"])
    Caller = Annotated[auth.Principal, Depends(shared.principal)]
    pool, deps = shared.deps.pool, shared.deps
    clients: list[httpx.Client] = []
    lock = threading.Lock()

    def cipher() -> TokenCipher:
        if deps.credentials is None:
            raise ProblemError(503, "secrets_unavailable", "this gateway has no key to seal webhook secrets with")
        return deps.credentials.cipher

    def http() -> httpx.Client:
        with lock:
            if not clients:
                clients.append(guarded_client(allowed_networks=deps.outbound_allowed_networks, timeout_s=10.0))
            return clients[0]

    def found(workspace_id: str, endpoint_id: str) -> webhooks.Endpoint:
        with pool.connection() as conn:
            endpoint = webhooks.find(conn, workspace_id, endpoint_id)
        if endpoint is None:
            raise ProblemError(404, "unknown_webhook_endpoint", f"no webhook endpoint {endpoint_id}")
        return endpoint

    base = "/v1/workspaces/{workspace_id}/webhooks"

    @r.post(base, status_code=201, response_model=api.WebhookEndpointIssued, summary="Register a webhook endpoint",
            responses=openapi_responses(401, 403, 404, 422, 503),
            description="The `whsec_` secret is in this answer only; Herald keeps it sealed. The URL must be "
            "http(s) on a public host (checked now, and at every connection).")
    def create_endpoint(workspace_id: WorkspaceId, body: api.CreateWebhookEndpoint, caller: Caller):
        shared.within(caller, workspace_id, auth.WORKSPACE_WRITE)
        shared.outbound_url(body.url, "url")
        with pool.connection() as conn:
            row, secret = webhooks.create(conn, cipher(), endpoint_id=f"whep_{uuid.uuid4().hex}",
                                          workspace_id=workspace_id, url=body.url, description=body.description)
        return {**row, "secret": secret}

    @r.get(base, response_model=list[api.WebhookEndpoint], summary="The workspace's webhook endpoints",
           responses=openapi_responses(401, 404))
    def list_endpoints(workspace_id: WorkspaceId, caller: Caller):
        shared.within(caller, workspace_id)
        with pool.connection() as conn:
            return webhooks.listed(conn, workspace_id)

    @r.post(base + "/{endpoint_id}/rotate-secret", response_model=api.WebhookEndpointIssued,
            summary="Replace the signing secret", responses=openapi_responses(401, 403, 404, 422, 503),
            description="The new secret is in this answer only. During `overlap_s` every delivery carries both "
            "signatures (new first), space-separated, so receivers switch without losing deliveries.")
    def rotate_secret(workspace_id: WorkspaceId, endpoint_id: ResourceId, caller: Caller,
                      body: api.RotateWebhookSecret | None = None):
        shared.within(caller, workspace_id, auth.WORKSPACE_WRITE)
        overlap_s = (body or api.RotateWebhookSecret()).overlap_s
        with pool.connection() as conn:
            rotated = webhooks.rotate(conn, cipher(), workspace_id, endpoint_id, datetime.now(UTC), overlap_s)
        if rotated is None:
            raise ProblemError(404, "unknown_webhook_endpoint", f"no webhook endpoint {endpoint_id}")
        row, secret = rotated
        return {**row, "secret": secret}

    @r.post(base + "/{endpoint_id}/test", response_model=api.WebhookTestResult, summary="Send a test event now",
            responses=openapi_responses(401, 403, 404, 503),
            description="One signed `webhook.test` event, sent at once, not retried; the answer says what the "
            "receiver did.")
    def test_send(workspace_id: WorkspaceId, endpoint_id: ResourceId, caller: Caller):
        shared.within(caller, workspace_id, auth.WORKSPACE_WRITE)
        endpoint = found(workspace_id, endpoint_id)
        now = datetime.now(UTC)
        timestamp = int(time.time())
        msg_id = f"msg_test_{uuid.uuid4().hex}"
        body = json.dumps({"type": "webhook.test", "timestamp": now.isoformat().replace("+00:00", "Z"),
                           "data": {"workspace_id": workspace_id, "endpoint_id": endpoint_id}},
                          separators=(",", ":")).encode()
        outcome = webhooks.send(http(), endpoint, endpoint.secrets(cipher(), now), msg_id, timestamp, body,
                                deps.outbound_allowed_networks)
        return {"delivered": outcome.delivered, "status_code": outcome.status_code, "error": outcome.error,
                "webhook_id": msg_id}

    @r.post(base + "/{endpoint_id}/enable", response_model=api.WebhookEndpoint,
            summary="Re-enable an endpoint Herald disabled", responses=openapi_responses(401, 403, 404))
    def enable_endpoint(workspace_id: WorkspaceId, endpoint_id: ResourceId, caller: Caller):
        shared.within(caller, workspace_id, auth.WORKSPACE_WRITE)
        with pool.connection() as conn:
            row = webhooks.enable(conn, workspace_id, endpoint_id)
        if row is None:
            raise ProblemError(404, "unknown_webhook_endpoint", f"no webhook endpoint {endpoint_id}")
        return row

    @r.delete(base + "/{endpoint_id}", status_code=204, summary="Delete an endpoint",
              responses=openapi_responses(401, 403, 404))
    def delete_endpoint(workspace_id: WorkspaceId, endpoint_id: ResourceId, caller: Caller):
        shared.within(caller, workspace_id, auth.WORKSPACE_WRITE)
        with pool.connection() as conn:
            if not webhooks.delete(conn, workspace_id, endpoint_id):
                raise ProblemError(404, "unknown_webhook_endpoint", f"no webhook endpoint {endpoint_id}")
        return Response(status_code=204)

    @r.get("/v1/workspaces/{workspace_id}/notifications/deliveries", response_model=list[api.NotificationDelivery],
           summary="The delivery log, latest first", responses=openapi_responses(401, 404, 422, 503),
           description="Read from the events of each delivery (queued, sent, failed, gave_up). Per notice: "
           "`event_id` (the notice event's id, in the payload's `data.event_id`; a digest is listed under each "
           "notice it carries); per cause: `cause`.")
    def delivery_log(workspace_id: WorkspaceId, caller: Caller, response: Response,
                     event_id: Annotated[str | None, Query(max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")] = None,
                     cause: api.NoticeCause | None = None, limit: Annotated[int, Query(ge=1, le=500)] = 100,
                     min_position: MinPosition = None):
        with shared.read(shared.within(caller, workspace_id), min_position, response) as conn:
            return notification_deliveries.read_log(conn, workspace_id, event_id=event_id, cause=cause, limit=limit)

    @r.get("/v1/workspaces/{workspace_id}/notifications/preferences", response_model=list[api.NotificationPreference],
           summary="Which notices go to which channel", responses=openapi_responses(401, 404))
    def list_preferences(workspace_id: WorkspaceId, caller: Caller):
        shared.within(caller, workspace_id)
        with pool.connection() as conn:
            return preferences.listed(conn, workspace_id)

    @r.put("/v1/workspaces/{workspace_id}/notifications/preferences", response_model=list[api.NotificationPreference],
           summary="Turn a notice cause on or off for a channel", responses=openapi_responses(401, 403, 404, 422),
           description="Every cause is on for every channel until turned off. Applies to notices raised from now on.")
    def set_preference(workspace_id: WorkspaceId, body: api.NotificationPreference, caller: Caller):
        shared.within(caller, workspace_id, auth.WORKSPACE_WRITE)
        with pool.connection() as conn:
            preferences.put(conn, workspace_id, body.cause, body.channel, body.enabled)
            return preferences.listed(conn, workspace_id)

    recipients = "/v1/workspaces/{workspace_id}/notifications/email-recipients"

    @r.post(recipients, status_code=201, response_model=api.EmailRecipient, summary="Send notices to an address",
            responses=openapi_responses(401, 403, 404, 422))
    def add_recipient(workspace_id: WorkspaceId, body: api.AddEmailRecipient, caller: Caller):
        shared.within(caller, workspace_id, auth.WORKSPACE_WRITE)
        with pool.connection() as conn:
            return email.add(conn, workspace_id, f"rcpt_{uuid.uuid4().hex}", body.address)

    @r.get(recipients, response_model=list[api.EmailRecipient], summary="Who receives notices by email",
           responses=openapi_responses(401, 404))
    def list_recipients(workspace_id: WorkspaceId, caller: Caller):
        shared.within(caller, workspace_id)
        with pool.connection() as conn:
            return email.listed(conn, workspace_id)

    @r.delete(recipients + "/{recipient_id}", status_code=204, summary="Stop sending notices to an address",
              responses=openapi_responses(401, 403, 404))
    def remove_recipient(workspace_id: WorkspaceId, recipient_id: ResourceId, caller: Caller):
        shared.within(caller, workspace_id, auth.WORKSPACE_WRITE)
        with pool.connection() as conn:
            if not email.remove(conn, workspace_id, recipient_id):
                raise ProblemError(404, "unknown_email_recipient", f"no email recipient {recipient_id}")
        return Response(status_code=204)

    def unsubscribe(token: str):
        try:
            workspace_id, cause = email.unsubscribed_by(cipher(), token)
        except ValueError:
            raise ProblemError(422, "invalid_unsubscribe_token", "this unsubscribe link is not Herald's") from None
        with pool.connection() as conn:
            preferences.put(conn, workspace_id, cause, "email", False)
        return {"workspace_id": workspace_id, "cause": cause, "channel": "email", "enabled": False}

    Token = Annotated[str, Query(min_length=1, max_length=1000)]

    @r.get("/v1/unsubscribe", summary="Unsubscribe link of a notice email", responses=openapi_responses(422, 503),
           description="Turns the notice type off for the workspace's email channel. The token is in the email.")
    def unsubscribe_link(token: Token):
        return unsubscribe(token)

    @r.post("/v1/unsubscribe", summary="One-click unsubscribe (RFC 8058)", responses=openapi_responses(422, 503))
    def unsubscribe_one_click(token: Token):
        return unsubscribe(token)

    return r
