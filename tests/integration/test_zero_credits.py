"""Zero credits at publish time, through the real roles: a destination whose hold is gone when
its attempt is due is skipped with reason insufficient_credits (no platform call), a
post_skipped notice is raised, and the post's other destination is published and charged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.post import hold_id_for
from projections import notifications, posts
from schemas import commands as cmd
from tests.support import decide, query_all, role_loops, running, wait_until

pytestmark = pytest.mark.integration


def test_a_destination_without_its_hold_is_skipped_and_the_rest_goes_on(heralds):
    herald = heralds.start(dispatch_interval_s=0.2)
    ws = "ws-zero"
    decide(herald.app, ws, "open", cmd.OpenWorkspace(name=ws, tier="pro"))
    for account in ("a", "b"):
        decide(herald.app, ws, f"connect-{account}", cmd.ConnectSocialAccount(
            social_account_id=account, platform="sandbox", handle=account))
    decide(herald.app, ws, "grant", cmd.GrantCredits(amount=2))
    due = datetime.now(UTC) + timedelta(seconds=2)
    decide(herald.app, ws, "post", cmd.SchedulePost(post_id="p", text="hello", destinations=["a", "b"], publish_at=due))
    # The hold of "a" is gone before the post is due (as when the clock expired it).
    decide(herald.app, ws, "release", cmd.ReleaseHold(hold_id=hold_id_for("p", "a"), reason="test"))

    def settled() -> dict | None:
        with herald.pool.connection() as conn:
            found = posts.read_post(conn, ws, "p")
        states = {d["destination_id"]: d["status"] for d in (found or {}).get("destinations", [])}
        return found if states == {"a": "skipped", "b": "published"} else None

    with running(role_loops(herald, "handler", "relay", "processors", "projections")):
        found = wait_until(settled, "a skipped, b published", timeout=90)
        reasons = {d["destination_id"]: d.get("reason") for d in found["destinations"]}
        assert reasons["a"] == "insufficient_credits"
        inbox = wait_until(lambda: _inbox(herald, ws), "the post_skipped notice", timeout=60)
        skipped = [n for n in inbox["notices"] if n["cause"] == "post_skipped"]
        assert len(skipped) == 1 and skipped[0]["detail"]["reason"] == "insufficient_credits"
        wallet = wait_until(lambda: _wallet(herald, ws) if _wallet(herald, ws)[1] == 0 else None,
                            "b's hold consumed", timeout=60)
        assert wallet == (1, 0), "one credit consumed (b), one left (a's was released)"
    assert query_all(herald, "SELECT account_id FROM sandbox_posts") == [("b",)], "no platform call for a"


def _inbox(herald, ws: str) -> dict | None:
    with herald.pool.connection() as conn:
        found = notifications.read_notifications(conn, ws)
    return found if any(n["cause"] == "post_skipped" for n in found["notices"]) else None


def _wallet(herald, ws: str) -> tuple[int, int]:
    with herald.pool.connection() as conn:
        return conn.execute("SELECT available, held FROM wallet_balances WHERE workspace_id = %s", (ws,)).fetchone()
