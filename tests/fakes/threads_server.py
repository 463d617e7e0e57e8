"""A fake Threads API, a real HTTP server (tests/fakes/http_fake.py), checking what
https://developers.facebook.com/docs/threads/posts and the publishing reference
(https://developers.facebook.com/documentation/threads/reference/publishing) require:

    POST /v1.0/{threads-user-id}/threads          a container: media_type TEXT (text required), IMAGE (image_url),
                                                  VIDEO (video_url); carousel items is_carousel_item=true (IMAGE or
                                                  VIDEO); media_type=CAROUSEL with children (2–20 FINISHED items)
    GET  /v1.0/{container-id}?fields=status,…      IN_PROGRESS for ``processing_polls`` reads, then FINISHED
    POST /v1.0/{threads-user-id}/threads_publish  creation_id: a FINISHED container, published once
    GET  /v1.0/{threads-media-id}?fields=permalink
    GET  /v1.0/{threads-user-id}/threads?fields=…  the profile's threads, newest first

Form-encoded bodies, the token as ``Authorization: Bearer`` (or ``access_token``); a wrong token
answers 400 with Graph's code 190. Text over 500 characters (emoji as UTF-8 bytes) answers 400.
Faults per route: "threads" (container creation), "publish", "read"; ``fail_container`` makes the
next containers end in status ERROR.
"""

from __future__ import annotations

import threading
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from domain.post.platform_rules import threads_length
from tests.fakes.facebook_server import EXPIRED, graph_error
from tests.fakes.http_fake import HttpFake, bearer, first, form

THREADS_USER_ID = "25000000000000001"
VERSION = "v1.0"


