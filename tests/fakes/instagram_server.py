"""A fake Instagram Graph API (content publishing), a real HTTP server (tests/fakes/http_fake.py),
checking what https://developers.facebook.com/docs/instagram-platform/content-publishing and the IG
Container reference require:

    POST /v23.0/{ig-user-id}/media          a container: image_url (JPEG) | video_url + media_type=REELS, caption;
                                            carousel items: is_carousel_item=true, image_url | video_url +
                                            media_type=VIDEO, no caption; a carousel: media_type=CAROUSEL,
                                            children (2–10 FINISHED carousel items of this account), caption
    GET  /v23.0/{container-id}?fields=status_code   IN_PROGRESS for ``processing_polls`` reads, then FINISHED
    POST /v23.0/{ig-user-id}/media_publish  creation_id: a FINISHED container, published once
    GET  /v23.0/{media-id}?fields=permalink
    GET  /v23.0/{ig-user-id}/media?fields=…  the account's media, newest first

Form-encoded bodies, the user token as ``Authorization: Bearer`` (or ``access_token``); a wrong
token answers 400 with Graph's code 190. Faults per route: "media" (container creation), "publish",
"read" (the media list); ``fail_container`` makes the next containers end in status ERROR.
"""

from __future__ import annotations

import threading
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.fakes.facebook_server import EXPIRED, graph_error
from tests.fakes.http_fake import HttpFake, bearer, first, form

IG_USER_ID = "17841400000000001"
VERSION = "v23.0"


