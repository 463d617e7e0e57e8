"""The content workflow before the schedule: ideas and drafts, submission, approval and rejection."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from domain.post import hold_id_for
from schemas import commands as cmd
from tests.unit.stores import AppFactory, make_app  # noqa: F401 - the fixture
from tests.unit.test_domain import Herald


@pytest.fixture
def h(make_app: AppFactory) -> Herald:
    h = Herald(make_app)
    h.open(tier="pro")
    h.connect("acc-a")
    h.connect("acc-b", platform="mastodon")
    h.grant(10)
    return h


def draft(h: Herald, post_id: str = "p1", *destinations: str, publish_in_s: float | None = 3600,
          **extra: Any) -> dict[str, Any]:
    publish_at = h.now + timedelta(seconds=publish_in_s) if publish_in_s is not None else None
    extra.setdefault("text", "hello")
    return h.ok(cmd.CreateDraft(post_id=post_id, destinations=list(destinations or ("acc-a", "acc-b")),
                                publish_at=publish_at, **extra))


def require_approval(h: Herald, required: bool = True) -> None:
    h.ok(cmd.SetContentPolicy(requires_approval=required))


def test_a_draft_holds_nothing_and_is_not_queued(h: Herald) -> None:
    result = draft(h)
    assert result["status"] == "draft"
    post = h.post("p1")
    assert post.status == "draft" and set(post.drafts or {}) == {"acc-a", "acc-b"}
    assert h.wallet().holds == {} and h.wallet().available == 10
    assert "p1" not in h.workspace().waiting_posts
    (drafted,) = h.events_of("herald.post.drafted.v1")
    assert drafted["actor"] == "tests" and drafted["stage"] == "draft"


def test_drafts_do_not_count_against_the_queue_limit(h: Herald) -> None:
    h.ok(cmd.SetLimitOverrides(limit_overrides={"queue_size": 1}))
    for n in range(3):
        draft(h, f"d{n}")
    assert h.workspace().waiting_posts == set()


def test_an_idea_may_have_no_destinations_and_cannot_be_submitted(h: Herald) -> None:
    h.ok(cmd.CreateDraft(post_id="idea", stage="idea", text="something about spring"))
    assert h.post("idea").status == "idea"
    h.rejected(cmd.SubmitPost(post_id="idea"), "post_not_draft")


def test_submitting_without_approval_schedules_it_with_holds(h: Herald) -> None:
    draft(h)
    result = h.ok(cmd.SubmitPost(post_id="p1"))
    assert result["status"] == "scheduled"
    assert set(h.wallet().holds) == {hold_id_for("p1", "acc-a"), hold_id_for("p1", "acc-b")}
    assert "p1" in h.workspace().waiting_posts
    (scheduled,) = h.events_of("herald.post.scheduled.v1")
    assert scheduled["actor"] == "tests" and scheduled["reason"] == "submitted"
    h.rejected(cmd.SubmitPost(post_id="p1"), "post_not_draft")


def test_submitting_checks_the_content_per_platform(h: Herald) -> None:
    draft(h, "long", "acc-b", text="x" * 501)  # Mastodon's 500 characters
    h.rejected(cmd.SubmitPost(post_id="long"), "content_invalid")
    assert h.wallet().holds == {} and h.post("long").status == "draft"


def test_per_destination_text_and_media(h: Herald) -> None:
    draft(h, "p1", "acc-a", "acc-b", destination_text={"acc-b": "short"},
          destination_media={"acc-a": ["https://example.com/a.png"]})
    h.ok(cmd.SubmitPost(post_id="p1"))
    post = h.post("p1")
    assert post.destinations["acc-b"].text == "short" and post.destinations["acc-a"].text == "hello"
    assert post.media_of(post.destinations["acc-a"]) == ["https://example.com/a.png"]
    assert post.media_of(post.destinations["acc-b"]) == []


def test_submitting_checks_the_daily_limit(h: Herald) -> None:
    h.ok(cmd.SetLimitOverrides(limit_overrides={"daily_posts_per_platform": 1}))
    draft(h, "p1", "acc-a")
    draft(h, "p2", "acc-a")
    h.ok(cmd.SubmitPost(post_id="p1"))
    h.rejected(cmd.SubmitPost(post_id="p2"), "daily_post_limit_reached")
    assert h.post("p2").status == "draft"


def test_a_past_publish_at_is_refused_at_submission(h: Herald) -> None:
    draft(h, publish_in_s=60)
    h.advance(3600)
    h.rejected(cmd.SubmitPost(post_id="p1"), "publish_at_in_past")
    h.ok(cmd.SubmitPost(post_id="p1", publish_at=h.now + timedelta(hours=1)))


def test_approval_required_waits_for_an_approver_then_holds(h: Herald) -> None:
    require_approval(h)
    assert h.workspace().requires_approval
    draft(h)
    assert h.ok(cmd.SubmitPost(post_id="p1", comment="ready"))["status"] == "needs_approval"
    assert h.wallet().holds == {} and "p1" not in h.workspace().waiting_posts
    result = h.ok(cmd.ApprovePost(post_id="p1", comment="lgtm"), issued_by="key:approver")
    assert result["status"] == "scheduled" and len(h.wallet().holds) == 2
    (approved,) = h.events_of("herald.post.approved.v1")
    assert approved == {"post_id": "p1", "actor": "key:approver", "reason": "lgtm"}
    h.rejected(cmd.ApprovePost(post_id="p1"), "post_not_awaiting_approval")


def test_rejection_sends_it_back_to_draft_with_the_comment(h: Herald) -> None:
    require_approval(h)
    draft(h)
    h.ok(cmd.SubmitPost(post_id="p1"))
    assert h.ok(cmd.RejectPost(post_id="p1", comment="wrong hashtag"))["status"] == "draft"
    (rejected,) = h.events_of("herald.post.rejected.v1")
    assert rejected["reason"] == "wrong hashtag"
    h.rejected(cmd.RejectPost(post_id="p1", comment="again"), "post_not_awaiting_approval")
    h.rejected(cmd.ApprovePost(post_id="p1"), "post_not_awaiting_approval")
    assert h.ok(cmd.SubmitPost(post_id="p1"))["status"] == "needs_approval"


def test_schedule_post_lands_in_needs_approval_where_approval_is_required(h: Herald) -> None:
    require_approval(h)
    result = h.schedule("p1", "acc-a", publish_in_s=600)
    assert result["status"] == "needs_approval"
    assert h.wallet().holds == {}
    h.ok(cmd.ApprovePost(post_id="p1"))
    assert h.post("p1").status == "scheduled"


def test_a_draft_can_be_cancelled_and_then_nothing_else(h: Herald) -> None:
    draft(h)
    h.ok(cmd.CancelPost(post_id="p1"))
    assert h.post("p1").status == "cancelled"
    h.rejected(cmd.SubmitPost(post_id="p1"), "post_not_draft")
    h.rejected(cmd.CancelPost(post_id="p1"), "post_not_cancellable")


def test_a_draft_for_an_account_of_another_workspace_is_refused(h: Herald) -> None:
    h.rejected(cmd.CreateDraft(post_id="p9", text="x", destinations=["nope"]), "unknown_social_account")



# Editing ---------------------------------------------------------------------------------


def scheduled(h: Herald, post_id: str = "p1", *destinations: str, publish_in_s: float = 3600) -> None:
    draft(h, post_id, *destinations, publish_in_s=publish_in_s)
    h.ok(cmd.SubmitPost(post_id=post_id))


def holds_of(h: Herald, post_id: str) -> dict[str, str]:
    """destination → its pending hold."""
    found: dict[str, str] = {}
    for hold_id, hold in h.wallet().holds.items():
        if hold.post_id == post_id:
            assert hold.destination_id not in found, "two holds for one destination"
            found[hold.destination_id] = hold_id
    return found


def test_a_draft_is_edited_freely(h: Herald) -> None:
    h.ok(cmd.CreateDraft(post_id="p1", stage="idea", text="spring"))
    h.ok(cmd.EditPost(post_id="p1", stage="draft", text="spring sale", add_destinations=["acc-a"],
                      destination_text={"acc-a": "sale!"}))
    post = h.post("p1")
    assert post.status == "draft" and post.text == "spring sale" and (post.drafts or {})["acc-a"].text == "sale!"
    assert h.wallet().holds == {}


def test_editing_a_post_awaiting_approval_withdraws_it_to_draft(h: Herald) -> None:
    require_approval(h)
    draft(h)
    h.ok(cmd.SubmitPost(post_id="p1"))
    assert h.ok(cmd.EditPost(post_id="p1", text="better"))["status"] == "draft"


def test_editing_a_scheduled_post_revalidates_and_keeps_its_holds(h: Herald) -> None:
    scheduled(h)
    holds = holds_of(h, "p1")
    h.rejected(cmd.EditPost(post_id="p1", text="x" * 501), "content_invalid")  # too long for Mastodon
    h.ok(cmd.EditPost(post_id="p1", text="edited", destination_text={"acc-b": "own"}))
    post = h.post("p1")
    assert (post.destinations["acc-a"].text, post.destinations["acc-b"].text) == ("edited", "own")
    assert holds_of(h, "p1") == holds
    h.ok(cmd.EditPost(post_id="p1", text="again"))
    assert h.post("p1").destinations["acc-b"].text == "own"


def test_adding_and_removing_destinations_moves_holds(h: Herald) -> None:
    h.connect("acc-c")
    scheduled(h, "p1", "acc-a", "acc-b")
    h.ok(cmd.EditPost(post_id="p1", add_destinations=["acc-c"], remove_destinations=["acc-b"]))
    assert set(holds_of(h, "p1")) == {"acc-a", "acc-c"}
    assert h.post("p1").destinations["acc-b"].status == "cancelled"
    h.ok(cmd.EditPost(post_id="p1", add_destinations=["acc-b"]))  # back again, with a new hold
    assert set(holds_of(h, "p1")) == {"acc-a", "acc-b", "acc-c"}
    h.rejected(cmd.EditPost(post_id="p1", add_destinations=["acc-b"]), "destination_exists")


def test_rescheduling_moves_the_holds_and_the_daily_count(h: Herald) -> None:
    h.ok(cmd.SetLimitOverrides(limit_overrides={"daily_posts_per_platform": 1}))
    scheduled(h, "p1", "acc-a")
    scheduled(h, "p2", "acc-a", publish_in_s=2 * 86400)
    old_hold = holds_of(h, "p1")["acc-a"]
    h.rejected(cmd.ReschedulePost(post_id="p1", publish_at=h.now + timedelta(days=2)), "daily_post_limit_reached")
    h.ok(cmd.ReschedulePost(post_id="p1", publish_at=h.now + timedelta(days=1)))
    assert holds_of(h, "p1")["acc-a"] != old_hold and old_hold not in h.wallet().holds
    assert h.post("p1").destinations["acc-a"].due_at == h.now + timedelta(days=1)
    # its old day is free again
    h.ok(cmd.CreateDraft(post_id="p3", text="x", destinations=["acc-a"], publish_at=h.now + timedelta(hours=2)))
    h.ok(cmd.SubmitPost(post_id="p3"))


def test_publish_now_makes_it_due_now(h: Herald) -> None:
    scheduled(h, "p1", "acc-a")
    h.ok(cmd.PublishPostNow(post_id="p1"))
    assert h.post("p1").destinations["acc-a"].due_at == h.now
    assert h.start("p1", "acc-a").accepted


def test_a_started_destination_can_no_longer_be_changed(h: Herald) -> None:
    scheduled(h, "p1", "acc-a", "acc-b", publish_in_s=0)
    assert h.start("p1", "acc-a").accepted
    h.rejected(cmd.EditPost(post_id="p1", text="late"), "destination_started")
    h.rejected(cmd.ReschedulePost(post_id="p1", publish_at=h.now + timedelta(hours=1)), "destination_started")
    h.rejected(cmd.EditPost(post_id="p1", destination_text={"acc-a": "late"}), "destination_started")
    h.ok(cmd.EditPost(post_id="p1", destination_text={"acc-b": "still in time"}))  # the other one has not started
    assert h.post("p1").destinations["acc-a"].text == "hello"


def test_a_start_asked_for_before_a_reschedule_is_not_due(h: Herald) -> None:
    scheduled(h, "p1", "acc-a", publish_in_s=0)
    h.ok(cmd.ReschedulePost(post_id="p1", publish_at=h.now + timedelta(hours=1)))
    h.rejected(cmd.StartPublishAttempt(post_id="p1", destination_id="acc-a", attempt=1), "not_due")


def test_cancelling_one_destination_releases_its_hold_and_frees_its_slot(h: Herald) -> None:
    h.ok(cmd.SetLimitOverrides(limit_overrides={"daily_posts_per_platform": 1}))
    scheduled(h, "p1", "acc-a", "acc-b")
    h.ok(cmd.CancelPost(post_id="p1", destination_ids=["acc-a"]))
    assert set(holds_of(h, "p1")) == {"acc-b"} and h.post("p1").status == "scheduled"
    scheduled(h, "p2", "acc-a")  # acc-a's platform has room that day again
    h.ok(cmd.CancelPost(post_id="p1", destination_ids=["acc-b"]))
    assert h.post("p1").status == "cancelled" and "p1" not in h.workspace().waiting_posts
    h.rejected(cmd.CancelPost(post_id="p1", destination_ids=["acc-b"]), "post_not_cancellable")
