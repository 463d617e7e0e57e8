"""A fake YouTube Data API v3 upload endpoint: the resumable upload protocol, checked against the docs.

    POST /upload/youtube/v3/videos?uploadType=resumable&part=snippet,status
        Bearer token; Content-Type application/json; X-Upload-Content-Length; X-Upload-Content-Type video/*;
        body {snippet: {title (1–100, no < >), description (≤ 5000 bytes, no < >), categoryId},
              status: {privacyStatus private|unlisted|public}} → 200, Location: the session URL
    PUT  <session URL> (…&upload_id=…)
        the bytes from where the session stands (Content-Range "bytes a-b/N" when resuming, a must be
        the next byte) → 201 with the video resource once all N bytes arrived;
        empty body + Content-Range "bytes */N" → 308 (Range: bytes=0-k when k+1 bytes arrived) or
        201 with the video when complete

    GET  /youtube/v3/channels?part=contentDetails&mine=true          → the uploads playlist id
    GET  /youtube/v3/playlistItems?part=snippet&playlistId=…&maxResults  → the newest uploads (``list_uploads``
        False: new videos are not listed yet, as right after an upload)

Errors have Google's shape {"error": {"code", "message", "errors": [{"reason", "domain", "message"}]}}:
401 authError for a bad token, 403 quotaExceeded (``fail_next("init"|"upload", 403, body=quota_error())``).
``interrupt_next_upload(keep)`` stores only the first ``keep`` bytes of the next PUT and answers 503.
Steps for faults: "init", "upload" (a PUT with bytes), "status" (a status query).

Docs: https://developers.google.com/youtube/v3/guides/using_resumable_upload_protocol,
https://developers.google.com/youtube/v3/docs/videos, https://developers.google.com/youtube/v3/docs/errors.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.fakes.platform_server import FakePlatform, bearer, fault_response

TOKEN = "ya29.fake-youtube-token"
UPLOADS = "UUherald"
_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")


def google_error(code: int, reason: str, message: str, domain: str = "youtube.video") -> dict[str, Any]:
    return {"error": {"code": code, "message": message,
                      "errors": [{"reason": reason, "domain": domain, "message": message}]}}


def quota_error() -> dict[str, Any]:
    return google_error(403, "quotaExceeded", "The request cannot be completed because you have exceeded your quota.",
                        "youtube.quota")


class FakeYouTube(FakePlatform):
    name = "youtube"

    def __init__(self) -> None:
        self.tokens = {TOKEN}
        self.sessions: dict[str, dict[str, Any]] = {}
        self.videos: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._interrupt: list[int] = []
        self.list_uploads = True  # False: new videos are not in the uploads playlist yet
        super().__init__()

    def revoke(self, token: str = TOKEN) -> None:
        with self.lock:
            self.tokens.discard(token)

    def interrupt_next_upload(self, keep: int) -> None:
        with self.lock:
            self._interrupt.append(keep)

    def routes(self, app: FastAPI) -> None:
        @app.post("/upload/youtube/v3/videos")
        async def start(request: Request, uploadType: str = "", part: str = ""):
            self.seen(request, "init")
            if bearer(request) not in self.tokens:
                return JSONResponse(google_error(401, "authError", "Invalid Credentials", "global"), status_code=401)
            problem = self._check_start(request, uploadType, part, await request.json())
            if problem:
                return self.violation(problem, body=google_error(400, "badRequest", problem, "global"))
            if fault := self.take_fault("init"):
                return fault_response(fault)
            body = await request.json()
            with self.lock:
                upload_id = f"upload-{next(self._ids)}"
                self.sessions[upload_id] = {"size": int(request.headers["x-upload-content-length"]),
                                            "type": request.headers["x-upload-content-type"], "data": b"",
                                            "resource": body, "video": None}
            location = f"{self.base_url}/upload/youtube/v3/videos?uploadType=resumable&upload_id={upload_id}"
            return Response(status_code=200, headers={"Location": location})

        @app.get("/youtube/v3/channels")
        async def channels(request: Request, part: str = "", mine: str = ""):
            self.seen(request, "channels")
            if bearer(request) not in self.tokens:
                return JSONResponse(google_error(401, "authError", "Invalid Credentials", "global"), status_code=401)
            if "contentDetails" not in part.split(",") or mine != "true":
                return self.violation(f"channels.list part=contentDetails&mine=true, got part={part!r} mine={mine!r}")
            return {"kind": "youtube#channelListResponse", "items": [{"id": "UCherald", "contentDetails": {
                "relatedPlaylists": {"likes": "", "uploads": UPLOADS}}}]}

        @app.get("/youtube/v3/playlistItems")
        async def playlist_items(request: Request, part: str = "", playlistId: str = "", maxResults: int = 5):
            self.seen(request, "uploads")
            if bearer(request) not in self.tokens:
                return JSONResponse(google_error(401, "authError", "Invalid Credentials", "global"), status_code=401)
            if "snippet" not in part.split(",") or playlistId != UPLOADS or not 0 <= maxResults <= 50:
                return self.violation("playlistItems.list part=snippet of the uploads playlist, maxResults ≤ 50")
            with self.lock:
                listed = [v for v in reversed(self.videos) if v["listed"]][:maxResults]
            return {"kind": "youtube#playlistItemListResponse", "items": [{"kind": "youtube#playlistItem", "snippet": {
                **{k: v["snippet"][k] for k in ("title", "description")}, "playlistId": UPLOADS,
                "resourceId": {"kind": "youtube#video", "videoId": v["id"]}}} for v in listed]}

        @app.put("/upload/youtube/v3/videos")
        async def put(request: Request, upload_id: str = ""):
            data = await request.body()
            content_range = request.headers.get("content-range")
            status_query = not data and content_range is not None and content_range.startswith("bytes */")
            self.seen(request, "status" if status_query else "upload")
            if bearer(request) not in self.tokens:
                return JSONResponse(google_error(401, "authError", "Invalid Credentials", "global"), status_code=401)
            session = self.sessions.get(upload_id)
            if session is None:
                return JSONResponse(google_error(404, "notFound", "upload session not found", "global"), 404)
            if status_query:
                if content_range != f"bytes */{session['size']}":
                    return self.violation(f"a status query names the total size: {content_range!r}")
                if fault := self.take_fault("status"):
                    return fault_response(fault)
                if session["video"] is not None:
                    return JSONResponse(session["video"], status_code=201)
                received = len(session["data"])
                headers = {"Range": f"bytes=0-{received - 1}"} if received else {}
                return Response(status_code=308, headers=headers)
            problem = self._check_put(request, session, data, content_range)
            if problem:
                return self.violation(problem, body=google_error(400, "badRequest", problem, "global"))
            fault = self.take_fault("upload")
            if fault and not fault.after_create and not fault.delay_s:
                return fault_response(fault)
            with self.lock:
                if self._interrupt:
                    keep = self._interrupt.pop(0)
                    session["data"] += data[:keep]
                    return JSONResponse(google_error(503, "backendError", "Backend Error", "global"), 503)
                session["data"] += data
                if len(session["data"]) != session["size"]:
                    return Response(status_code=308, headers={"Range": f"bytes=0-{len(session['data']) - 1}"})
                video_id = f"vid{next(self._ids):08d}"
                resource = session["resource"]
                session["video"] = {"kind": "youtube#video", "id": video_id, "snippet": resource["snippet"],
                                    "status": {**resource["status"], "uploadStatus": "uploaded"}}
                self.videos.append({**session["video"], "bytes": len(session["data"]), "listed": self.list_uploads})
            return await self.answer(fault, JSONResponse(session["video"], status_code=201))

    @staticmethod
    def _check_start(request: Request, upload_type: str, part: str, body: Any) -> str | None:
        if upload_type != "resumable":
            return f"uploadType must be resumable, got {upload_type!r}"
        if not {"snippet", "status"} <= set(part.split(",")):
            return f"part must name the parts sent (snippet,status), got {part!r}"
        if not request.headers.get("content-type", "").startswith("application/json"):
            return "the video resource is sent as JSON"
        if not request.headers.get("x-upload-content-length", "").isdigit():
            return "X-Upload-Content-Length is required"
        if not request.headers.get("x-upload-content-type", "").startswith("video/"):
            return "X-Upload-Content-Type must be a video MIME type"
        snippet, status = body.get("snippet") or {}, body.get("status") or {}
        title, description = snippet.get("title") or "", snippet.get("description") or ""
        if not 1 <= len(title) <= 100 or len(description.encode()) > 5000 or any(
                c in title + description for c in "<>"):
            return "snippet.title 1–100 characters, description ≤ 5000 bytes, neither with < or >"
        if status.get("privacyStatus") not in ("private", "unlisted", "public"):
            return f"status.privacyStatus must be private, unlisted or public, got {status.get('privacyStatus')!r}"
        return None

    @staticmethod
    def _check_put(request: Request, session: dict[str, Any], data: bytes, content_range: str | None) -> str | None:
        if request.headers.get("content-type") != session["type"]:
            return f"the PUT's Content-Type must be the announced {session['type']}"
        start = 0
        if content_range is not None:
            match = _RANGE.match(content_range)
            if not match or int(match.group(3)) != session["size"] or int(match.group(2)) != session["size"] - 1:
                return f"bad Content-Range {content_range!r} for {session['size']} bytes"
            start = int(match.group(1))
        if start != len(session["data"]):
            return f"the upload must resume at byte {len(session['data'])}, not {start}"
        if start + len(data) != session["size"]:
            return f"{len(data)} bytes from {start} do not end at the announced {session['size']}"
        return None
