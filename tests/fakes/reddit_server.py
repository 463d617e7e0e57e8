"""A fake Reddit OAuth API: the subset Herald uses, checked against the docs, with faults.

    POST /api/submit                 bearer token, a descriptive User-Agent, form body (api_type=json, sr, kind
                                     self|link, title ≤ 300, text for self / url for link, flair_id when the
                                     subreddit requires one) → {"json": {"errors": [], "data": {url, id, name}}};
                                     refusals as {"json": {"errors": [[CODE, message, field]]}} with HTTP 200
    GET  /user/{name}/submitted      the token's own submissions, newest first (a t3 Listing)

Every answer carries X-Ratelimit-Used/Remaining/Reset (seconds to the period's end); a 429 too. An
unknown or expired token answers 401 {"message": "Unauthorized", "error": 401}. Steps for faults:
"submit", "submitted".

Docs: https://www.reddit.com/dev/api/#POST_api_submit, https://github.com/reddit-archive/reddit/wiki/API,
https://github.com/reddit-archive/reddit/wiki/OAuth2.
"""

from __future__ import annotations

import itertools
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.fakes.platform_server import FakePlatform, fault_response

TOKEN = "reddit-fake-token"
USERNAME = "herald_bot"
SUBREDDITS = {"test": {"flair_required": False}, "flairy": {"flair_required": True, "flairs": {"flair-123"}}}
_FIELDS = {"api_type", "sr", "kind", "title", "text", "url", "flair_id", "flair_text", "resubmit", "sendreplies",
           "nsfw", "spoiler", "richtext_json"}


def rate_limit_headers(remaining: int = 95, reset_s: int = 300) -> dict[str, str]:
    return {"X-Ratelimit-Used": str(100 - remaining), "X-Ratelimit-Remaining": str(remaining),
            "X-Ratelimit-Reset": str(reset_s)}


def _errors(code: str, message: str, field: str) -> JSONResponse:
    return JSONResponse({"json": {"errors": [[code, message, field]]}}, headers=rate_limit_headers())


class FakeReddit(FakePlatform):
    name = "reddit"

    def __init__(self) -> None:
        self.tokens = {TOKEN}
        self.posts: list[dict[str, Any]] = []
        self._ids = itertools.count(36**5)
        super().__init__()

    def revoke(self, token: str = TOKEN) -> None:
        with self.lock:
            self.tokens.discard(token)

    def _refusal(self, request: Request) -> JSONResponse | None:
        agent = request.headers.get("user-agent", "")
        if not agent or agent.lower().startswith(("python", "httpx", "python-httpx", "java", "curl")):
            return self.violation(f"Reddit asks for a unique, descriptive User-Agent, got {agent!r}", status=429)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or token not in self.tokens:
            return JSONResponse({"message": "Unauthorized", "error": 401}, status_code=401,
                                headers=rate_limit_headers())
        return None

    def routes(self, app: FastAPI) -> None:
        @app.post("/api/submit")
        async def submit(request: Request):
            self.seen(request, "submit")
            if refused := self._refusal(request):
                return refused
            if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
                return self.violation("/api/submit takes a form body")
            form = {k: v[0] for k, v in parse_qs((await request.body()).decode(), keep_blank_values=True).items()}
            problem = self._check(form)
            if problem:
                return self.violation(problem)
            fault = self.take_fault("submit")
            if fault and not fault.after_create and not fault.delay_s:
                return fault_response(fault)
            sub = SUBREDDITS.get(form["sr"].lower())
            if sub is None:
                return _errors("SUBREDDIT_NOEXIST", "that subreddit doesn't exist", "sr")
            if sub["flair_required"] and form.get("flair_id") not in sub["flairs"]:
                return _errors("SUBMIT_VALIDATION_FLAIR_REQUIRED", "Your post must contain post flair.", "flair")
            with self.lock:
                post_id = _base36(next(self._ids))
                post = {"id": post_id, "name": f"t3_{post_id}", "subreddit": form["sr"], "title": form["title"],
                        "selftext": form.get("text", ""), "kind": form["kind"], "flair_id": form.get("flair_id"),
                        "permalink": f"/r/{form['sr']}/comments/{post_id}/post/"}
                post["url"] = form.get("url") or f"https://www.reddit.com{post['permalink']}"
                self.posts.append(post)
            answer = {"json": {"errors": [], "data": {"url": post["url"] if form["kind"] == "link" else
                                                      f"https://www.reddit.com{post['permalink']}",
                                                      "drafts_count": 0, "id": post_id, "name": post["name"]}}}
            return await self.answer(fault, JSONResponse(answer, headers=rate_limit_headers()))

        @app.get("/user/{username}/submitted")
        async def submitted(request: Request, username: str, limit: int = 25, sort: str = "new"):
            self.seen(request, "submitted")
            if refused := self._refusal(request):
                return refused
            if username != USERNAME or not 1 <= limit <= 100 or sort != "new":
                return self.violation(f"submitted of {username!r} (limit {limit}, sort {sort})")
            if fault := self.take_fault("submitted"):
                return fault_response(fault)
            with self.lock:
                children = [{"kind": "t3", "data": p} for p in reversed(self.posts)][:limit]
            return JSONResponse({"kind": "Listing", "data": {"after": None, "before": None, "children": children}},
                                headers=rate_limit_headers())

    @staticmethod
    def _check(form: dict[str, str]) -> str | None:
        unknown = set(form) - _FIELDS
        if unknown:
            return f"unknown submit fields {sorted(unknown)}"
        if form.get("api_type") != "json":
            return "api_type=json is expected"
        if not form.get("sr") or not form.get("title") or len(form["title"]) > 300:
            return "sr and a title of 1–300 characters are required"
        if form.get("kind") == "self":
            if "url" in form:
                return "a self post takes text, not url"
        elif form.get("kind") == "link":
            if not form.get("url", "").startswith("http") or "text" in form:
                return "a link post takes a url and no text"
        else:
            return f"kind must be self or link here, got {form.get('kind')!r}"
        return None


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out or "0"
