"""A fake LinkedIn REST API (Posts and Images), a real HTTP server (tests/fakes/http_fake.py),
checking what the docs require (see processors/platforms/linkedin.py for the pages):

    POST /rest/posts                              JSON: author (the member or an organization they post for),
                                                  commentary (little text: reserved characters escaped),
                                                  visibility, distribution.feedDistribution, lifecycleState,
                                                  content.media.id | content.multiImage.images (2–20 uploaded
                                                  images of that author); 201 with x-restli-id
    POST /rest/images?action=initializeUpload     {"initializeUploadRequest": {"owner": …}} → value.uploadUrl, value.image
    PUT  /_upload/{image-id}                      the image bytes (Bearer)
    GET  /rest/posts?q=author&author=…            the author's posts, newest first (403 when ``readable`` is off,
                                                  as for an app without r_member_social)

Every /rest call needs ``Authorization: Bearer``, ``LinkedIn-Version: YYYYMM`` and
``X-Restli-Protocol-Version: 2.0.0``. A wrong token answers 401 EXPIRED_ACCESS_TOKEN as LinkedIn does.
Faults per route: "posts", "images", "upload", "read".
"""

from __future__ import annotations

import re
import threading
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.fakes.http_fake import HttpFake, bearer

MEMBER = "urn:li:person:8675309"
ORGANIZATION = "urn:li:organization:2414183"
_UNESCAPED = re.compile(r"(?<!\\)(?:\\\\)*[|{}@\[\]()<>#*_~]")
_TEMPLATE = re.compile(r"\{hashtag\|\\#\|[^{}|]+\}")


def linkedin_error(status: int, code: str, message: str, service_code: int = 0) -> dict[str, Any]:
    return {"status": status, "serviceErrorCode": service_code, "code": code, "message": message}