class FakeInstagram(HttpFake):
    name = "Instagram Graph API"

    def __init__(self, token: str = "ig-token", ig_user_id: str = IG_USER_ID, processing_polls: int = 0) -> None:
        self.ig_user_id = ig_user_id
        self.processing_polls = processing_polls
        self.containers: dict[str, dict[str, Any]] = {}
        self.media: list[dict[str, Any]] = []  # published, in order
        self.status_reads = 0
        self._failing_containers = 0
        self._data_lock = threading.Lock()
        super().__init__(token)

    @property
    def graph_url(self) -> str:
        return f"{self.base_url}/{VERSION}"

    def fail_container(self, n: int = 1) -> None:
        self._failing_containers += n

    def count_for(self, caption: str) -> int:
        return sum(1 for m in self.media if m["caption"] == caption)

    def routes(self, app: FastAPI) -> None:
        @app.post(f"/{VERSION}/{{ig_user_id}}/media")
        async def create(ig_user_id: str, request: Request) -> Response:
            fields, refused = await self._checked(request, ig_user_id)
            if refused is not None:
                return refused
            fault = self.take_fault("media")
            if fault is not None:
                return await self.answer_fault(fault, graph_error(2, "Service temporarily unavailable"))
            problem = self._container_problem(fields)
            if problem:
                return self.violation(request, problem)
            container_id = self.next_id()
            status = "ERROR" if self._failing_containers else "IN_PROGRESS"
            self._failing_containers = max(0, self._failing_containers - 1)
            with self._data_lock:
                self.containers[container_id] = {
                    "id": container_id, "status": status, "reads": 0, "caption": first(fields, "caption") or "",
                    "media_type": first(fields, "media_type") or "IMAGE", "carousel_item":
                    first(fields, "is_carousel_item") == "true", "children": (first(fields, "children") or "").split(",")
                    if first(fields, "children") else [], "url": first(fields, "image_url") or first(fields, "video_url")}
            return JSONResponse({"id": container_id})

        @app.post(f"/{VERSION}/{{ig_user_id}}/media_publish")
        async def publish(ig_user_id: str, request: Request) -> Response:
            fields, refused = await self._checked(request, ig_user_id)
            if refused is not None:
                return refused
            fault = self.take_fault("publish")
            if fault is not None and not fault.after_create:
                return await self.answer_fault(fault, graph_error(2, "Service temporarily unavailable"))
            container = self.containers.get(str(first(fields, "creation_id")))
            if container is None or container["carousel_item"]:
                return self.violation(request, "creation_id must be a container of this account (not a carousel item)")
            if container["status"] == "PUBLISHED":
                return JSONResponse(graph_error(9007, "Media ID is not available", "OAuthException"), status_code=400)
            if container["status"] != "FINISHED":
                return self.violation(request, f"publishing a container whose status_code is {container['status']}")
            media_id = self.next_id()
            with self._data_lock:
                container["status"] = "PUBLISHED"
                self.media.append({"id": media_id, "caption": container["caption"], "type": container["media_type"],
                                   "children": [self.containers[c]["url"] for c in container["children"]],
                                   "url": container["url"], "permalink": f"https://www.instagram.com/p/{media_id}/"})
            if fault is not None:
                return await self.answer_fault(fault, graph_error(2, "An unexpected error has occurred"))
            return JSONResponse({"id": media_id})

        @app.get(f"/{VERSION}/{{object_id}}/media")
        async def listing(object_id: str, request: Request) -> Response:
            _, refused = await self._checked(request, object_id, post=False)
            if refused is not None:
                return refused
            fault = self.take_fault("read")
            if fault is not None:
                return await self.answer_fault(fault, graph_error(2, "Service temporarily unavailable"))
            limit = int(request.query_params.get("limit", "25"))
            wanted = request.query_params.get("fields", "id").split(",")
            with self._data_lock:
                newest = list(reversed(self.media))[:limit]
            return JSONResponse({"data": [{k: m[k] for k in ("id", "caption", "permalink") if k in wanted}
                                          for m in newest]})

        @app.get(f"/{VERSION}/{{object_id}}")
        async def read(object_id: str, request: Request) -> Response:
            _, refused = await self._checked(request, None, post=False)
            if refused is not None:
                return refused
            wanted = request.query_params.get("fields", "")
            with self._data_lock:
                container = self.containers.get(object_id)
                media = next((m for m in self.media if m["id"] == object_id), None)
                if container is not None and "status_code" in wanted:
                    self.status_reads += 1
                    container["reads"] += 1
                    if container["status"] == "IN_PROGRESS" and container["reads"] > self.processing_polls:
                        container["status"] = "FINISHED"
                    answer = {"id": object_id, "status_code": container["status"]}
                    if container["status"] == "ERROR":
                        answer["status"] = "Error: 2207026 unsupported video format"
                    return JSONResponse(answer)
            if media is not None and "permalink" in wanted:
                return JSONResponse({"id": object_id, "permalink": media["permalink"]})
            return self.violation(request, f"GET of {object_id} with fields={wanted!r}")

    def _container_problem(self, fields: dict[str, list[Any]]) -> str | None:
        media_type = first(fields, "media_type")
        image, video = first(fields, "image_url"), first(fields, "video_url")
        carousel_item = first(fields, "is_carousel_item")
        if media_type == "CAROUSEL":
            children = (first(fields, "children") or "").split(",")
            if not 2 <= len(children) <= 10:
                return "a carousel has 2 to 10 children"
            for child in children:
                item = self.containers.get(child)
                if item is None or not item["carousel_item"] or item["status"] != "FINISHED":
                    return f"child {child} is not a FINISHED carousel item"
            return "a carousel container takes no image_url or video_url" if image or video else None
        if carousel_item not in (None, "true", "false"):
            return "is_carousel_item must be true or false"
        if carousel_item == "true" and first(fields, "caption") is not None:
            return "carousel items take no caption (the carousel container has it)"
        if image is not None:
            if media_type not in (None, "IMAGE"):
                return f"image_url with media_type {media_type}"
            if not image.lower().split("?")[0].endswith((".jpg", ".jpeg")):
                return "images must be JPEG"
            return None
        if video is not None:
            wanted = "VIDEO" if carousel_item == "true" else "REELS"
            return None if media_type == wanted else f"a video {'carousel item' if wanted == 'VIDEO' else 'post'} " \
                f"needs media_type={wanted}, not {media_type}"
        return "a container needs image_url, video_url or media_type=CAROUSEL with children"

    async def _checked(self, request: Request, ig_user_id: str | None, post: bool = True) -> tuple[dict, Response | None]:
        fields: dict[str, list[Any]] = {}
        if post:
            if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
                return fields, self.violation(request, "POST parameters must be form-encoded")
            fields = await form(request)
        token = bearer(request) or first(fields, "access_token") or request.query_params.get("access_token")
        if token is None:
            return fields, self.violation(request, "no access token")
        if token not in self.valid_tokens:
            return fields, JSONResponse(EXPIRED, status_code=400)
        if ig_user_id is not None and ig_user_id != self.ig_user_id:
            return fields, JSONResponse(graph_error(100, f"Object with ID '{ig_user_id}' does not exist",
                                                    "GraphMethodException", 33), status_code=400)
        return fields, None
