"""Rescheduling and publishing now some destinations of a scheduled post: each keeps its own due
time, hold and daily slot (docs/content-workflow.md, "One destination at a time")."""

from __future__ import annotations

from datetime import timedelta

from schemas import commands as cmd
from tests.unit.stores import AppFactory, make_app  # noqa: F401 - the fixture
from tests.unit.test_content_workflow import draft, h, holds_of, scheduled  # noqa: F401 - the fixture
from tests.unit.test_domain import Herald


def day_of(h: Herald, hours: float) -> str:
    return h.workspace().local_day(h.now + timedelta(hours=hours))


def test_moving_one_of_two_destinations_leaves_the_other_where_it_was(h: Herald) -> None:
    scheduled(h, "p1", "acc-a", "acc-b")  # acc-a: sandbox, acc-b: mastodon, both in an hour
    before = holds_of(h, "p1")
    result = h.ok(cmd.ReschedulePost(post_id="p1", publish_at=h.now + timedelta(days=2), destination_ids=["acc-b"]))
    post = h.post("p1")
    assert post.destinations["acc-a"].due_at == h.now + timedelta(hours=1)
    assert post.destinations["acc-b"].due_at == h.now + timedelta(days=2)
    assert post.publish_at == h.now + timedelta(hours=1)  # the post's own time stays
    after = holds_of(h, "p1")
    assert after["acc-a"] == before["acc-a"] and after["acc-b"] != before["acc-b"]
    assert before["acc-b"] not in h.wallet().holds
    assert result["destinations"] == ["acc-b"] and result["released_holds"] == [before["acc-b"]]
    (revised,) = h.events_of("herald.post.revised.v1")
    assert [d["destination_id"] for d in revised["destinations"]] == ["acc-b"]
    assert revised["change"] == "reschedule"
    # the daily slots follow: mastodon's moved to its new day, sandbox's stayed
    ws = h.workspace()
    assert ws.daily_posts_on(day_of(h, 1), "sandbox") == 1
    assert ws.daily_posts_on(day_of(h, 1), "mastodon") == 0
    assert ws.daily_posts_on(day_of(h, 48), "mastodon") == 1


def test_publishing_one_destination_now(h: Herald) -> None:
    scheduled(h, "p1", "acc-a", "acc-b")
    before = holds_of(h, "p1")
    h.ok(cmd.PublishPostNow(post_id="p1", destination_ids=["acc-a"]))
    post = h.post("p1")
    assert post.destinations["acc-a"].due_at == h.now
    assert post.destinations["acc-b"].due_at == h.now + timedelta(hours=1)
    assert holds_of(h, "p1")["acc-b"] == before["acc-b"]
    assert h.start("p1", "acc-a").accepted
    h.outcome("p1", "acc-a", 1, "published")
    assert h.post("p1").destinations["acc-b"].status == "pending"
    # the other one can still be moved on its own, though the post as a whole no longer can
    h.rejected(cmd.ReschedulePost(post_id="p1", publish_at=h.now + timedelta(hours=3)), "destination_started")
    h.ok(cmd.ReschedulePost(post_id="p1", publish_at=h.now + timedelta(hours=3), destination_ids=["acc-b"]))
    assert h.post("p1").destinations["acc-b"].due_at == h.now + timedelta(hours=3)
    assert set(holds_of(h, "p1")) == {"acc-b"}


def test_a_started_destination_is_refused_and_nothing_changes(h: Herald) -> None:
    scheduled(h, "p1", "acc-a", "acc-b", publish_in_s=0)
    assert h.start("p1", "acc-a").accepted
    decided = [kind for kind, _, _ in h.events() if "rejected" not in kind]
    holds, workspace = holds_of(h, "p1"), dict(h.workspace().daily_posts or {})
    h.rejected(cmd.ReschedulePost(post_id="p1", publish_at=h.now + timedelta(hours=2), destination_ids=["acc-a"]),
               "destination_started")
    h.rejected(cmd.PublishPostNow(post_id="p1", destination_ids=["acc-a", "acc-b"]), "destination_started")
    assert [kind for kind, _, _ in h.events() if "rejected" not in kind] == decided
    assert holds_of(h, "p1") == holds
    assert h.workspace().daily_posts == workspace
    assert h.post("p1").destinations["acc-b"].due_at == h.now


def test_exactly_one_hold_per_waiting_destination_after_moves(h: Herald) -> None:
    h.connect("acc-c")
    scheduled(h, "p1", "acc-a", "acc-b", "acc-c")
    h.ok(cmd.ReschedulePost(post_id="p1", publish_at=h.now + timedelta(hours=5), destination_ids=["acc-a", "acc-c"]))
    h.ok(cmd.PublishPostNow(post_id="p1", destination_ids=["acc-c"]))
    h.ok(cmd.ReschedulePost(post_id="p1", publish_at=h.now + timedelta(hours=6)))  # the whole post again
    found = holds_of(h, "p1")  # asserts no destination has two
    assert set(found) == {"acc-a", "acc-b", "acc-c"} and len(h.wallet().holds) == 3
    assert {d.due_at for d in h.post("p1").destinations.values()} == {h.now + timedelta(hours=6)}


def test_the_daily_limit_is_checked_on_the_destinations_new_day(h: Herald) -> None:
    h.ok(cmd.SetLimitOverrides(limit_overrides={"daily_posts_per_platform": 1}))
    scheduled(h, "p1", "acc-a", "acc-b")
    scheduled(h, "p2", "acc-b", publish_in_s=2 * 86400)  # mastodon is full that day
    h.rejected(cmd.ReschedulePost(post_id="p1", publish_at=h.now + timedelta(days=2), destination_ids=["acc-b"]),
               "daily_post_limit_reached")
    assert h.post("p1").destinations["acc-b"].due_at == h.now + timedelta(hours=1)
    h.ok(cmd.ReschedulePost(post_id="p1", publish_at=h.now + timedelta(days=2), destination_ids=["acc-a"]))
    # sandbox's old day is free again, mastodon's is not (p1's acc-b is still due then)
    scheduled(h, "p3", "acc-a", publish_in_s=2 * 3600)
    draft(h, "p4", "acc-b", publish_in_s=2 * 3600)
    h.rejected(cmd.SubmitPost(post_id="p4"), "daily_post_limit_reached")


def test_a_post_due_on_several_days_frees_each_day_when_cancelled(h: Herald) -> None:
    scheduled(h, "p1", "acc-a", "acc-b")
    h.ok(cmd.ReschedulePost(post_id="p1", publish_at=h.now + timedelta(days=3), destination_ids=["acc-a"]))
    ws = h.workspace()
    assert (ws.daily_posts_on(day_of(h, 72), "sandbox"), ws.daily_posts_on(day_of(h, 1), "mastodon")) == (1, 1)
    h.ok(cmd.CancelPost(post_id="p1"))
    ws = h.workspace()
    assert "p1" not in ws.waiting_posts and h.wallet().holds == {}
    assert (ws.daily_posts_on(day_of(h, 72), "sandbox"), ws.daily_posts_on(day_of(h, 1), "mastodon")) == (0, 0)


def test_destination_ids_must_be_on_a_scheduled_post(h: Herald) -> None:
    draft(h, "d1")
    h.rejected(cmd.ReschedulePost(post_id="d1", publish_at=h.now + timedelta(hours=2), destination_ids=["acc-a"]),
               "post_not_draft")
    scheduled(h, "p1", "acc-a")
    h.rejected(cmd.PublishPostNow(post_id="p1", destination_ids=["acc-z"]), "unknown_destination")