class FakeLinkedIn(HttpFake):
    name = "LinkedIn REST API"

    def __init__(self, token: str = "linkedin-token", authors: tuple[str, ...] = (MEMBER, ORGANIZATION),
                 readable: bool = True) -> None:
        self.authors = set(authors)
        self.readable = readable
        self.posts: list[dict[str, Any]] = []
        self.images: dict[str, dict[str, Any]] = {}  # urn → owner, bytes
        self._data_lock = threading.Lock()
        super().__init__(token)

    def count_for(self, commentary: str) -> int:
        return sum(1 for p in self.posts if p["commentary"] == commentary)

    def routes(self, app: FastAPI) -> None:
        @app.post("/rest/posts")
        async def create(request: Request) -> Response:
            refused = self._checked(request)
            if refused is not None:
                return refused
            body = await request.json() if request.headers.get("content-type", "").startswith("application/json") \
                else None
            if not isinstance(body, dict):
                return self.violation(request, "the body must be JSON")
            problem = self._post_problem(body)
            if problem:
                return self.violation(request, problem)
            fault = self.take_fault("posts")
            if fault is not None and not fault.after_create:
                return await self.answer_fault(fault, linkedin_error(fault.status, "INTERNAL_SERVER_ERROR", "injected"))
            urn = f"urn:li:share:{self.next_id()}"
            with self._data_lock:
                self.posts.append({"id": urn, **body})
            if fault is not None:
                return await self.answer_fault(fault, linkedin_error(fault.status, "INTERNAL_SERVER_ERROR", "injected"))
            return Response(status_code=201, headers={"x-restli-id": urn})

        @app.post("/rest/images")
        async def initialize(request: Request) -> Response:
            refused = self._checked(request)
            if refused is not None:
                return refused
            if request.query_params.get("action") != "initializeUpload":
                return self.violation(request, "images takes action=initializeUpload")
            body = await request.json()
            owner = (body.get("initializeUploadRequest") or {}).get("owner") if isinstance(body, dict) else None
            if owner not in self.authors:
                return self.violation(request, f"initializeUploadRequest.owner {owner!r} is not an author of this token")
            fault = self.take_fault("images")
            if fault is not None:
                return await self.answer_fault(fault, linkedin_error(fault.status, "ERROR", "injected"))
            image_id = f"D4E10AQ{self.next_id()}"
            with self._data_lock:
                self.images[f"urn:li:image:{image_id}"] = {"owner": owner, "content": None, "id": image_id}
            return JSONResponse({"value": {"uploadUrlExpiresAt": 1_900_000_000_000,
                                           "uploadUrl": f"{self.base_url}/_upload/{image_id}",
                                           "image": f"urn:li:image:{image_id}"}})

        @app.put("/_upload/{image_id}")
        async def upload(image_id: str, request: Request) -> Response:
            if bearer(request) not in self.valid_tokens:
                return self.violation(request, "the upload needs the member's Bearer token", status=401)
            image = self.images.get(f"urn:li:image:{image_id}")
            content = await request.body()
            if image is None or not content:
                return self.violation(request, "upload of an image that was not initialized, or without bytes")
            fault = self.take_fault("upload")
            if fault is not None:
                return await self.answer_fault(fault, {"message": "injected"})
            image["content"] = content
            return Response(status_code=201)

        @app.get("/rest/posts")
        async def read(request: Request) -> Response:
            refused = self._checked(request)
            if refused is not None:
                return refused
            if request.query_params.get("q") != "author" or request.query_params.get("author") not in self.authors:
                return self.violation(request, "the finder is q=author with an author of this token")
            if not self.readable:
                return JSONResponse(linkedin_error(403, "ACCESS_DENIED", "Not enough permissions to access: "
                                                   "partnerApiPostsExternal.FINDER-author", 100), status_code=403)
            fault = self.take_fault("read")
            if fault is not None:
                return await self.answer_fault(fault, linkedin_error(fault.status, "ERROR", "injected"))
            author = request.query_params["author"]
            count = int(request.query_params.get("count", "10"))
            with self._data_lock:
                mine = [p for p in reversed(self.posts) if p["author"] == author][:count]
            return JSONResponse({"elements": mine, "paging": {"start": 0, "count": count}})

    def _checked(self, request: Request) -> Response | None:
        if not re.fullmatch(r"\d{6}", request.headers.get("linkedin-version", "")):
            return self.violation(request, "LinkedIn-Version: YYYYMM is required")
        if request.headers.get("x-restli-protocol-version") != "2.0.0":
            return self.violation(request, "X-Restli-Protocol-Version: 2.0.0 is required")
        token = bearer(request)
        if token is None:
            return self.violation(request, "Authorization: Bearer is required", status=401)
        if token not in self.valid_tokens:
            return JSONResponse(linkedin_error(401, "EXPIRED_ACCESS_TOKEN", "The token used in the request has "
                                               "expired", 65601), status_code=401)
        return None

    def _post_problem(self, body: dict[str, Any]) -> str | None:
        for name in ("author", "commentary", "visibility", "distribution", "lifecycleState"):
            if name not in body:
                return f"{name} is required"
        if body["author"] not in self.authors:
            return f"author {body['author']!r} is not the member or one of their organizations"
        if body["visibility"] not in ("PUBLIC", "CONNECTIONS", "LOGGED_IN"):
            return f"visibility {body['visibility']!r}"
        if (body["distribution"] or {}).get("feedDistribution") not in ("MAIN_FEED", "NONE"):
            return "distribution.feedDistribution must be MAIN_FEED or NONE"
        if body["lifecycleState"] != "PUBLISHED":
            return "lifecycleState must be PUBLISHED"
        if _UNESCAPED.search(_TEMPLATE.sub("", body["commentary"])):
            return f"commentary has unescaped little-text reserved characters: {body['commentary']!r}"
        content = body.get("content")
        if content is None:
            return None
        if "media" in content:
            ids = [content["media"].get("id")]
        elif "multiImage" in content:
            ids = [i.get("id") for i in content["multiImage"].get("images", [])]
            if not 2 <= len(ids) <= 20:
                return "multiImage takes 2 to 20 images"
        else:
            return f"content {sorted(content)} is not media or multiImage"
        for urn in ids:
            image = self.images.get(urn)
            if image is None or image["content"] is None or image["owner"] != body["author"]:
                return f"{urn} is not an uploaded image of {body['author']}"
        return None
