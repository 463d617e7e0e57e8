"""Posting schedules, planned slots and series in the domain (both stores): top-off idempotence,
DST (America/Los_Angeles, Europe/Berlin, Asia/Kolkata), slots with content left alone, pause and
schedule changes, RRULE occurrences and the evergreen skip window."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.planning import SlotPlan, wall_time
from domain.planning.series import post_id_for
from domain.planning.slot_plan import slot_id_for
from schemas import commands as cmd
from tests.unit.stores import AppFactory, make_app  # noqa: F401 - the fixture
from tests.unit.test_domain import WS, Herald

LA, BERLIN, KOLKATA = "America/Los_Angeles", "Europe/Berlin", "Asia/Kolkata"


def planner(make_app: AppFactory, zone: str, now: datetime, tier: str = "business") -> Herald:
    h = Herald(make_app)
    h.now = now
    h.ok(cmd.OpenWorkspace(name=WS, tier=cmd.Tier(tier), timezone=zone), workspace=WS)
    h.connect("acc")
    h.grant(500)
    return h


def every_day(h: Herald, *times: str, account: str = "acc", **extra) -> dict:
    slots = [cmd.WeeklySlot(weekday=d, time=t) for d in cmd.WEEKDAYS for t in times]
    return h.ok(cmd.SetPostingSchedule(social_account_id=account, slots=slots, **extra))


def local_slots(h: Herald, zone: str, account: str = "acc") -> list[datetime]:
    plan = h.app.find(SlotPlan, account)
    return sorted(s["at"].astimezone(ZoneInfo(zone)) for s in plan.slots.values())


# Wall times ---------------------------------------------------------------------------------


def test_a_nine_oclock_slot_stays_nine_local_across_both_changes_in_los_angeles(make_app: AppFactory) -> None:
    h = planner(make_app, LA, datetime(2026, 3, 1, 12, 0, tzinfo=UTC))  # spring forward: 8 March
    every_day(h, "09:00")
    result = h.ok(cmd.TopOffSlots())
    assert result["slots_created"] == 28
    walls = local_slots(h, LA)
    assert {(w.hour, w.minute) for w in walls} == {(9, 0)}
    offsets = {w.date(): w.utcoffset() for w in walls}
    assert offsets[date(2026, 3, 7)] == timedelta(hours=-8) and offsets[date(2026, 3, 9)] == timedelta(hours=-7)
    h.now = datetime(2026, 10, 25, 12, 0, tzinfo=UTC)  # fall back: 1 November
    h.ok(cmd.TopOffSlots())
    walls = [w for w in local_slots(h, LA) if w.date() >= date(2026, 10, 30)]
    assert {(w.hour, w.minute) for w in walls} == {(9, 0)}
    assert {w.utcoffset() for w in walls if w.date() >= date(2026, 11, 2)} == {timedelta(hours=-8)}


@pytest.mark.parametrize("zone, gap_day, wanted, expected_utc", [
    (LA, date(2026, 3, 8), "02:30", datetime(2026, 3, 8, 10, 0, tzinfo=UTC)),  # → 03:00 PDT
    (BERLIN, date(2026, 3, 29), "02:30", datetime(2026, 3, 29, 1, 0, tzinfo=UTC)),  # → 03:00 CEST
])
def test_a_slot_in_the_skipped_hour_moves_to_the_next_valid_local_time(make_app: AppFactory, zone: str,
                                                                       gap_day: date, wanted: str,
                                                                       expected_utc: datetime) -> None:
    h = planner(make_app, zone, datetime.combine(gap_day - timedelta(days=3), time(12), tzinfo=UTC))
    every_day(h, wanted)
    h.ok(cmd.TopOffSlots(days=7))
    (planned,) = [s for e in h.events_of("herald.posting_schedule.slots_planned.v1") for s in e["slots"]
                  if s["wanted"] == f"{gap_day.isoformat()}T{wanted}"]
    assert datetime.fromisoformat(planned["at"]) == expected_utc
    assert planned["local"] == f"{gap_day.isoformat()}T03:00" and planned["adjusted"] == "skipped_hour"
    others = [s for e in h.events_of("herald.posting_schedule.slots_planned.v1") for s in e["slots"]
              if s is not planned and s["adjusted"] is None]
    assert others and all(s["local"].endswith(f"T{wanted}") for s in others)


@pytest.mark.parametrize("zone, fold_day, expected_utc", [
    (LA, date(2026, 11, 1), datetime(2026, 11, 1, 8, 30, tzinfo=UTC)),  # 01:30 PDT, the first
    (BERLIN, date(2026, 10, 25), datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),  # 02:30 CEST, the first
])
def test_an_ambiguous_slot_is_its_first_occurrence(make_app: AppFactory, zone: str, fold_day: date,
                                                   expected_utc: datetime) -> None:
    wanted = "01:30" if zone == LA else "02:30"
    h = planner(make_app, zone, datetime.combine(fold_day - timedelta(days=2), time(12), tzinfo=UTC))
    every_day(h, wanted)
    h.ok(cmd.TopOffSlots(days=5))
    (planned,) = [s for e in h.events_of("herald.posting_schedule.slots_planned.v1") for s in e["slots"]
                  if s["wanted"].startswith(fold_day.isoformat())]
    assert datetime.fromisoformat(planned["at"]) == expected_utc and planned["adjusted"] == "ambiguous_first"
    assert planned["local"] == f"{fold_day.isoformat()}T{wanted}"


def test_a_half_hour_zone_keeps_its_wall_time(make_app: AppFactory) -> None:
    h = planner(make_app, KOLKATA, datetime(2026, 6, 1, 0, 0, tzinfo=UTC))
    every_day(h, "09:00", "18:45")
    assert h.ok(cmd.TopOffSlots())["slots_created"] == 56
    walls = local_slots(h, KOLKATA)
    assert {(w.hour, w.minute) for w in walls} == {(9, 0), (18, 45)}
    assert {w.astimezone(UTC).minute for w in walls} == {30, 15}  # +05:30: 03:30 and 13:15 UTC


ZONES = st.sampled_from([LA, BERLIN, KOLKATA, "Australia/Lord_Howe", "America/St_Johns", "Pacific/Apia"])


@settings(max_examples=400, deadline=None)
@given(zone=ZONES, day=st.dates(date(2010, 1, 1), date(2035, 12, 31)), hour=st.integers(0, 23),
       minute=st.integers(0, 59))
def test_every_slot_is_at_its_wall_time_or_the_next_valid_one(zone: str, day: date, hour: int, minute: int) -> None:
    tz = ZoneInfo(zone)
    wanted = datetime.combine(day, time(hour, minute))
    at, adjusted = wall_time.instant(wanted, tz)
    wall = at.astimezone(tz).replace(tzinfo=None)
    if wall_time.exists(wanted, tz):
        assert wall == wanted
        earlier = min(wanted.replace(tzinfo=tz, fold=0).astimezone(UTC), wanted.replace(tzinfo=tz, fold=1).astimezone(UTC))
        assert at == earlier  # of two instants, the first
        assert (adjusted == wall_time.AMBIGUOUS) == (wanted.replace(tzinfo=tz, fold=1).astimezone(UTC) != at)
    else:
        assert adjusted == wall_time.SKIPPED and wall > wanted
        # nothing between the wanted wall time and the chosen one exists: it is the next valid one
        assert not wall_time.exists(wall - timedelta(minutes=1), tz)


# Top-off ---------------------------------------------------------------------------------------


def test_top_off_is_idempotent_and_plans_only_what_is_missing(make_app: AppFactory) -> None:
    h = planner(make_app, BERLIN, datetime(2026, 3, 2, 6, 0, tzinfo=UTC))
    every_day(h, "09:00", "17:30")
    first = h.ok(cmd.TopOffSlots())
    assert (first["slots_created"], first["slots_existing"]) == (56, 0)
    again = h.ok(cmd.TopOffSlots())
    assert (again["slots_created"], again["slots_existing"]) == (0, 56)
    assert h.send(cmd.TopOffSlots(), command_id="same").accepted
    assert h.send(cmd.TopOffSlots(), command_id="same").result["slots_created"] == 0
    h.advance(86_400)  # a day later: one day's slots are new at the far end
    assert h.ok(cmd.TopOffSlots())["slots_created"] == 2
    planned = [s["slot_id"] for e in h.events_of("herald.posting_schedule.slots_planned.v1") for s in e["slots"]]
    assert len(planned) == len(set(planned)) == 58
    plan = h.app.find(SlotPlan, "acc")
    assert all(slot_id_for("acc", s["at"]) == sid for sid, s in plan.slots.items())


def test_the_plan_forgets_past_slots(make_app: AppFactory) -> None:
    h = planner(make_app, "UTC", datetime(2026, 1, 5, 0, 0, tzinfo=UTC))
    every_day(h, "09:00")
    h.ok(cmd.TopOffSlots())
    for _ in range(60):
        h.advance(86_400)
        h.ok(cmd.TopOffSlots())
    plan = h.app.find(SlotPlan, "acc")
    assert len(plan.slots) <= 30  # the horizon and a day before it, not 88 days of history
    assert min(s["at"] for s in plan.slots.values()) >= h.now - timedelta(days=2)


def test_posts_per_week_spreads_over_the_week_with_rotating_times(make_app: AppFactory) -> None:
    h = planner(make_app, LA, datetime(2026, 5, 3, 12, 0, tzinfo=UTC))  # a Sunday
    result = h.ok(cmd.SetPostingSchedule(social_account_id="acc", posts_per_week=3, times=["09:00", "14:00"]))
    assert result["slots"] == [{"weekday": "mon", "time": "09:00"}, {"weekday": "wed", "time": "14:00"},
                               {"weekday": "fri", "time": "09:00"}]
    assert h.ok(cmd.TopOffSlots())["slots_created"] == 12
    h.rejected(cmd.SetPostingSchedule(social_account_id="acc", posts_per_week=14, times=["09:00"]),
               "invalid_schedule")


def test_schedules_refuse_accounts_of_other_workspaces(make_app: AppFactory) -> None:
    h = planner(make_app, LA, datetime(2026, 5, 3, 12, 0, tzinfo=UTC))
    h.ok(cmd.OpenWorkspace(name="other", timezone="UTC"), workspace="other")
    h.connect("theirs", workspace="other")
    h.rejected(cmd.SetPostingSchedule(social_account_id="theirs", posts_per_week=1, times=["09:00"]),
               "unknown_social_account")
    h.rejected(cmd.TopOffSlots(social_account_ids=["theirs"]), "unknown_social_account")


def test_a_filled_slot_is_a_draft_at_its_time_and_later_top_offs_leave_it(make_app: AppFactory) -> None:
    h = planner(make_app, BERLIN, datetime(2026, 3, 2, 6, 0, tzinfo=UTC))
    every_day(h, "09:00")
    h.ok(cmd.TopOffSlots())
    plan = h.app.find(SlotPlan, "acc")
    slot_id, slot = min(plan.slots.items(), key=lambda kv: kv[1]["at"])
    filled = h.ok(cmd.FillSlot(social_account_id="acc", slot_id=slot_id, text="Spring sale"))
    post = h.post(filled["post_id"])
    assert post.status == "draft" and post.publish_at == slot["at"] and set(post.drafts or {}) == {"acc"}
    assert h.wallet().holds == {}  # a draft holds nothing
    h.rejected(cmd.FillSlot(social_account_id="acc", slot_id=slot_id, text="again"), "slot_filled")
    h.ok(cmd.TopOffSlots())
    h.ok(cmd.SetPostingSchedule(social_account_id="acc", slots=[cmd.WeeklySlot(weekday="mon", time="10:00")]))
    h.ok(cmd.TopOffSlots())
    plan = h.app.find(SlotPlan, "acc")
    assert plan.slots[slot_id]["post_id"] == filled["post_id"]  # neither re-planned nor removed
    h.rejected(cmd.FillSlot(social_account_id="acc", slot_id="nope", text="x"), "unknown_slot")


def test_pausing_removes_empty_future_slots_and_plans_none_until_resumed(make_app: AppFactory) -> None:
    h = planner(make_app, BERLIN, datetime(2026, 3, 2, 6, 0, tzinfo=UTC))
    every_day(h, "09:00")
    h.ok(cmd.TopOffSlots())
    plan = h.app.find(SlotPlan, "acc")
    kept_id = min(plan.slots, key=lambda k: plan.slots[k]["at"])
    h.ok(cmd.FillSlot(social_account_id="acc", slot_id=kept_id, text="kept"))
    paused = every_day(h, "09:00", active=False)
    assert paused["slots_removed"] == 27
    assert h.ok(cmd.TopOffSlots())["slots_created"] == 0
    assert set(h.app.find(SlotPlan, "acc").slots) == {kept_id}
    (removed,) = h.events_of("herald.posting_schedule.slots_removed.v1")
    assert removed["reason"] == "paused" and kept_id not in removed["slot_ids"]
    every_day(h, "09:00")
    assert h.ok(cmd.TopOffSlots())["slots_created"] == 27


def test_changing_the_schedule_removes_only_the_slots_it_no_longer_makes(make_app: AppFactory) -> None:
    h = planner(make_app, BERLIN, datetime(2026, 3, 2, 6, 0, tzinfo=UTC))
    every_day(h, "09:00", "18:00")
    h.ok(cmd.TopOffSlots())
    changed = every_day(h, "09:00")
    assert changed["slots_removed"] == 28
    assert {w.hour for w in local_slots(h, BERLIN)} == {9}
    assert h.ok(cmd.TopOffSlots())["slots_created"] == 0


def test_an_unknown_time_zone_or_a_bad_time_is_refused_by_the_payload() -> None:
    with pytest.raises(ValueError, match="unknown IANA time zone"):
        cmd.SetPostingSchedule(social_account_id="acc", posts_per_week=1, times=["09:00"], timezone="Mars/Olympus")
    with pytest.raises(ValueError):
        cmd.SetPostingSchedule(social_account_id="acc", posts_per_week=1, times=["25:00"])
    with pytest.raises(ValueError):
        cmd.SetPostingSchedule(social_account_id="acc", slots=[cmd.WeeklySlot(weekday="mon", time="09:00")] * 2)


# Series -----------------------------------------------------------------------------------------


def test_an_rrule_schedules_its_occurrences_within_the_horizon_once(make_app: AppFactory) -> None:
    h = planner(make_app, BERLIN, datetime(2026, 3, 16, 12, 0, tzinfo=UTC))  # a Monday; DST on 29 March
    h.ok(cmd.DefineSeries(series_id="weekly", rrule="FREQ=WEEKLY;BYDAY=MO,TH", starts_at=datetime(2026, 1, 1, 9, 0),
                          destinations=["acc"], items=[cmd.SeriesItem(item_id="i", text="Tips every week")]))
    first = h.ok(cmd.TopOffSlots(series_ids=["weekly"]))
    assert first["occurrences_scheduled"] == 8
    assert h.ok(cmd.TopOffSlots(series_ids=["weekly"]))["occurrences_scheduled"] == 0
    scheduled = h.events_of("herald.series.occurrence_scheduled.v1")
    walls = [datetime.fromisoformat(e["occurrence_at"]).astimezone(ZoneInfo(BERLIN)) for e in scheduled]
    assert {(w.hour, w.minute) for w in walls} == {(9, 0)} and {w.weekday() for w in walls} == {0, 3}
    assert {w.utcoffset() for w in walls} == {timedelta(hours=1), timedelta(hours=2)}  # across the change
    for e in scheduled:
        post = h.post(e["post_id"])
        assert e["post_id"] == post_id_for("weekly", datetime.fromisoformat(e["occurrence_at"]))
        assert post.status == "scheduled" and post.publish_at == datetime.fromisoformat(e["occurrence_at"])
    assert len(h.wallet().holds) == 8  # each occurrence holds its credit, as any scheduled post
    h.advance(7 * 86_400)
    assert h.ok(cmd.TopOffSlots(series_ids=["weekly"]))["occurrences_scheduled"] == 2


def test_an_occurrence_the_schedule_path_refuses_is_skipped_with_its_reason(make_app: AppFactory) -> None:
    h = planner(make_app, "UTC", datetime(2026, 3, 16, 12, 0, tzinfo=UTC))
    h.ok(cmd.DefineSeries(series_id="daily", rrule="FREQ=DAILY", starts_at=datetime(2026, 1, 1, 9, 0),
                          destinations=["acc"], items=[cmd.SeriesItem(item_id="i", text="Daily")]))
    h.ok(cmd.SetLimitOverrides(limit_overrides={"queue_size": 3}))
    result = h.ok(cmd.TopOffSlots(series_ids=["daily"]))
    assert (result["occurrences_scheduled"], result["occurrences_skipped"]) == (3, 25)
    skipped = h.events_of("herald.series.occurrence_skipped.v1")
    assert {e["reason_code"] for e in skipped} == {"queue_full"}
    assert len(h.workspace().waiting_posts) == 3 and len(h.wallet().holds) == 3  # nothing half-done


def test_an_evergreen_queue_skips_items_posted_within_the_window(make_app: AppFactory) -> None:
    h = planner(make_app, "UTC", datetime(2026, 3, 16, 12, 0, tzinfo=UTC))
    items = [cmd.SeriesItem(item_id=f"e{i}", text=f"Evergreen {i}") for i in range(3)]
    h.ok(cmd.DefineSeries(series_id="green", kind="evergreen", rrule="FREQ=DAILY", starts_at=datetime(2026, 1, 1, 9),
                          destinations=["acc"], items=items, skip_days=4))
    result = h.ok(cmd.TopOffSlots(series_ids=["green"], days=10))
    scheduled = h.events_of("herald.series.occurrence_scheduled.v1")
    skipped = h.events_of("herald.series.occurrence_skipped.v1")
    # 10 daily occurrences, 3 items, none again within 4 days: every 4th day all three are too recent
    assert [e["item_id"] for e in scheduled] == ["e0", "e1", "e2", "e0", "e1", "e2", "e0", "e1"]
    assert [e["reason_code"] for e in skipped] == ["all_items_recent"] * 2
    assert result["occurrences_scheduled"] + result["occurrences_skipped"] == 10
    by_item: dict[str, list[datetime]] = {}
    for e in scheduled:
        by_item.setdefault(e["item_id"], []).append(datetime.fromisoformat(e["occurrence_at"]))
    for times in by_item.values():
        assert all(b - a >= timedelta(days=4) for a, b in zip(times, times[1:]))


def test_schedule_and_fill_commands_are_filed_under_their_account_and_post(make_app: AppFactory) -> None:
    h = planner(make_app, "UTC", datetime(2026, 3, 2, 6, 0, tzinfo=UTC))
    every_day(h, "09:00")
    h.ok(cmd.TopOffSlots())
    slot_id = min(h.app.find(SlotPlan, "acc").slots)
    filled = h.ok(cmd.FillSlot(social_account_id="acc", slot_id=slot_id, text="x"))
    records = {e["command_type"]: e["subjects"] for e in h.events_of("herald.command.accepted.v1")}
    assert records["set_posting_schedule.v1"] == ["social_account:acc"]
    assert records["fill_slot.v1"] == [f"post:{filled['post_id']}", "social_account:acc"]


@pytest.mark.parametrize("rule", ["FREQ=DAILY;INTERVAL=0", "FREQ=DAILY;COUNT=0", "FREQ=DAILY;BYHOUR=99",
                                  "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "FREQ=DAILY;UNTIL=20270101T000000Z"])
def test_a_rule_that_is_wrong_or_never_happens_is_refused(make_app: AppFactory, rule: str) -> None:
    h = planner(make_app, "UTC", datetime(2026, 3, 16, 12, 0, tzinfo=UTC))
    h.rejected(cmd.DefineSeries(series_id="s", rrule=rule, starts_at=datetime(2026, 3, 1, 9),
                                destinations=["acc"], items=[cmd.SeriesItem(item_id="i", text="x")]), "invalid_schedule")
    h.rejected(cmd.DefineSeries(series_id="s", rrule="FREQ=DAILY", starts_at=datetime(2024, 1, 1, 9),
                                destinations=["acc"], items=[cmd.SeriesItem(item_id="i", text="x")]), "invalid_schedule")
