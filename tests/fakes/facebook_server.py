"""A fake Facebook Graph API for Pages (real HTTP server, tests/fakes/http_fake.py), checking what
the docs require:

    POST /v23.0/{page-id}/feed     message (unless attached_media), attached_media[i]={"media_fbid"}
    POST /v23.0/{page-id}/photos   url (a public http(s) URL), caption, published ("true"/"false")
    POST /v23.0/{page-id}/videos   file_url, description
    GET  /v23.0/{page-id}/feed     fields, limit: the Page's posts, newest first

Docs: https://developers.facebook.com/docs/pages/getting-started,
https://developers.facebook.com/docs/graph-api/reference/page/feed, …/page/photos, …/page/videos.
Every request needs the Page access token (the fake takes it as ``Authorization: Bearer`` or the
documented ``access_token`` parameter); a wrong one answers as Graph does, HTTP 400 with
``{"error": {"type": "OAuthException", "code": 190}}``. Unknown Page: code 100. Bodies must be
form-encoded (what the Graph API documents for POST parameters).

Faults per route: "feed", "photos", "videos", "read" (the GET).
"""

from __future__ import annotations

import json
import threading
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.fakes.http_fake import HttpFake, bearer, first, form

PAGE_ID = "104000000000001"
VERSION = "v23.0"


def graph_error(code: int, message: str, type_: str = "OAuthException", subcode: int | None = None) -> dict:
    error: dict[str, Any] = {"message": message, "type": type_, "code": code, "fbtrace_id": "AbCdEf"}
    if subcode is not None:
        error["error_subcode"] = subcode
    return {"error": error}


EXPIRED = graph_error(190, "Error validating access token: Session has expired", subcode=463)


class FakeFacebook(HttpFake):
    name = "Facebook Graph API"

    def __init__(self, token: str = "page-token", page_id: str = PAGE_ID) -> None:
        self.page_id = page_id
        self.posts: list[dict[str, Any]] = []  # feed posts, in creation order
        self.photos: dict[str, dict[str, Any]] = {}
        self._posts_lock = threading.Lock()
        super().__init__(token)

    @property
    def graph_url(self) -> str:
        return f"{self.base_url}/{VERSION}"

    def count_for(self, message: str) -> int:
        return sum(1 for p in self.posts if p["message"] == message)

    def routes(self, app: FastAPI) -> None:
        @app.post(f"/{VERSION}/{{page_id}}/feed")
        async def feed(page_id: str, request: Request) -> Response:
            fields, refused = await self._checked(request, page_id)
            if refused is not None:
                return refused
            message = first(fields, "message")
            attached = [json.loads(v[0]) for k, v in sorted(fields.items()) if k.startswith("attached_media[")]
            if not message and not attached:
                return self.violation(request, "a feed post needs message (or attached_media)")
            for item in attached:
                photo = self.photos.get(str(item.get("media_fbid")))
                if photo is None or photo["published"]:
                    return self.violation(request, f"attached_media {item} is not an unpublished photo of this Page")
            return await self._create(request, "feed", {"message": message or "", "photos": attached})

        @app.post(f"/{VERSION}/{{page_id}}/photos")
        async def photos(page_id: str, request: Request) -> Response:
            fields, refused = await self._checked(request, page_id)
            if refused is not None:
                return refused
            url = first(fields, "url")
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                return self.violation(request, "photos needs url, a public image URL")
            published = first(fields, "published") or "true"
            if published not in ("true", "false"):
                return self.violation(request, f"published must be true or false, not {published!r}")
            photo_id = self.next_id()
            self.photos[photo_id] = {"id": photo_id, "url": url, "published": published == "true"}
            if published == "false":
                return JSONResponse({"id": photo_id})
            return await self._create(request, "photos", {"message": first(fields, "caption") or "",
                                                          "photos": [{"media_fbid": photo_id}]},
                                      extra={"id": photo_id})

        @app.post(f"/{VERSION}/{{page_id}}/videos")
        async def videos(page_id: str, request: Request) -> Response:
            fields, refused = await self._checked(request, page_id)
            if refused is not None:
                return refused
            file_url = first(fields, "file_url")
            if not isinstance(file_url, str) or not file_url.startswith(("http://", "https://")):
                return self.violation(request, "videos needs file_url")
            return await self._create(request, "videos", {"message": first(fields, "description") or "",
                                                          "video": file_url}, video=True)

        @app.get(f"/{VERSION}/{{page_id}}/feed")
        async def read(page_id: str, request: Request) -> Response:
            _, refused = await self._checked(request, page_id, post=False)
            if refused is not None:
                return refused
            fault = self.take_fault("read")
            if fault is not None:
                return await self.answer_fault(fault, graph_error(2, "Service temporarily unavailable", "OAuthException"))
            wanted = request.query_params.get("fields", "id")
            limit = int(request.query_params.get("limit", "25"))
            with self._posts_lock:
                newest = list(reversed(self.posts))[:limit]
            data = [{k: v for k, v in (("id", p["id"]), ("message", p["message"]),
                                       ("created_time", "2026-12-04T10:00:00+0000")) if k in wanted.split(",")}
                    for p in newest]
            return JSONResponse({"data": data})

    async def _checked(self, request: Request, page_id: str, post: bool = True) -> tuple[dict, Response | None]:
        fields: dict[str, list[Any]] = {}
        if post:
            if not request.headers.get("content-type", "").startswith(
                    ("application/x-www-form-urlencoded", "multipart/form-data")):
                return fields, self.violation(request, "POST parameters must be form-encoded")
            fields = await form(request)
        token = bearer(request) or first(fields, "access_token") or request.query_params.get("access_token")
        if token is None:
            return fields, self.violation(request, "no access token")
        if token not in self.valid_tokens:
            return fields, JSONResponse(EXPIRED, status_code=400)
        if page_id != self.page_id:
            return fields, JSONResponse(graph_error(100, f"Unsupported post request. Object with ID '{page_id}' "
                                                    "does not exist", "GraphMethodException", 33), status_code=400)
        return fields, None

    async def _create(self, request: Request, route: str, post: dict[str, Any], extra: dict | None = None,
                      video: bool = False) -> Response:
        fault = self.take_fault(route)
        if fault is not None and not fault.after_create:
            return await self.answer_fault(fault, graph_error(2, "An unexpected error has occurred", "OAuthException"))
        object_id = self.next_id()
        post_id = object_id if video else f"{self.page_id}_{object_id}"
        with self._posts_lock:
            self.posts.append({"id": post_id, **post})
        if fault is not None:
            return await self.answer_fault(fault, graph_error(2, "An unexpected error has occurred", "OAuthException"))
        if video:
            return JSONResponse({"id": object_id})
        return JSONResponse({**(extra or {}), **({"post_id": post_id} if extra else {"id": post_id})})
