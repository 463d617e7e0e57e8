"""A fake Pinterest API v5: the subset Herald uses, checked against the docs, with faults.

    POST /v5/pins                   Bearer token, JSON: board_id (one of the token's boards), title ≤ 100,
                                    description ≤ 500, note, media_source image_url {url} or
                                    multiple_image_urls {items: [{url}], 2–5} — any other field or shape is
                                    a violation; answers 201 with the Pin
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
from fastapi.responses import JSONResponse

from tests.fakes.platform_server import FakePlatform, bearer, fault_response

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
        elif kind == "multiple_image_urls":
            items = source.get("items")
            if not isinstance(items, list) or not 2 <= len(items) <= 5 or not all(
                    isinstance(i, dict) and str(i.get("url", "")).startswith("http") for i in items):
                return f"multiple_image_urls takes 2–5 items with a url: {source}"
        else:
            return f"unsupported media_source.source_type {kind!r}"
        return None
