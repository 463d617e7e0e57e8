"""A fake Pinterest API v5: the subset Herald uses, checked against the docs, with faults.

    POST /v5/pins                   Bearer token, JSON: board_id (one of the token's boards), title ≤ 100,
                                    description ≤ 500, note, media_source image_url {url} or
                                    multiple_image_urls {items: [{url}], 2–5} or video_id {media_id, a cover}
                                    — any other field or shape is a violation; answers 201 with the Pin
    POST /v5/media                  {media_type: video} → media_id, upload_url (the fake's /s3), upload_parameters
    POST /s3                        the S3 form: every upload parameter as a field, the file last → 204
    GET  /v5/media/{id}             registered / processing (``processing_polls`` times) / succeeded or failed
    GET  /v5/boards/{id}/pins       ?page_size (1–250), bookmark → {items (newest first), bookmark}

Errors: ``{"code": n, "message": ...}``; a revoked/expired token answers 401 code 2 "Authentication
failed."; an unknown board 404. Steps for faults: "create", "list".

Docs: https://developers.pinterest.com/docs/api/v5/pins-create, …/boards-list_pins,
https://developers.pinterest.com/docs/reference/rate-limits/.
"""

from __future__ import annotations

import itertools
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.fakes.platform_server import FakePlatform, bearer, fault_response, form_fields

TOKEN = "pina_fake_token"
BOARD = "549755885175"
_PIN_FIELDS = {"board_id", "board_section_id", "title", "description", "link", "alt_text", "note", "dominant_color",
               "media_source", "parent_pin_id"}


def _error(code: int, message: str, status: int) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status)


