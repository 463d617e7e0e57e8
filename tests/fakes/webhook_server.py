"""A fake Standard Webhooks receiver: verifies every delivery with the reference ``standardwebhooks``
library (an implementation independent of Herald's), drops duplicates by webhook-id as the spec asks
receivers to, and injects faults.

    POST /hooks/{name}    content-type application/json, webhook-id, webhook-timestamp, webhook-signature
                          (v1,<base64>); body {type, timestamp, data} → 200 {"id": <event id>}

A delivery missing a header, with a malformed one or a body that is not the documented envelope is a
violation. A signature that does not verify (wrong secret) or a timestamp outside the library's
tolerance is answered 401, as a receiver would. ``redirect_to`` makes the receiver answer 307.
Steps for faults: "deliver".

Spec: https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
"""

from __future__ import annotations

import base64
import json
import os
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.fakes.platform_server import FakePlatform, fault_response

SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
_SIGNATURE = re.compile(r"^(v1,[A-Za-z0-9+/=]+)( v1,[A-Za-z0-9+/=]+)*$")


class FakeReceiver(FakePlatform):
    name = "webhook"

    def __init__(self, secret: str = SECRET) -> None:
        self.verifier = Webhook(secret)
        self.deliveries: list[dict[str, Any]] = []  # every verified delivery
        self.events: dict[str, dict[str, Any]] = {}  # webhook-id → the event, acted on once
        self.redirect_to: str | None = None
        super().__init__()

    def url(self, name: str = "herald") -> str:
        return f"{self.base_url}/hooks/{name}"

    def routes(self, app: FastAPI) -> None:
        @app.post("/hooks/{name}")
        async def deliver(request: Request, name: str):
            self.seen(request, "deliver")
            body = await request.body()
            headers = {k: request.headers.get(k, "") for k in ("webhook-id", "webhook-timestamp", "webhook-signature")}
            if not all(headers.values()):
                return self.violation(f"missing Standard Webhooks headers: {headers}")
            if not headers["webhook-timestamp"].isdigit() or not _SIGNATURE.match(headers["webhook-signature"]):
                return self.violation(f"malformed webhook-timestamp or webhook-signature: {headers}")
            if not request.headers.get("content-type", "").startswith("application/json"):
                return self.violation("the payload is JSON")
            try:
                envelope = json.loads(body)
            except ValueError:
                return self.violation("the body is not JSON")
            if not isinstance(envelope, dict) or set(envelope) != {"type", "timestamp", "data"}:
                return self.violation(f"the payload is {{type, timestamp, data}}, got {sorted(envelope)}")
            try:
                self.verifier.verify(body, headers)
            except WebhookVerificationError as error:
                return JSONResponse({"error": f"signature: {error}"}, status_code=401)
            if self.redirect_to:
                return Response(status_code=307, headers={"Location": self.redirect_to})
            fault = self.take_fault("deliver")
            if fault and not fault.after_create and not fault.delay_s:
                return fault_response(fault)
            with self.lock:
                self.deliveries.append({"id": headers["webhook-id"], "envelope": envelope})
                event = self.events.setdefault(headers["webhook-id"], {"event_id": f"evt_{len(self.events) + 1}",
                                                                      "envelope": envelope})
            return await self.answer(fault, JSONResponse({"id": event["event_id"]}))
