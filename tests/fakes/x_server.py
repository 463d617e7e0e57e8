"""A fake X API v2, a real HTTP server (tests/fakes/http_fake.py), checking what the docs require
(see processors/platforms/x.py for the pages):

    POST /2/tweets                 Bearer user token; JSON text (≤ 280 weighted, unless media), media.media_ids
                                   (≤ 4, uploaded by this user and processed), reply.in_reply_to_tweet_id (a post
                                   that exists); the same text twice from one user answers 403 duplicate content
    POST /2/media/upload           multipart media (bytes) + media_category tweet_image | tweet_gif | tweet_video;
                                   videos and GIFs answer processing_info pending, then succeed after
                                   ``processing_polls`` STATUS reads
    GET  /2/media/upload?command=STATUS&media_id=…
    GET  /2/users/me
    GET  /2/users/{id}/tweets      max_results 5–100, newest first; texts as X returns them (links as t.co links,
                                   & < > HTML-escaped), referenced_tweets when asked for
    GET  /i/oauth2/authorize       response_type=code, client_id, redirect_uri, scope, state, code_challenge with
                                   code_challenge_method=S256 (PKCE is required): 302 to redirect_uri?code&state
    POST /2/oauth2/token           HTTP Basic client authentication; authorization_code (code, redirect_uri,
                                   code_verifier checked against the challenge) or refresh_token (rotated)

Every answer of the API carries x-rate-limit-limit / -remaining / -reset. Faults per route: "tweets",
"upload", "timeline". ``fail_part`` fails a given part of a thread (its n-th POST /2/tweets).
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import threading
import time
from typing import Any
from urllib.parse import urlencode

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from domain.post.platform_rules import x_weighted_length
from tests.fakes.http_fake import HttpFake, Upload, bearer, first, form

USER_ID = "1450000000000000001"
CLIENT = ("x-client-id", "x-client-secret")
CATEGORIES = {"tweet_image", "tweet_gif", "tweet_video"}


def x_problem(status: int, title: str, detail: str) -> dict[str, Any]:
    return {"title": title, "detail": detail, "type": "about:blank", "status": status}


class FakeX(HttpFake):
    name = "X API v2"

    def __init__(self, token: str = "x-user-token", processing_polls: int = 1) -> None:
        self.processing_polls = processing_polls
        self.tweets: list[dict[str, Any]] = []
        self.uploads: dict[str, dict[str, Any]] = {}
        self.codes: dict[str, dict[str, Any]] = {}
        self.refresh_tokens: set[str] = set()
        self.tweet_posts = 0
        self._failing_posts: dict[int, tuple[int, dict]] = {}
        self._data_lock = threading.Lock()
        super().__init__(token)

    def count_for(self, text: str) -> int:
        return sum(1 for t in self.tweets if t["text"] == text)

    def fail_part(self, n: int, status: int = 503) -> None:
        """The n-th POST /2/tweets from now on (1-based) answers ``status`` without posting."""
        self._failing_posts[self.tweet_posts + n] = (status, x_problem(status, "Service Unavailable", "injected"))

    def approve(self, authorization_url: str) -> dict[str, str]:
        """Plays the user approving at the authorization URL: the redirect's query (code, state)."""
        response = httpx.get(authorization_url, follow_redirects=False, timeout=5)
        assert response.status_code == 302, response.text
        location = httpx.URL(response.headers["location"])
        return dict(location.params)

    def routes(self, app: FastAPI) -> None:
        @app.post("/2/tweets")
        async def tweet(request: Request) -> Response:
            refused = self._auth(request)
            if refused is not None:
                return refused
            body = await request.json() if request.headers.get("content-type", "").startswith("application/json") \
                else None
            if not isinstance(body, dict):
                return self.violation(request, "the body must be JSON")
            with self._data_lock:
                self.tweet_posts += 1
                injected = self._failing_posts.pop(self.tweet_posts, None)
            problem = self._tweet_problem(body)
            if problem:
                return self.violation(request, problem)
            text = body.get("text", "")
            if x_weighted_length(text) > 280:
                return self._json(x_problem(400, "Invalid Request", "Your Tweet text is too long."), 400)
            if injected is not None:
                return self._json(injected[1], injected[0])
            fault = self.take_fault("tweets")
            if fault is not None and not fault.after_create:
                return await self.answer_fault(fault, x_problem(fault.status, "Error", "injected"))
            with self._data_lock:
                if any(t["text"] == text for t in self.tweets):
                    return self._json(x_problem(403, "Forbidden", "You are not allowed to create a Tweet with "
                                                "duplicate content."), 403)
                tweet_id = self.next_id()
                self.tweets.append({"id": tweet_id, "text": text,
                                    "media_ids": list((body.get("media") or {}).get("media_ids", [])),
                                    "reply_to": (body.get("reply") or {}).get("in_reply_to_tweet_id")})
            if fault is not None:
                return await self.answer_fault(fault, x_problem(fault.status, "Error", "injected"))
            return self._json({"data": {"id": tweet_id, "text": text}}, 201)

        @app.post("/2/media/upload")
        async def upload(request: Request) -> Response:
            refused = self._auth(request)
            if refused is not None:
                return refused
            if not request.headers.get("content-type", "").startswith("multipart/form-data"):
                return self.violation(request, "media upload is multipart/form-data")
            fields = await form(request)
            media, category = first(fields, "media"), first(fields, "media_category")
            if not isinstance(media, Upload) or not media.content:
                return self.violation(request, "media (the file's bytes) is required")
            if category not in CATEGORIES:
                return self.violation(request, f"media_category {category!r} is not one of {sorted(CATEGORIES)}")
            fault = self.take_fault("upload")
            if fault is not None:
                return await self.answer_fault(fault, x_problem(fault.status, "Error", "injected"))
            media_id = self.next_id()
            processing = category != "tweet_image"
            with self._data_lock:
                self.uploads[media_id] = {"id": media_id, "category": category, "size": len(media.content),
                                          "reads": 0, "state": "pending" if processing else "succeeded"}
            data: dict[str, Any] = {"id": media_id, "media_key": f"3_{media_id}", "size": len(media.content)}
            if processing:
                data["processing_info"] = {"state": "pending", "check_after_secs": 1}
            return self._json({"data": data})

        @app.get("/2/media/upload")
        async def status(request: Request) -> Response:
            refused = self._auth(request)
            if refused is not None:
                return refused
            upload = self.uploads.get(request.query_params.get("media_id", ""))
            if request.query_params.get("command") != "STATUS" or upload is None:
                return self.violation(request, "STATUS of an uploaded media_id")
            with self._data_lock:
                upload["reads"] += 1
                if upload["state"] == "pending" and upload["reads"] >= self.processing_polls:
                    upload["state"] = "succeeded"
            return self._json({"data": {"id": upload["id"], "processing_info": {"state": upload["state"]}}})

        @app.get("/2/users/me")
        async def me(request: Request) -> Response:
            refused = self._auth(request)
            return refused or self._json({"data": {"id": USER_ID, "name": "Herald", "username": "herald"}})

        @app.get("/2/users/{user_id}/tweets")
        async def timeline(user_id: str, request: Request) -> Response:
            refused = self._auth(request)
            if refused is not None:
                return refused
            if user_id != USER_ID:
                return self.violation(request, f"user {user_id} is not the token's user")
            count = int(request.query_params.get("max_results", "10"))
            if not 5 <= count <= 100:
                return self.violation(request, "max_results is 5 to 100")
            fault = self.take_fault("timeline")
            if fault is not None:
                return await self.answer_fault(fault, x_problem(fault.status, "Error", "injected"))
            fields = request.query_params.get("tweet.fields", "").split(",")
            with self._data_lock:
                newest = list(reversed(self.tweets))[:count]
            data = []
            for t in newest:
                shown: dict[str, Any] = {"id": t["id"], "text": _as_x_shows(t["text"]),
                                         "edit_history_tweet_ids": [t["id"]]}
                if "referenced_tweets" in fields and t["reply_to"]:
                    shown["referenced_tweets"] = [{"type": "replied_to", "id": t["reply_to"]}]
                data.append(shown)
            return self._json({"data": data, "meta": {"result_count": len(data)}})

        @app.get("/i/oauth2/authorize")
        async def authorize(request: Request) -> Response:
            q = request.query_params
            missing = [n for n in ("response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge",
                                   "code_challenge_method") if not q.get(n)]
            if missing:
                return self.violation(request, f"authorize needs {missing} (PKCE is required)")
            if q["response_type"] != "code" or q["code_challenge_method"] != "S256" or q["client_id"] != CLIENT[0]:
                return self.violation(request, "response_type=code, code_challenge_method=S256, a known client_id")
            code = f"code-{self.next_id()}"
            self.codes[code] = {"challenge": q["code_challenge"], "redirect_uri": q["redirect_uri"],
                                "scope": q["scope"], "used": False}
            return RedirectResponse(f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}", 302)

        @app.post("/2/oauth2/token")
        async def token(request: Request) -> Response:
            scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "basic":
                return self.violation(request, "a confidential client authenticates with HTTP Basic", status=401)
            if tuple(base64.b64decode(encoded).decode().split(":", 1)) != CLIENT:
                return JSONResponse({"error": "unauthorized_client", "error_description": "Missing valid "
                                     "authorization header"}, status_code=401)
            fields = await form(request)
            grant = first(fields, "grant_type")
            if grant == "authorization_code":
                issued = self.codes.get(first(fields, "code") or "")
                verifier = first(fields, "code_verifier") or ""
                challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
                if issued is None or issued["used"] or issued["redirect_uri"] != first(fields, "redirect_uri") \
                        or challenge != issued["challenge"]:
                    return JSONResponse({"error": "invalid_request", "error_description": "Value passed for the "
                                         "authorization code was invalid."}, status_code=400)
                issued["used"] = True
                return JSONResponse(self._issue(issued["scope"]))
            if grant == "refresh_token":
                presented = first(fields, "refresh_token")
                if presented not in self.refresh_tokens:
                    return JSONResponse({"error": "invalid_request", "error_description": "Value passed for the "
                                         "token was invalid."}, status_code=400)
                self.refresh_tokens.discard(presented)
                return JSONResponse(self._issue(" ".join(("tweet.read", "tweet.write", "offline.access"))))
            return self.violation(request, f"grant_type {grant!r}")

    def _issue(self, scope: str) -> dict[str, Any]:
        access, refresh = f"x-access-{self.next_id()}", f"x-refresh-{self.next_id()}"
        self.valid_tokens.add(access)
        self.refresh_tokens.add(refresh)
        return {"token_type": "bearer", "expires_in": 7200, "access_token": access, "scope": scope,
                "refresh_token": refresh}

    def _auth(self, request: Request) -> Response | None:
        token = bearer(request)
        if token is None:
            return self.violation(request, "Authorization: Bearer <user token> is required", status=401)
        if token not in self.valid_tokens:
            return self._json(x_problem(401, "Unauthorized", "Unauthorized"), 401)
        return None

    def _tweet_problem(self, body: dict[str, Any]) -> str | None:
        unknown = set(body) - {"text", "media", "reply", "quote_tweet_id", "poll", "reply_settings", "geo",
                               "for_super_followers_only", "direct_message_deep_link", "nullcast"}
        if unknown:
            return f"unknown fields {sorted(unknown)}"
        media_ids = (body.get("media") or {}).get("media_ids", [])
        if not body.get("text") and not media_ids:
            return "text or media is required"
        if len(media_ids) > 4:
            return "at most 4 media"
        for media_id in media_ids:
            upload = self.uploads.get(media_id)
            if upload is None or upload["state"] != "succeeded":
                return f"media {media_id} is not uploaded and processed"
        categories = {self.uploads[m]["category"] for m in media_ids}
        if len(media_ids) > 1 and categories != {"tweet_image"}:
            return "a video or GIF is attached alone"
        reply_to = (body.get("reply") or {}).get("in_reply_to_tweet_id")
        if reply_to is not None and not any(t["id"] == reply_to for t in self.tweets):
            return f"in_reply_to_tweet_id {reply_to} does not exist"
        return None

    def _json(self, body: Any, status: int = 200) -> JSONResponse:
        reset = str(int(time.time()) + 900)
        return JSONResponse(body, status_code=status, headers={"x-rate-limit-limit": "100",
                                                               "x-rate-limit-remaining": "99",
                                                               "x-rate-limit-reset": reset})


def _as_x_shows(text: str) -> str:
    """Links become t.co links and & < > are HTML-escaped, as the v2 API returns texts."""
    return re.sub(r"https?://\S+", lambda m: "https://t.co/" + hashlib.sha1(m.group().encode()).hexdigest()[:10],
                  html.escape(text, quote=False))
