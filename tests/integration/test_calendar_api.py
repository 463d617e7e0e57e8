"""The planning API on a real PostgreSQL: posting schedules (problem+json for bad input), top-off,
filling a slot (a draft), series, and the calendar by week and month with its filters."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.integration.test_gateway import assert_problem
from tests.integration.test_gateway import gw  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration
BERLIN = ZoneInfo("Europe/Berlin")


def every_day(*times: str) -> dict:
    return {"slots": [{"weekday": d, "time": t} for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
                      for t in times]}


@pytest.fixture
def planned(gw):
    ws, key = gw.api.open_workspace("cal", tier="business", timezone="Europe/Berlin")
    a = gw.api.connect(ws, key, "alpha")
    b = gw.api.connect(ws, key, "beta")
    gw.api.grant(ws, key, 50)
    made = gw.http.put(f"/v1/workspaces/{ws}/social-accounts/{a}/posting-schedule", json=every_day("09:00", "15:00"),
                       headers=key)
    assert made.status_code == 200, made.text
    assert made.json()["slots_created"] == 56 and made.json()["posts_per_week"] == 14
    made = gw.http.put(f"/v1/workspaces/{ws}/social-accounts/{b}/posting-schedule",
                       json={"posts_per_week": 7, "times": ["12:00"]}, headers=key)
    assert made.status_code == 200 and made.json()["slots_created"] == 28, made.text
    return ws, key, a, b


def test_schedules_are_read_back_and_a_top_off_creates_nothing_twice(gw, planned) -> None:
    ws, key, a, _b = planned
    shown = gw.get(f"/v1/workspaces/{ws}/social-accounts/{a}/posting-schedule", headers=key)
    assert shown.status_code == 200
    assert shown.json()["timezone"] == "Europe/Berlin" and shown.json()["posts_per_week"] == 14
    again = gw.http.post(f"/v1/workspaces/{ws}/slots/top-off", json={}, headers=key)
    assert again.status_code == 200, again.text
    assert (again.json()["slots_created"], again.json()["slots_existing"]) == (0, 84)


def test_bad_schedules_are_problems(gw, planned) -> None:
    ws, key, a, _b = planned
    url = f"/v1/workspaces/{ws}/social-accounts/{a}/posting-schedule"
    unknown_zone = assert_problem(gw.http.put(url, json={**every_day("09:00"), "timezone": "Mars/Olympus"},
                                              headers=key), 422, "validation_error")
    assert "unknown IANA time zone" in str(unknown_zone)
    assert_problem(gw.http.put(url, json=every_day("24:00"), headers=key), 422, "validation_error")
    assert_problem(gw.http.put(url, json={"posts_per_week": 14, "times": ["09:00"]}, headers=key), 422,
                   "invalid_schedule")
    other_ws, other_key = gw.api.open_workspace("other", tier="pro")
    theirs = gw.api.connect(other_ws, other_key, "gamma")
    assert_problem(gw.http.put(f"/v1/workspaces/{ws}/social-accounts/{theirs}/posting-schedule",
                               json=every_day("09:00"), headers=key), 422, "unknown_social_account")
    assert_problem(gw.get(f"/v1/workspaces/{ws}/social-accounts/{theirs}/posting-schedule", headers=key), 404,
                   "no_posting_schedule")


def test_the_week_shows_every_slot_as_needing_content_until_filled(gw, planned) -> None:
    ws, key, a, b = planned
    week_day = (datetime.now(UTC) + timedelta(days=8)).astimezone(BERLIN).date()
    week = gw.get(f"/v1/workspaces/{ws}/calendar", params={"view": "week", "date": week_day.isoformat()},
                  headers=key).json()
    monday = week_day - timedelta(days=week_day.weekday())
    assert (week["from"], week["to"], week["timezone"]) == (monday.isoformat(), (monday + timedelta(days=6)).isoformat(),
                                                            "Europe/Berlin")
    assert [d["date"] for d in week["days"]] == [(monday + timedelta(days=i)).isoformat() for i in range(7)]
    assert week["needs_content"] == 21
    for day in week["days"]:
        assert sorted((i["social_account_id"], i["local_time"]) for i in day["items"]) == \
            sorted([(a, "09:00"), (a, "15:00"), (b, "12:00")])
        assert all(i["kind"] == "slot" and i["status"] == "needs_content" for i in day["items"])

    slot = week["days"][2]["items"][0]
    filled = gw.http.post(f"/v1/workspaces/{ws}/slots/{slot['slot_id']}/content", json={"text": "Spring sale"},
                          headers=key)
    assert filled.status_code == 201, filled.text
    assert filled.json()["status"] == "draft" and filled.json()["publish_at"] == slot["at"].replace("Z", "+00:00")
    assert_problem(gw.http.post(f"/v1/workspaces/{ws}/slots/{slot['slot_id']}/content", json={"text": "again"},
                                headers=key), 409, "slot_filled")
    assert_problem(gw.http.post(f"/v1/workspaces/{ws}/slots/nope/content", json={"text": "x"}, headers=key), 404,
                   "unknown_slot")
    post_at = datetime.combine(monday + timedelta(days=3), datetime.min.time(), BERLIN).replace(hour=11)
    scheduled = gw.api.schedule(ws, key, [b], text="Launch", publish_at=post_at)
    assert scheduled.status_code == 201, scheduled.text

    week = gw.get(f"/v1/workspaces/{ws}/calendar", params={"date": week_day.isoformat()}, headers=key).json()
    assert week["needs_content"] == 20
    items = [i for d in week["days"] for i in d["items"]]
    (draft,) = [i for i in items if i["status"] == "draft"]
    assert (draft["kind"], draft["slot_id"], draft["post_id"], draft["text"], draft["social_account_id"]) == \
        ("post", slot["slot_id"], filled.json()["post_id"], "Spring sale", slot["social_account_id"])
    # A draft made without a slot shows at its time too, per destination, as does an idea.
    idea_at = datetime.combine(monday + timedelta(days=4), datetime.min.time(), BERLIN).replace(hour=7)
    made = gw.http.post(f"/v1/workspaces/{ws}/drafts", json={"text": "An idea", "stage": "idea", "destinations": [a, b],
                                                             "publish_at": idea_at.isoformat()}, headers=key)
    assert made.status_code == 201, made.text
    week = gw.get(f"/v1/workspaces/{ws}/calendar", params={"date": week_day.isoformat(), "status": "idea"},
                  headers=key).json()
    ideas = [i for d in week["days"] for i in d["items"]]
    assert sorted(i["social_account_id"] for i in ideas) == sorted([a, b])
    assert {(i["local_date"], i["local_time"], i["text"]) for i in ideas} == {(idea_at.date().isoformat(), "07:00",
                                                                              "An idea")}
    (post,) = [i for i in items if i["kind"] == "post"]
    assert (post["status"], post["text"], post["local_time"], post["social_account_id"]) == ("pending", "Launch",
                                                                                             "11:00", b)

    only_b = gw.get(f"/v1/workspaces/{ws}/calendar", params={"date": week_day.isoformat(), "social_account_id": b},
                    headers=key).json()
    assert {i["social_account_id"] for d in only_b["days"] for i in d["items"]} == {b}
    assert sum(len(d["items"]) for d in only_b["days"]) == 8  # 7 slots and the post
    pending = gw.get(f"/v1/workspaces/{ws}/calendar", params=[("date", week_day.isoformat()), ("status", "pending"),
                                                             ("status", "draft")], headers=key).json()
    assert sorted(i["status"] for d in pending["days"] for i in d["items"]) == ["draft", "pending"]


def test_the_month_covers_the_whole_month_in_local_days(gw, planned) -> None:
    ws, key, _a, _b = planned
    today = datetime.now(UTC).astimezone(BERLIN).date()
    month = gw.get(f"/v1/workspaces/{ws}/calendar", params={"view": "month", "date": today.isoformat()},
                   headers=key).json()
    first = today.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    assert month["view"] == "month" and month["from"] == first.isoformat()
    assert month["to"] == (following - timedelta(days=1)).isoformat()
    assert len(month["days"]) == (following - first).days
    for day in month["days"]:
        d = date.fromisoformat(day["date"])
        for item in day["items"]:
            assert datetime.fromisoformat(item["at"].replace("Z", "+00:00")).astimezone(BERLIN).date() == d
        future_full_day = today < d <= today + timedelta(days=27)
        if future_full_day:
            assert len(day["items"]) == 3
    ranged = gw.get(f"/v1/workspaces/{ws}/calendar", params={"from": today.isoformat(), "to": today.isoformat()},
                    headers=key)
    assert ranged.status_code == 200 and ranged.json()["view"] == "range" and len(ranged.json()["days"]) == 1
    assert_problem(gw.get(f"/v1/workspaces/{ws}/calendar", params={"from": today.isoformat()}, headers=key), 422,
                   "invalid_query")
    assert_problem(gw.get(f"/v1/workspaces/{ws}/calendar", params={"view": "year"}, headers=key), 422,
                   "validation_error")


def test_a_series_schedules_its_occurrences_and_shows_its_progress(gw, planned) -> None:
    ws, key, a, _b = planned
    body = {"rrule": "FREQ=WEEKLY;BYDAY=MO,WE,FR", "starts_at": f"{date.today() - timedelta(days=30)}T10:30:00", "destinations": [a],
            "items": [{"item_id": "tip", "text": "Tip of the day"}]}
    made = gw.http.put(f"/v1/workspaces/{ws}/series/tips", json=body, headers=key)
    assert made.status_code == 200, made.text
    assert 11 <= made.json()["occurrences_scheduled"] <= 13 and made.json()["occurrences_skipped"] == 0
    shown = gw.get(f"/v1/workspaces/{ws}/series/tips", headers=key).json()
    assert shown["scheduled"] == made.json()["occurrences_scheduled"] and shown["kind"] == "recurring"
    week_day = (datetime.now(UTC) + timedelta(days=8)).astimezone(BERLIN).date()
    week = gw.get(f"/v1/workspaces/{ws}/calendar", params={"date": week_day.isoformat(), "social_account_id": a,
                                                           "status": "pending"}, headers=key).json()
    posts = [i for d in week["days"] for i in d["items"]]
    assert [(i["local_time"], i["text"]) for i in posts] == [("10:30", "Tip of the day")] * 3
    assert_problem(gw.http.put(f"/v1/workspaces/{ws}/series/bad", json={**body, "rrule": "FREQ=SOMETIMES"},
                               headers=key), 422, "invalid_schedule")
    assert_problem(gw.http.put(f"/v1/workspaces/{ws}/series/bad", json={**body, "rrule": "DTSTART:2026;FREQ=DAILY"},
                               headers=key), 422, "validation_error")
    assert_problem(gw.http.put(f"/v1/workspaces/{ws}/series/bad", json={**body, "rrule": "FREQ=MINUTELY"},
                               headers=key), 422, "validation_error")
    assert_problem(gw.http.put(f"/v1/workspaces/{ws}/series/bad", json={**body, "starts_at": "2001-01-01T09:00:00"},
                               headers=key), 422, "invalid_schedule")


def test_the_daily_top_off_sends_one_command_per_planning_workspace_and_day(gw, planned) -> None:
    from processors.planning.top_off import due_commands

    ws, key, a, _b = planned
    body = {"rrule": "FREQ=DAILY", "starts_at": f"{date.today() - timedelta(days=30)}T08:00:00", "destinations": [a],
            "items": [{"item_id": "i", "text": "Daily"}]}
    assert gw.http.put(f"/v1/workspaces/{ws}/series/daily", json=body, headers=key).status_code == 200
    gw.http.put(f"/v1/workspaces/{ws}/series/stopped", json={**body, "active": False}, headers=key)
    gw.api.open_workspace("idle", tier="pro")  # no schedule, no series: no top-off
    gw.project()
    now = datetime.now(UTC)
    with gw.pool.connection() as conn:
        (command,) = due_commands(conn, now, 10)
        assert (command.workspace_id, command.payload["series_ids"]) == (ws, ["daily"])
        assert due_commands(conn, now, 10)[0].command_id == command.command_id  # the same id all day
        assert due_commands(conn, now + timedelta(days=1), 10)[0].command_id != command.command_id
        assert due_commands(conn, now, 10, after=ws) == []
    first = gw.app.handle(command)
    assert first.accepted and first.result["slots_created"] == 0  # the PUTs planned everything already
    assert gw.app.handle(command).position == first.position  # decided once


def test_dates_far_from_now_are_refused_not_overflowed(gw, planned) -> None:
    ws, key, _a, _b = planned
    for params in ({"view": "month", "date": "9999-12-31"}, {"date": "0001-01-01"},
                   {"from": "0001-01-01", "to": "0001-01-02"}):
        assert_problem(gw.get(f"/v1/workspaces/{ws}/calendar", params=params, headers=key), 422, "invalid_query")
