"""A fake Bluesky PDS: the XRPC subset Herald uses, checked against the docs, with faults.

    POST /xrpc/com.atproto.server.createSession   {identifier, password} → accessJwt, refreshJwt, did, handle
    POST /xrpc/com.atproto.server.refreshSession  Bearer refreshJwt (rotated: the old one is refused after use)
    GET  /xrpc/com.atproto.identity.resolveHandle ?handle → {did}, 400 for an unknown handle
    POST /xrpc/com.atproto.repo.uploadBlob        Bearer accessJwt, raw bytes, Content-Type image/* or video/*
    POST /xrpc/com.atproto.repo.createRecord      {repo (the session's DID), collection app.bsky.feed.post,
                                                  rkey (a TID), record} — record checked: $type, text
                                                  (≤ 300 graphemes, ≤ 3000 bytes), createdAt (RFC 3339),
                                                  facets (byte ranges inside the text, a link facet's bytes
                                                  are its URI, a mention's are "@handle" of that DID),
                                                  embed images (uploaded image blobs, ≤ 4) or video (one
                                                  uploaded video blob ≤ 100 MB)
    GET  /xrpc/com.atproto.repo.getRecord         ?repo&collection&rkey → {uri, cid, value} or 400 RecordNotFound

Errors have the XRPC shape {"error": ..., "message": ...}; an expired access token is 400
ExpiredToken (``expire_access_tokens``); 429s carry RateLimit-Limit/Remaining/Reset/Policy
(``rate_limit_headers``). Steps for faults: "session", "refresh", "blob", "create", "get".

Docs: https://docs.bsky.app/docs/advanced-guides/posts, …/post-richtext, …/rate-limits,
https://docs.bsky.app/docs/api/com-atproto-server-create-session.
"""

from __future__ import annotations

import itertools
import re
import time
from datetime import datetime
from typing import Any

import regex
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.fakes.platform_server import FakePlatform, bearer, fault_response

HANDLE = "herald.bsky.social"
APP_PASSWORD = "abcd-efgh-ijkl-mnop"
DID = "did:plc:heraldtest0000000000000"
KNOWN_HANDLES = {HANDLE: DID, "alice.bsky.social": "did:plc:alice00000000000000000000"}
_TID = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")


def rate_limit_headers(reset_in_s: int = 30) -> dict[str, str]:
    return {"RateLimit-Limit": "5000", "RateLimit-Remaining": "0",
            "RateLimit-Reset": str(int(time.time()) + reset_in_s), "RateLimit-Policy": "5000;w=3600"}


