"""Edits racing the due time, on real PostgreSQL, a real broker and the running publisher.

Posts for two (fake, real-HTTP) Mastodon accounts are due a few seconds apart; each gets an edit
of its text sent at a different moment around its due time: well before, while the dispatcher
starts its attempts (a little ahead of the due time), and after. Whatever the timing, each post
has exactly one outcome: the edit was accepted and both destinations published the edited text,
or it was refused with `destination_started` and both published the original. Never both, never
one destination edited and the other not.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from tests.fakes.mastodon_server import FakeMastodon
from tests.support import Api, role_loops, running, wait_until

pytestmark = pytest.mark.e2e

TOKENS = ("token-of-one", "token-of-two")
# When each post's edit is sent, relative to its due time (seconds): before the dispatcher can have
# started it, around its start (publish_lead_s ahead of the due time), and after.
OFFSETS = (-6.0, -4.0, -3.0, -2.5, -2.0, -1.5, -1.0, -0.5, 0.0, 1.0, 3.0, 6.0)


def test_an_edit_racing_the_due_time_is_either_published_or_refused(heralds, settings):
    herald = heralds.start(resume_relays=False, dispatch_interval_s=0.2)
    with FakeMastodon(valid_tokens=set(TOKENS)) as mastodon, \
            running(role_loops(herald, "handler", "relay", "processors", "projections"), must_stop=True,
                    join_timeout=15), \
            TestClient(herald.gateway()) as http:
        api = Api(http, admin_key=settings.admin_api_key)
        ws, key = api.open_workspace(name="Race", tier="business")
        accounts = [api.connect(ws, key, f"acc{n}", platform="mastodon", access_token=token,
                                instance_url=mastodon.base_url) for n, token in enumerate(TOKENS)]
        api.grant(ws, key, 2 * len(OFFSETS))

        start = datetime.now(UTC) + timedelta(seconds=10)
        posts = []
        for n, offset in enumerate(OFFSETS):
            due = start + timedelta(seconds=0.7 * n)
            answer = api.schedule(ws, key, accounts, text=f"original {n}", publish_at=due, post_id=f"race-{n}")
            assert answer.status_code == 201, answer.text
            posts.append((f"race-{n}", due, offset))

        answers: dict[str, tuple[int, str | None]] = {}

        def edit(post_id: str, n: int, at: datetime) -> None:
            time.sleep(max(0.0, (at - datetime.now(UTC)).total_seconds()))
            answer = http.patch(f"/v1/workspaces/{ws}/posts/{post_id}", headers=key, json={"text": f"edited {n}"})
            answers[post_id] = (answer.status_code, answer.json().get("reason_code"))

        threads = [threading.Thread(target=edit, args=(post_id, n, due + timedelta(seconds=offset)))
                   for n, (post_id, due, offset) in enumerate(posts)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

        def all_published():
            texts = [s["text"] for s in mastodon.statuses]
            return texts if len(texts) >= 2 * len(posts) else None

        wait_until(all_published, "every destination published", timeout=90)
        time.sleep(1)  # nothing more may arrive: each destination once
        by_text: dict[str, int] = {}
        for status in mastodon.statuses:
            by_text[status["text"]] = by_text.get(status["text"], 0) + 1
        assert len(mastodon.statuses) == 2 * len(posts), by_text

        edited = refused = 0
        for n, (post_id, _due, offset) in enumerate(posts):
            status, reason = answers[post_id]
            original, changed = by_text.get(f"original {n}", 0), by_text.get(f"edited {n}", 0)
            if status == 200:
                assert (original, changed) == (0, 2), f"{post_id} (edit at {offset:+} s) was accepted: {by_text}"
                edited += 1
            else:
                assert (status, reason) == (409, "destination_started"), (post_id, status, reason)
                assert (original, changed) == (2, 0), f"{post_id} (edit at {offset:+} s) was refused: {by_text}"
                refused += 1
        print(f"\nedits accepted: {edited}, refused because publishing had started: {refused}")
        assert edited >= 1 and refused >= 1, "the edits raced the due time on both sides"

        def wallet_settled():
            wallet = http.get(f"/v1/workspaces/{ws}/wallet", headers=key).json()
            return wallet if wallet["held"] == 0 else None

        wallet = wait_until(wallet_settled, "every hold ended", timeout=30)
        assert wallet["available"] == 0, "every destination consumed exactly its one credit"