class FakePinterest(FakePlatform):
    name = "pinterest"

    def __init__(self) -> None:
        self.tokens = {TOKEN}
        self.boards = {BOARD}
        self.pins: list[dict[str, Any]] = []  # oldest first
        self.media: dict[str, dict[str, Any]] = {}  # registered video uploads
        self.processing_polls = 0  # GET /v5/media answers "processing" this many times
        self.fail_processing = False
        self._ids = itertools.count(1_000_000_000_001)
        super().__init__()

    def revoke(self, token: str = TOKEN) -> None:
        with self.lock:
            self.tokens.discard(token)

    def add_other_pins(self, n: int) -> None:
        """Pins made elsewhere on the board (by the user, by hand)."""
        with self.lock:
            for _ in range(n):
                self.pins.append({"id": str(next(self._ids)), "board_id": BOARD, "title": "by hand", "note": ""})

    def _auth(self, request: Request) -> JSONResponse | None:
        if bearer(request) not in self.tokens:
            return _error(2, "Authentication failed.", 401)
        return None

    def routes(self, app: FastAPI) -> None:
        @app.post("/v5/pins", status_code=201)
        async def create_pin(request: Request):
            self.seen(request, "create")
            if refused := self._auth(request):
                return refused
            if not request.headers.get("content-type", "").startswith("application/json"):
                return self.violation("POST /v5/pins takes JSON", body={"code": 1, "message": "Invalid request"})
            body = await request.json()
            problem = self._check(body)
            if problem:
                return self.violation(problem, body={"code": 1, "message": problem})
            source = body["media_source"]
            processed = self.media.get(source.get("media_id", ""), {}).get("status") == "succeeded"
            if source["source_type"] == "video_id" and not processed:
                return self.violation(f"video media {source['media_id']} is not uploaded and processed")
            if body["board_id"] not in self.boards:
                return _error(3, "Board not found.", 404)
            fault = self.take_fault("create")
            if fault and not fault.after_create and not fault.delay_s:
                return fault_response(fault)
            with self.lock:
                pin = {"id": str(next(self._ids)), "board_id": body["board_id"], "title": body.get("title"),
                       "description": body.get("description"), "note": body.get("note"),
                       "media_source": body["media_source"], "created_at": "2026-12-04T12:00:00"}
                self.pins.append(pin)
            return await self.answer(fault, JSONResponse(pin, status_code=201))

        @app.post("/v5/media", status_code=201)
        async def register_media(request: Request):
            self.seen(request, "register")
            if refused := self._auth(request):
                return refused
            body = await request.json()
            if body != {"media_type": "video"}:
                return self.violation(f"POST /v5/media takes {{media_type: video}}, got {body}")
            with self.lock:
                media_id = str(next(self._ids))
                params = {"x-amz-date": "20261204T120000Z", "x-amz-signature": f"sig{media_id}",
                          "x-amz-security-token": "token", "x-amz-algorithm": "AWS4-HMAC-SHA256",
                          "key": f"uploads/{media_id}", "policy": "cG9saWN5", "x-amz-credential": "cred",
                          "Content-Type": "multipart/form-data"}
                self.media[media_id] = {"status": "registered", "params": params, "bytes": 0, "polls": 0}
            return JSONResponse({"media_id": media_id, "media_type": "video", "upload_url": f"{self.base_url}/s3",
                                 "upload_parameters": params}, status_code=201)

        @app.post("/s3", status_code=204)
        async def s3_upload(request: Request):
            self.seen(request, "s3")
            form = await form_fields(request)
            names = list(form)
            with self.lock:
                media = next((m for m in self.media.values() if form.get("key", [None])[0] == m["params"]["key"]), None)
            if media is None:
                return self.violation("the S3 form's key names no registered media", status=403)
            if {n: v[0] for n, v in form.items() if n != "file"} != media["params"] or names[-1:] != ["file"]:
                return self.violation(f"the S3 form carries every upload parameter and the file last, got {names}",
                                      status=403)
            if fault := self.take_fault("s3"):
                return fault_response(fault)
            with self.lock:
                media["bytes"] = len(form["file"][0].content)
                media["status"] = "processing"
            return Response(status_code=204)

        @app.get("/v5/media/{media_id}")
        async def get_media(request: Request, media_id: str):
            self.seen(request, "media")
            if refused := self._auth(request):
                return refused
            with self.lock:
                media = self.media.get(media_id)
                if media is None:
                    return _error(3, "Media not found.", 404)
                if media["status"] == "processing":
                    if media["polls"] >= self.processing_polls:
                        media["status"] = "failed" if self.fail_processing else "succeeded"
                    media["polls"] += 1
                return {"media_id": media_id, "media_type": "video", "status": media["status"]}

        @app.get("/v5/boards/{board_id}/pins")
        async def list_pins(request: Request, board_id: str, page_size: int = 25, bookmark: str | None = None):
            self.seen(request, "list")
            if refused := self._auth(request):
                return refused
            if not 1 <= page_size <= 250:
                return self.violation(f"page_size must be 1–250, got {page_size}")
            if fault := self.take_fault("list"):
                return fault_response(fault)
            if board_id not in self.boards:
                return _error(3, "Board not found.", 404)
            with self.lock:
                newest_first = [p for p in reversed(self.pins) if p["board_id"] == board_id]
            start = int(bookmark or 0)
            page = newest_first[start:start + page_size]
            following = start + page_size if start + page_size < len(newest_first) else None
            return {"items": page, "bookmark": str(following) if following is not None else None}

    @staticmethod
    def _check(body: dict[str, Any]) -> str | None:
        unknown = set(body) - _PIN_FIELDS
        if unknown:
            return f"unknown Pin fields {sorted(unknown)}"
        if not isinstance(body.get("board_id"), str):
            return "board_id is required"
        if len(body.get("title") or "") > 100 or len(body.get("description") or "") > 500:
            return "title ≤ 100 and description ≤ 500 characters"
        source = body.get("media_source")
        if not isinstance(source, dict):
            return "media_source is required"
        kind = source.get("source_type")
        if kind == "image_url":
            if set(source) - {"source_type", "url", "is_standard"} or not str(source.get("url", "")).startswith("http"):
                return f"image_url media_source takes url: {source}"
        elif kind == "video_id":
            if set(source) - {"source_type", "media_id", "cover_image_url", "cover_image_key_frame_time",
                              "cover_image_content_type", "cover_image_data", "is_standard"}:
                return f"unknown video_id media_source fields: {source}"
            if not ({"cover_image_url", "cover_image_key_frame_time", "cover_image_data"} & set(source)):
                return "a video Pin needs a cover (cover_image_url, cover_image_key_frame_time or cover_image_data)"
        elif kind == "multiple_image_urls":
            items = source.get("items")
            if not isinstance(items, list) or not 2 <= len(items) <= 5 or not all(
                    isinstance(i, dict) and str(i.get("url", "")).startswith("http") for i in items):
                return f"multiple_image_urls takes 2–5 items with a url: {source}"
        else:
            return f"unsupported media_source.source_type {kind!r}"
        return None
