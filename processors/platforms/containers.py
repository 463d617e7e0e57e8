"""Meta's two-step container publishing, as Instagram and Threads share it: a media container
(one, or one per item and a CAROUSEL container naming them as ``children``), polled until
FINISHED (tenacity, processors/platforms/graph.py), then published with ``creation_id``. Neither
has an idempotency key, so reconcile reads the account's recent posts and takes the one with
this text. Each platform's own module says which doc pages it follows and what differs: the
edges, the text field, the status field and how an item is described."""

from __future__ import annotations

from typing import Any

import httpx

from processors.platforms.base import ErrorKind, PublishError, PublishRequest, PublishResult
from processors.platforms.graph import classify_graph_error, wait_until_ready
from processors.platforms.http_call import call, check_content, json_of

STATUS_POLLS = 30
POLL_INTERVAL_S = 2.0
RECENT = 25


class ContainerAdapter:
    platform: str
    label: str  # for messages: "Instagram"
    user_setting: str  # the account setting naming the user: "ig_user_id"
    container_edge: str  # POST /{user}/<edge> makes a container, GET lists recent posts: "media"
    publish_edge: str  # POST /{user}/<edge> publishes one: "media_publish"
    text_field: str  # the post's text in a container and in the recent posts: "caption"
    status_field: str  # the container's state: "status_code"
    status_fields: str  # asked for when polling: "status_code,status"
    default_url: str  # the API's host and version

    def __init__(self, http: httpx.Client, base_url: str | None = None, timeout_s: float = 10,
                 poll_interval_s: float = POLL_INTERVAL_S, status_polls: int = STATUS_POLLS) -> None:
        self.http, self.base_url, self.timeout_s = http, (base_url or self.default_url).rstrip("/"), timeout_s
        self.poll_interval_s, self.status_polls = poll_interval_s, status_polls

    def item(self, url: str, *, carousel: bool) -> dict[str, str]:
        """The container form of one media URL (in a carousel or alone)."""
        raise NotImplementedError

    def publish(self, request: PublishRequest) -> PublishResult:
        check_content(self.platform, request.text, request.media_urls)
        user = request.account.setting(self.user_setting)
        text = {self.text_field: request.text}
        if not request.media_urls:
            container = self._container(request, user, {"media_type": "TEXT", **text})
        elif len(request.media_urls) == 1:
            container = self._container(request, user, {**self.item(request.media_urls[0], carousel=False), **text})
        else:
            children = [self._container(request, user, self.item(url, carousel=True)) for url in request.media_urls]
            for child in children:
                self._wait(request, child)
            container = self._container(request, user, {"media_type": "CAROUSEL", "children": ",".join(children),
                                                        **text})
        self._wait(request, container)
        published = json_of(self._call(request, "POST", f"/{user}/{self.publish_edge}", data={"creation_id": container}),
                            f"POST /{{user}}/{self.publish_edge}")
        if "id" not in published:
            raise PublishError(ErrorKind.unknown, f"{self.publish_edge} answered without a media id")
        media_id = str(published["id"])
        return PublishResult(media_id, self._permalink(request, media_id))

    def reconcile(self, request: PublishRequest) -> PublishResult | None:
        user = request.account.setting(self.user_setting)
        answer = json_of(self._call(request, "GET", f"/{user}/{self.container_edge}",
                                    params={"fields": f"id,{self.text_field},permalink,timestamp",
                                            "limit": str(RECENT)}),
                         f"GET /{{user}}/{self.container_edge}")
        found = next((m for m in answer.get("data") or []
                      if isinstance(m, dict) and m.get(self.text_field) == request.text), None)
        return None if found is None else PublishResult(str(found["id"]), found.get("permalink"))

    def _container(self, request: PublishRequest, user: str, form: dict[str, str]) -> str:
        what = f"POST /{{user}}/{self.container_edge}"
        created = json_of(self._call(request, "POST", f"/{user}/{self.container_edge}", data=form), what)
        if "id" not in created:
            raise PublishError(ErrorKind.transient, f"{what} answered without a container id")
        return str(created["id"])

    def _wait(self, request: PublishRequest, container: str) -> None:
        def status() -> dict[str, Any]:
            return json_of(self._call(request, "GET", f"/{container}", params={"fields": self.status_fields}),
                           "GET /{container-id}")

        wait_until_ready(status, field=self.status_field, polls=self.status_polls, interval_s=self.poll_interval_s,
                         what=f"{self.label} container {container}")

    def _permalink(self, request: PublishRequest, media_id: str) -> str | None:
        try:
            answer = json_of(self._call(request, "GET", f"/{media_id}", params={"fields": "permalink"}),
                             "GET /{media-id}")
        except PublishError:  # published already: a missing link must not turn it into a failure
            return None
        link = answer.get("permalink")
        return link if isinstance(link, str) else None

    def _call(self, request: PublishRequest, method: str, path: str, **kwargs: Any) -> httpx.Response:
        # A container changes nothing anyone sees: only the publish call may have posted.
        return call(self.http, method, f"{self.base_url}{path}", timeout_s=self.timeout_s,
                    classify=classify_graph_error, acts=path.endswith(f"/{self.publish_edge}"),
                    headers={"Authorization": f"Bearer {request.account.access_token}"}, **kwargs)