def _xrpc_error(error: str, message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": error, "message": message}, status_code=status)


class FakeBluesky(FakePlatform):
    name = "bluesky"

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self.access: dict[str, str] = {}  # live access token → did
        self.refresh: dict[str, str] = {}  # live refresh token → did
        self.expired: set[str] = set()
        self.records: dict[str, dict[str, Any]] = {}  # rkey → record
        self.blobs: dict[str, dict[str, Any]] = {}
        self.sessions_created = 0
        self.refreshes = 0
        super().__init__()

    def expire_access_tokens(self) -> None:
        with self.lock:
            self.expired.update(self.access)

    def expire_refresh_tokens(self) -> None:
        with self.lock:
            self.refresh.clear()

    @property
    def posts(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.records.values())

    def _tokens(self, did: str) -> dict[str, str]:
        n = next(self._ids)
        access, refresh = f"access-{n}", f"refresh-{n}"
        self.access[access], self.refresh[refresh] = did, did
        return {"accessJwt": access, "refreshJwt": refresh}

    def _did(self, request: Request) -> str | JSONResponse:
        token = bearer(request)
        if token is None:
            return _xrpc_error("AuthenticationRequired", "Authentication Required", 401)
        if token in self.expired:
            return _xrpc_error("ExpiredToken", "Token has expired")
        did = self.access.get(token)
        if did is None:
            return _xrpc_error("InvalidToken", "Token could not be verified")
        return did

    def routes(self, app: FastAPI) -> None:
        @app.post("/xrpc/com.atproto.server.createSession")
        async def create_session(request: Request):
            self.seen(request, "session")
            if not request.headers.get("content-type", "").startswith("application/json"):
                return self.violation("createSession takes a JSON body")
            body = await request.json()
            if set(body) - {"identifier", "password", "authFactorToken", "allowTakendown"}:
                return self.violation(f"unknown createSession fields {sorted(body)}")
            if fault := self.take_fault("session"):
                return fault_response(fault)
            if body.get("identifier") != HANDLE or body.get("password") != APP_PASSWORD:
                return _xrpc_error("AuthenticationRequired", "Invalid identifier or password", 401)
            with self.lock:
                self.sessions_created += 1
                tokens = self._tokens(DID)
            return {**tokens, "handle": HANDLE, "did": DID, "active": True}

        @app.post("/xrpc/com.atproto.server.refreshSession")
        async def refresh_session(request: Request):
            self.seen(request, "refresh")
            if await request.body():
                return self.violation("refreshSession takes no body")
            token = bearer(request)
            with self.lock:
                did = self.refresh.pop(token or "", None)  # rotated: one use each
                if did is None:
                    return _xrpc_error("ExpiredToken", "Token has expired")
                self.refreshes += 1
                tokens = self._tokens(did)
            return {**tokens, "handle": HANDLE, "did": did, "active": True}

        @app.get("/xrpc/com.atproto.identity.resolveHandle")
        async def resolve_handle(request: Request, handle: str = ""):
            self.seen(request, "resolve")
            did = KNOWN_HANDLES.get(handle)
            if did is None:
                return _xrpc_error("InvalidRequest", "Unable to resolve handle")
            return {"did": did}

        @app.post("/xrpc/com.atproto.repo.uploadBlob")
        async def upload_blob(request: Request):
            self.seen(request, "blob")
            did = self._did(request)
            if isinstance(did, JSONResponse):
                return did
            mime = request.headers.get("content-type", "")
            data = await request.body()
            if not mime.startswith(("image/", "video/")) or not data:
                return self.violation(f"uploadBlob needs media bytes with their Content-Type, got {mime!r}")
            if fault := self.take_fault("blob"):
                return fault_response(fault)
            with self.lock:
                cid = f"bafkrei{next(self._ids):020d}"
                blob = {"$type": "blob", "ref": {"$link": cid}, "mimeType": mime, "size": len(data)}
                self.blobs[cid] = blob
            return {"blob": blob}

        @app.post("/xrpc/com.atproto.repo.createRecord")
        async def create_record(request: Request):
            self.seen(request, "create")
            did = self._did(request)
            if isinstance(did, JSONResponse):
                return did
            body = await request.json()
            problem = self._check_create(body, did)
            if problem:
                return self.violation(problem)
            fault = self.take_fault("create")
            if fault and not fault.after_create and not fault.delay_s:
                return fault_response(fault)
            rkey = body["rkey"]
            with self.lock:
                if rkey in self.records:
                    return _xrpc_error("InvalidRequest", f"Record already exists: {rkey}")
                uri = f"at://{did}/{body['collection']}/{rkey}"
                self.records[rkey] = {"uri": uri, "cid": f"bafyrei{next(self._ids):020d}", "value": body["record"],
                                      "rkey": rkey}
                answer = {"uri": uri, "cid": self.records[rkey]["cid"]}
            return await self.answer(fault, JSONResponse(answer))

        @app.get("/xrpc/com.atproto.repo.getRecord")
        async def get_record(request: Request, repo: str = "", collection: str = "", rkey: str = ""):
            self.seen(request, "get")
            if not (repo and collection and rkey):
                return self.violation("getRecord needs repo, collection and rkey")
            if fault := self.take_fault("get"):
                return fault_response(fault)
            with self.lock:
                record = self.records.get(rkey) if repo == DID and collection == "app.bsky.feed.post" else None
            if record is None:
                return _xrpc_error("RecordNotFound", f"Could not locate record: at://{repo}/{collection}/{rkey}")
            return {"uri": record["uri"], "cid": record["cid"], "value": record["value"]}

    def _check_create(self, body: dict[str, Any], did: str) -> str | None:
        if body.get("repo") != did:
            return f"repo must be the session's DID {did}, got {body.get('repo')!r}"
        if body.get("collection") != "app.bsky.feed.post":
            return f"collection must be app.bsky.feed.post, got {body.get('collection')!r}"
        if "rkey" in body and not _TID.match(str(body["rkey"])):
            return f"an app.bsky.feed.post rkey must be a TID, got {body['rkey']!r}"
        record = body.get("record")
        if not isinstance(record, dict) or record.get("$type") != "app.bsky.feed.post":
            return "record.$type must be app.bsky.feed.post"
        text = record.get("text")
        if not isinstance(text, str):
            return "record.text is required"
        if len(regex.findall(r"\X", text)) > 300 or len(text.encode()) > 3000:
            return "record.text is longer than 300 graphemes or 3000 bytes"
        try:
            created = datetime.fromisoformat(str(record.get("createdAt")).replace("Z", "+00:00"))
        except ValueError:
            return f"record.createdAt must be an RFC 3339 datetime, got {record.get('createdAt')!r}"
        if created.tzinfo is None:
            return "record.createdAt needs a timezone"
        data = text.encode()
        for facet in record.get("facets") or []:
            start, end = facet.get("index", {}).get("byteStart"), facet.get("index", {}).get("byteEnd")
            if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(data)):
                return f"facet byte range {start}..{end} is not inside the text's {len(data)} bytes"
            try:
                covered = data[start:end].decode("utf-8")
            except UnicodeDecodeError:
                return f"facet byte range {start}..{end} cuts a UTF-8 character"
            for feature in facet.get("features") or []:
                kind = feature.get("$type")
                if kind == "app.bsky.richtext.facet#link" and covered != feature.get("uri"):
                    return f"link facet covers {covered!r}, not its uri {feature.get('uri')!r}"
                if kind == "app.bsky.richtext.facet#mention" and KNOWN_HANDLES.get(covered[1:]) != feature.get("did"):
                    return f"mention facet covers {covered!r}, not the handle of {feature.get('did')!r}"
                if kind not in ("app.bsky.richtext.facet#link", "app.bsky.richtext.facet#mention",
                                "app.bsky.richtext.facet#tag"):
                    return f"unknown facet feature {kind!r}"
        embed = record.get("embed")
        if embed is not None and embed.get("$type") == "app.bsky.embed.video":
            blob = self.blobs.get(embed.get("video", {}).get("ref", {}).get("$link"))
            if blob is None or not blob["mimeType"].startswith("video/") or blob["size"] > 100_000_000:
                return "app.bsky.embed.video needs a video blob (≤ 100 MB) uploaded with uploadBlob"
        elif embed is not None:
            if embed.get("$type") != "app.bsky.embed.images":
                return f"unexpected embed {embed.get('$type')!r}"
            images = embed.get("images") or []
            if not 1 <= len(images) <= 4:
                return "app.bsky.embed.images holds 1 to 4 images"
            for image in images:
                if "alt" not in image or image.get("image", {}).get("ref", {}).get("$link") not in self.blobs:
                    return "each image needs alt and a blob uploaded with uploadBlob"
                if not self.blobs[image["image"]["ref"]["$link"]]["mimeType"].startswith("image/"):
                    return "app.bsky.embed.images holds image blobs"
        return None