class FakeThreads(HttpFake):
    name = "Threads API"

    def __init__(self, token: str = "threads-token", user_id: str = THREADS_USER_ID, processing_polls: int = 0) -> None:
        self.user_id = user_id
        self.processing_polls = processing_polls
        self.containers: dict[str, dict[str, Any]] = {}
        self.threads: list[dict[str, Any]] = []  # published, in order
        self.status_reads = 0
        self._failing_containers = 0
        self._data_lock = threading.Lock()
        super().__init__(token)

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/{VERSION}"

    def fail_container(self, n: int = 1) -> None:
        self._failing_containers += n

    def count_for(self, text: str) -> int:
        return sum(1 for t in self.threads if t["text"] == text)

    def routes(self, app: FastAPI) -> None:
        @app.post(f"/{VERSION}/{{user_id}}/threads")
        async def create(user_id: str, request: Request) -> Response:
            fields, refused = await self._checked(request, user_id)
            if refused is not None:
                return refused
            fault = self.take_fault("threads")
            if fault is not None:
                return await self.answer_fault(fault, graph_error(2, "Service temporarily unavailable"))
            problem = self._container_problem(fields)
            if problem:
                return self.violation(request, problem)
            text = first(fields, "text") or ""
            if threads_length(text) > 500:
                return JSONResponse(graph_error(100, "Param text must be at most 500 characters long",
                                                "THApiException"), status_code=400)
            container_id = self.next_id()
            status = "ERROR" if self._failing_containers else "IN_PROGRESS"
            self._failing_containers = max(0, self._failing_containers - 1)
            children = first(fields, "children")
            with self._data_lock:
                self.containers[container_id] = {
                    "id": container_id, "status": status, "reads": 0, "text": text,
                    "media_type": first(fields, "media_type"), "carousel_item": first(fields, "is_carousel_item") == "true",
                    "children": children.split(",") if children else [],
                    "url": first(fields, "image_url") or first(fields, "video_url")}
            return JSONResponse({"id": container_id})

        @app.post(f"/{VERSION}/{{user_id}}/threads_publish")
        async def publish(user_id: str, request: Request) -> Response:
            fields, refused = await self._checked(request, user_id)
            if refused is not None:
                return refused
            fault = self.take_fault("publish")
            if fault is not None and not fault.after_create:
                return await self.answer_fault(fault, graph_error(2, "Service temporarily unavailable"))
            container = self.containers.get(str(first(fields, "creation_id")))
            if container is None or container["carousel_item"]:
                return self.violation(request, "creation_id must be a container of this profile (not a carousel item)")
            if container["status"] == "PUBLISHED":
                return JSONResponse(graph_error(24, "The media has already been published", "THApiException"),
                                    status_code=400)
            if container["status"] != "FINISHED":
                return self.violation(request, f"publishing a container whose status is {container['status']}")
            media_id = self.next_id()
            with self._data_lock:
                container["status"] = "PUBLISHED"
                self.threads.append({"id": media_id, "text": container["text"], "type": container["media_type"],
                                     "children": [self.containers[c]["url"] for c in container["children"]],
                                     "url": container["url"], "permalink": f"https://www.threads.net/@herald/post/{media_id}"})
            if fault is not None:
                return await self.answer_fault(fault, graph_error(2, "An unexpected error has occurred"))
            return JSONResponse({"id": media_id})

        @app.get(f"/{VERSION}/{{object_id}}/threads")
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
                newest = list(reversed(self.threads))[:limit]
            return JSONResponse({"data": [{k: t[k] for k in ("id", "text", "permalink") if k in wanted} for t in newest]})

        @app.get(f"/{VERSION}/{{object_id}}")
        async def read(object_id: str, request: Request) -> Response:
            _, refused = await self._checked(request, None, post=False)
            if refused is not None:
                return refused
            wanted = request.query_params.get("fields", "")
            with self._data_lock:
                container = self.containers.get(object_id)
                thread = next((t for t in self.threads if t["id"] == object_id), None)
                if container is not None and "status" in wanted.split(","):
                    self.status_reads += 1
                    container["reads"] += 1
                    if container["status"] == "IN_PROGRESS" and container["reads"] > self.processing_polls:
                        container["status"] = "FINISHED"
                    answer = {"id": object_id, "status": container["status"]}
                    if container["status"] == "ERROR":
                        answer["error_message"] = "FAILED_PROCESSING_VIDEO"
                    return JSONResponse(answer)
            if thread is not None and "permalink" in wanted:
                return JSONResponse({"id": object_id, "permalink": thread["permalink"]})
            return self.violation(request, f"GET of {object_id} with fields={wanted!r}")

    def _container_problem(self, fields: dict[str, list[Any]]) -> str | None:
        media_type = first(fields, "media_type")
        image, video, text = first(fields, "image_url"), first(fields, "video_url"), first(fields, "text")
        item = first(fields, "is_carousel_item")
        if item not in (None, "true", "false"):
            return "is_carousel_item must be true or false"
        if media_type == "CAROUSEL":
            children = (first(fields, "children") or "").split(",")
            if not 2 <= len(children) <= 20:
                return "a carousel has 2 to 20 children"
            bad = [c for c in children if not (self.containers.get(c) or {}).get("carousel_item")
                   or self.containers[c]["status"] != "FINISHED"]
            return f"children {bad} are not FINISHED carousel items" if bad else None
        if media_type == "TEXT":
            if item == "true":
                return "a TEXT container cannot be a carousel item"
            return None if text else "media_type=TEXT needs text"
        if media_type == "IMAGE":
            return None if image and not video else "media_type=IMAGE needs image_url (and no video_url)"
        if media_type == "VIDEO":
            return None if video and not image else "media_type=VIDEO needs video_url (and no image_url)"
        return f"media_type must be TEXT, IMAGE, VIDEO or CAROUSEL, not {media_type!r}"

    async def _checked(self, request: Request, user_id: str | None, post: bool = True) -> tuple[dict, Response | None]:
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
        if user_id is not None and user_id != self.user_id:
            return fields, JSONResponse(graph_error(100, f"Object with ID '{user_id}' does not exist",
                                                    "GraphMethodException", 33), status_code=400)
        return fields, None
