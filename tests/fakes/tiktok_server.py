"""A fake TikTok Content Posting API (direct post of a video), checked against the docs, with faults.

    POST /v2/post/publish/creator_info/query/  Bearer → privacy_level_options, …
    POST /v2/post/publish/video/init/          Bearer, JSON {post_info: {title ≤ 2200, privacy_level (one of the
                                               options)}, source_info: FILE_UPLOAD {video_size, chunk_size,
                                               total_chunk_count — consistent with the chunking rules} or
                                               PULL_FROM_URL {video_url on a verified prefix}}
                                               → publish_id (+ upload_url)
    PUT  /upload/?upload_id=…                  Content-Type video/*, Content-Range "bytes a-b/total", chunks in order
                                               → 206 partial, 201 complete (the post is then made)
    POST /v2/post/publish/content/init/        photos: media_type PHOTO, post_mode DIRECT_POST, post_info (description
                                               ≤ 4000, privacy_level), source_info PULL_FROM_URL photo_images (1–35
                                               JPEG/WebP on a verified prefix), photo_cover_index → publish_id
    POST /v2/post/publish/status/fetch/        {publish_id} → status (PROCESSING_* for ``processing_polls`` fetches,
                                               then PUBLISH_COMPLETE with publicaly_available_post_id), uploaded_bytes

Every JSON answer has ``error: {code, message, log_id}`` (``ok`` on success); a bad token is 401
access_token_invalid, a spent budget 429 rate_limit_exceeded (``tiktok_error``). Steps for faults:
"creator", "init", "upload", "status".

Docs: https://developers.tiktok.com/doc/content-posting-api-reference-direct-post,
https://developers.tiktok.com/doc/content-posting-api-media-transfer-guide,
https://developers.tiktok.com/doc/content-posting-api-reference-get-video-status.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.fakes.platform_server import FakePlatform, bearer, fault_response

TOKEN = "act.fake-tiktok-token"
OPTIONS = ["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"]
MB = 1024 * 1024
_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")


def tiktok_error(code: str, message: str = "") -> dict[str, Any]:
    return {"error": {"code": code, "message": message or code, "log_id": "202612041200000000"}}


def _ok(data: dict[str, Any]) -> JSONResponse:
    return JSONResponse({"data": data, "error": {"code": "ok", "message": "", "log_id": "202612041200000001"}})


class FakeTikTok(FakePlatform):
    name = "tiktok"

    def __init__(self, processing_polls: int = 0) -> None:
        self.tokens = {TOKEN}
        self.processing_polls = processing_polls
        self.publishes: dict[str, dict[str, Any]] = {}
        self.posts: list[dict[str, Any]] = []
        self._ids = itertools.count(7_300_000_000_000_000_001)
        super().__init__()
        self.verified_prefixes = [f"{self.base_url}/media/"]

    def revoke(self, token: str = TOKEN) -> None:
        with self.lock:
            self.tokens.discard(token)

    def fail_publish(self, publish_id: str, reason: str) -> None:
        with self.lock:
            self.publishes[publish_id]["failed"] = reason

    def _auth(self, request: Request) -> JSONResponse | None:
        if bearer(request) not in self.tokens:
            return JSONResponse(tiktok_error("access_token_invalid", "The access token is invalid or not found in "
                                             "the request."), status_code=401)
        if not request.headers.get("content-type", "").startswith("application/json"):
            return self.violation("Content-Type must be application/json; charset=UTF-8",
                                  body=tiktok_error("invalid_params"))
        return None

    def _post(self, publish: dict[str, Any]) -> None:
        publish["post_id"] = str(next(self._ids))
        self.posts.append(publish)

    def routes(self, app: FastAPI) -> None:
        @app.post("/v2/post/publish/creator_info/query/")
        async def creator_info(request: Request):
            self.seen(request, "creator")
            if refused := self._auth(request):
                return refused
            if fault := self.take_fault("creator"):
                return fault_response(fault)
            return _ok({"creator_username": "herald", "creator_nickname": "Herald", "privacy_level_options": OPTIONS,
                        "comment_disabled": False, "duet_disabled": False, "stitch_disabled": False,
                        "max_video_post_duration_sec": 600})

        @app.post("/v2/post/publish/video/init/")
        async def init(request: Request):
            self.seen(request, "init")
            if refused := self._auth(request):
                return refused
            body = await request.json()
            problem = self._check_init(body)
            if problem:
                return self.violation(problem, body=tiktok_error("invalid_params", problem))
            post_info, source = body["post_info"], body["source_info"]
            if post_info["privacy_level"] not in OPTIONS:
                return JSONResponse(tiktok_error("privacy_level_option_mismatch"), status_code=400)
            if source["source"] == "PULL_FROM_URL" and not any(
                    source["video_url"].startswith(p) for p in self.verified_prefixes):
                return JSONResponse(tiktok_error("url_ownership_unverified"), status_code=403)
            fault = self.take_fault("init")
            if fault and not fault.after_create and not fault.delay_s:
                return fault_response(fault)
            with self.lock:
                publish_id = f"v_pub_file~v2-1.{next(self._ids)}"
                publish = {"publish_id": publish_id, "title": post_info["title"], "privacy": post_info["privacy_level"],
                           "source": source["source"], "size": source.get("video_size"), "received": 0,
                           "chunks": 0, "polls": 0, "failed": None, "post_id": None}
                self.publishes[publish_id] = publish
                data: dict[str, Any] = {"publish_id": publish_id}
                if source["source"] == "FILE_UPLOAD":
                    data["upload_url"] = f"{self.base_url}/upload/?upload_id={publish_id}&upload_token=tok"
                else:
                    self._post(publish)  # TikTok pulls the video and posts it
            return await self.answer(fault, _ok(data))

        @app.post("/v2/post/publish/content/init/")
        async def content_init(request: Request):
            self.seen(request, "init")
            if refused := self._auth(request):
                return refused
            body = await request.json()
            problem = self._check_photos(body)
            if problem:
                return self.violation(problem, body=tiktok_error("invalid_params", problem))
            if body["post_info"]["privacy_level"] not in OPTIONS:
                return JSONResponse(tiktok_error("privacy_level_option_mismatch"), status_code=400)
            images = body["source_info"]["photo_images"]
            if not all(any(u.startswith(p) for p in self.verified_prefixes) for u in images):
                return JSONResponse(tiktok_error("url_ownership_unverified"), status_code=403)
            fault = self.take_fault("init")
            if fault and not fault.after_create and not fault.delay_s:
                return fault_response(fault)
            with self.lock:
                publish_id = f"p_pub_url~v2.{next(self._ids)}"
                publish = {"publish_id": publish_id, "title": body["post_info"].get("description", ""),
                           "privacy": body["post_info"]["privacy_level"], "source": "PULL_FROM_URL", "size": None,
                           "received": 0, "chunks": 0, "polls": 0, "failed": None, "post_id": None,
                           "photos": list(images)}
                self.publishes[publish_id] = publish
                self._post(publish)
            return await self.answer(fault, _ok({"publish_id": publish_id}))

        @app.put("/upload/")
        async def upload(request: Request, upload_id: str = ""):
            self.seen(request, "upload")
            publish = self.publishes.get(upload_id)
            if publish is None or publish["source"] != "FILE_UPLOAD":
                return self.violation(f"no FILE_UPLOAD publish {upload_id!r}", status=404)
            data = await request.body()
            match = _RANGE.match(request.headers.get("content-range", ""))
            if not request.headers.get("content-type", "").startswith("video/"):
                return self.violation("an upload chunk is sent with its video Content-Type")
            if not match or int(match.group(3)) != publish["size"] or int(match.group(1)) != publish["received"] \
                    or int(match.group(2)) - int(match.group(1)) + 1 != len(data):
                return self.violation(f"bad Content-Range {request.headers.get('content-range')!r} at byte "
                                      f"{publish['received']} of {publish['size']} with {len(data)} bytes")
            fault = self.take_fault("upload")
            if fault and not fault.after_create and not fault.delay_s:
                return fault_response(fault)
            with self.lock:
                publish["received"] += len(data)
                publish["chunks"] += 1
                complete = publish["received"] == publish["size"]
                if complete:
                    self._post(publish)
            return await self.answer(fault, Response(status_code=201 if complete else 206))

        @app.post("/v2/post/publish/status/fetch/")
        async def status(request: Request):
            self.seen(request, "status")
            if refused := self._auth(request):
                return refused
            body = await request.json()
            if set(body) != {"publish_id"}:
                return self.violation(f"status/fetch takes publish_id only, got {sorted(body)}")
            if fault := self.take_fault("status"):
                return fault_response(fault)
            with self.lock:
                publish = self.publishes.get(body["publish_id"])
                if publish is None:
                    return JSONResponse(tiktok_error("invalid_publish_id"), status_code=400)
                data: dict[str, Any] = {"uploaded_bytes": publish["received"]}
                if publish["failed"]:
                    data.update(status="FAILED", fail_reason=publish["failed"])
                elif publish["post_id"] is None:
                    data["status"] = "PROCESSING_UPLOAD"
                elif publish["polls"] < self.processing_polls:
                    publish["polls"] += 1
                    data["status"] = "PROCESSING_DOWNLOAD"
                else:
                    data.update(status="PUBLISH_COMPLETE", publicaly_available_post_id=[int(publish["post_id"])])
            return _ok(data)

    @staticmethod
    def _check_photos(body: dict[str, Any]) -> str | None:
        if body.get("media_type") != "PHOTO" or body.get("post_mode") not in ("DIRECT_POST", "MEDIA_UPLOAD"):
            return "content/init takes media_type PHOTO and post_mode DIRECT_POST or MEDIA_UPLOAD"
        post_info, source = body.get("post_info") or {}, body.get("source_info") or {}
        description = post_info.get("description", "")
        if len(post_info.get("title", "")) > 90 or len(description.encode("utf-16-le")) // 2 > 4000:
            return "photo post title ≤ 90 and description ≤ 4000"
        if not post_info.get("privacy_level"):
            return "post_info.privacy_level is required"
        images = source.get("photo_images")
        if source.get("source") != "PULL_FROM_URL" or not isinstance(images, list) or not 1 <= len(images) <= 35:
            return "photos come PULL_FROM_URL, 1–35 photo_images"
        if not all(str(u).split("?")[0].lower().endswith((".jpg", ".jpeg", ".webp")) for u in images):
            return f"photos are JPEG or WebP: {images}"
        index = source.get("photo_cover_index")
        if not isinstance(index, int) or not 0 <= index < len(images):
            return f"photo_cover_index must index photo_images, got {index!r}"
        return None

    @staticmethod
    def _check_init(body: dict[str, Any]) -> str | None:
        post_info, source = body.get("post_info"), body.get("source_info")
        if not isinstance(post_info, dict) or not isinstance(source, dict):
            return "post_info and source_info are required"
        title = post_info.get("title", "")
        if len(title.encode("utf-16-le")) // 2 > 2200 or not post_info.get("privacy_level"):
            return "post_info.title ≤ 2200 UTF-16 units and post_info.privacy_level are required"
        if source.get("source") == "FILE_UPLOAD":
            size, chunk, count = source.get("video_size"), source.get("chunk_size"), source.get("total_chunk_count")
            if not all(isinstance(v, int) and v > 0 for v in (size, chunk, count)):
                return "FILE_UPLOAD needs video_size, chunk_size and total_chunk_count"
            if size < 5 * MB:
                if chunk != size or count != 1:
                    return "a video under 5 MB is uploaded whole: chunk_size = video_size, one chunk"
            elif not 5 * MB <= chunk <= 64 * MB or count != size // chunk:
                return "chunks are 5–64 MB and total_chunk_count = floor(video_size / chunk_size)"
        elif source.get("source") == "PULL_FROM_URL":
            if not str(source.get("video_url", "")).startswith(("http://", "https://")):
                return "PULL_FROM_URL needs video_url"
        else:
            return f"source_info.source must be FILE_UPLOAD or PULL_FROM_URL, got {source.get('source')!r}"
        return None
