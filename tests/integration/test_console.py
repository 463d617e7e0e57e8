"""The console's session and forms over HTTP (the browser tests are tests/e2e/test_console_browser.py):
the cookie's flags and sealing, the login, CSRF on every POST, a revoked key ending its session, and
the CSV export answering exactly what the admin API's CSV answers. Real PostgreSQL, the gateway
through a TestClient."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from gateway.console.session import COOKIE, MAX_AGE_S, Sealer, Session
from tests.support import role_loops, running, wait_until

pytestmark = pytest.mark.integration


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def log_in(http: TestClient, key: str) -> str:
    """Logs in; returns the CSRF token of the logged-in session."""
    form = http.get("/console/login")
    answer = http.post("/console/login", data={"csrf_token": csrf_of(form.text), "api_key": key, "next": "/console/"},
                       follow_redirects=False)
    assert answer.status_code == 303, answer.text
    return csrf_of(http.get("/console/workspaces").text)


def test_a_page_without_a_session_redirects_to_the_login_form(api):
    answer = api.http.get("/console/workspaces?q=a", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/login?next=%2Fconsole%2Fworkspaces%3Fq%3Da"
    assert api.http.get("/console/", headers=api.admin, follow_redirects=False).status_code == 303, \
        "an API key header is no session"


def test_the_session_cookie_is_sealed_httponly_strict_and_scoped(herald, api):
    key = herald.admin_api_key
    api.http.get("/console/login")
    answer = api.http.post("/console/login", follow_redirects=False, data={
        "csrf_token": csrf_of(api.http.get("/console/login").text), "api_key": key})
    [set_cookie] = answer.headers.get_list("set-cookie")
    flags = {part.strip().split("=")[0].lower() for part in set_cookie.split(";")[1:]}
    assert {"httponly", "path", "samesite"} <= flags and "samesite=strict" in set_cookie.lower()
    assert "path=/console" in set_cookie.lower() and "secure" not in flags, "plain http: no Secure flag"
    value = set_cookie.split(";")[0].split("=", 1)[1].strip('"')
    assert key not in value and base64.urlsafe_b64encode(key.encode()).decode().rstrip("=") not in value
    raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    assert key.encode() not in raw, "the key is sealed, not only encoded"

    with TestClient(herald.gateway(), base_url="https://testserver") as https:
        secure = https.get("/console/login").headers["set-cookie"]
        assert "secure" in secure.lower(), "over https the cookie is Secure"


def test_login_needs_the_csrf_token_and_an_admin_key(herald, api):
    http = api.http
    form = http.get("/console/login")
    assert http.post("/console/login", data={"api_key": herald.admin_api_key}).status_code == 403
    wrong = http.post("/console/login", data={"csrf_token": csrf_of(form.text), "api_key": "not-a-key"})
    assert wrong.status_code == 401 and "not a valid key" in wrong.text
    ws, workspace_key = api.open_workspace("shop", name="Shop")
    not_admin = http.post("/console/login", data={"csrf_token": csrf_of(form.text),
                                                    "api_key": workspace_key["Authorization"].split()[1]})
    assert not_admin.status_code == 401, "a workspace's own key opens no console"
    log_in(http, herald.admin_api_key)
    with running(role_loops(herald, "relay", "projections")):
        wait_until(lambda: "Shop" in http.get("/console/workspaces?q=SHO").text, "found by its name, any case")


def test_every_post_without_its_csrf_token_is_refused(herald, api):
    http = api.http
    token = log_in(http, herald.admin_api_key)
    paths = ["/console/workspaces/ws/posts/p/destinations/d/retry",
             "/console/workspaces/ws/posts/p/destinations/d/resolution",
             "/console/dead-letters/0:1/replay", "/console/logout"]
    for path in paths:
        missing = http.post(path, data={"back": "/console/jobs"}, follow_redirects=False)
        assert missing.status_code == 403 and "CSRF" in missing.text, path
        forged = http.post(path, data={"csrf_token": token[:-2] + "xx"}, follow_redirects=False)
        assert forged.status_code == 403, path
    assert http.get("/console/jobs", follow_redirects=False).status_code == 200, "still logged in"
    out = http.post("/console/logout", data={"csrf_token": token}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/console/login"
    assert http.get("/console/jobs", follow_redirects=False).status_code == 303


def test_a_tampered_old_or_foreign_cookie_is_no_session(herald, api):
    http = api.http
    log_in(http, herald.admin_api_key)
    sealed = http.cookies.get(COOKIE)
    http.cookies.set(COOKIE, sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB"), path="/console")
    assert http.get("/console/", follow_redirects=False).status_code == 303
    other = Sealer("another-admin-key").seal(Session.anonymous().logged_in(herald.admin_api_key))
    http.cookies.set(COOKIE, other, path="/console")
    assert http.get("/console/", follow_redirects=False).status_code == 303, "sealed under another key"
    ours = Sealer(herald.admin_api_key)
    old = Session(csrf="x", issued_at=(datetime.now(UTC) - timedelta(seconds=MAX_AGE_S + 60)).timestamp(),
                  key=herald.admin_api_key)
    http.cookies.set(COOKIE, ours.seal(old), path="/console")
    assert http.get("/console/", follow_redirects=False).status_code == 303, "older than the session's life"
    http.cookies.set(COOKIE, ours.seal(Session.anonymous().logged_in(herald.admin_api_key)), path="/console")
    assert http.get("/console/", follow_redirects=False).status_code == 200


def test_a_revoked_admin_scoped_key_ends_its_session(api):
    http = api.http
    made = http.post("/v1/api-keys", json={"name": "ops", "scopes": ["admin"]}, headers=api.admin)
    assert made.status_code == 201, made.text
    log_in(http, made.json()["api_key"])
    assert http.get("/console/jobs", follow_redirects=False).status_code == 200
    assert http.post(f"/v1/api-keys/{made.json()['key_id']}/revoke", headers=api.admin).status_code == 200
    assert http.get("/console/jobs", follow_redirects=False).status_code == 303


def test_the_csv_export_is_the_admin_apis_csv(herald, api):
    ws, key = api.open_workspace("csv-shop", tier="pro")
    api.grant(ws, key, 5, source="purchase")
    http = api.http
    log_in(http, herald.admin_api_key)
    with running(role_loops(herald, "relay", "projections")):
        wait_until(lambda: http.get(f"/v1/workspaces/{ws}/wallet", headers=api.admin).json().get("available") == 5,
                   "the grant in the read models")
    for name in ("credits-daily", "tiers", "jobs", "failed-destinations"):
        console = http.get(f"/console/export/{name}.csv")
        direct = http.get(f"/v1/admin/reports/{name}", params={"format": "csv"}, headers=api.admin)
        assert console.status_code == direct.status_code == 200
        assert console.headers["content-type"].startswith("text/csv")
        assert console.text == direct.text, name
    assert "5" in http.get("/console/export/credits-daily.csv").text.splitlines()[1]
    assert http.get("/console/export/nothing.csv").status_code == 404


def test_the_workspace_and_overview_pages_show_the_read_models(herald, api):
    ws, key = api.open_workspace("page-shop", name="Page Shop", tier="pro")
    api.grant(ws, key, 3, source="promotion", expires_at=(datetime.now(UTC) + timedelta(days=3)).isoformat())
    account = api.connect(ws, key, handle="page-a")
    assert api.schedule(ws, key, [account], text="later", in_s=7200).status_code == 201
    http = api.http
    log_in(http, herald.admin_api_key)
    with running(role_loops(herald, "relay", "projections")):
        wait_until(lambda: "page-a" in http.get(f"/console/workspaces/{ws}").text, "the read models caught up")
    page = http.get(f"/console/workspaces/{ws}")
    assert page.status_code == 200
    text = page.text
    assert "Page Shop" in text and "page-a" in text and "promotion" in text
    assert "queue size" in text and "accounts per platform" in text and "daily generations" in text
    assert "pending" in text, "the queued destination"
    overview = http.get("/console/?since=2020-01-01&until=2020-01-05")
    assert overview.status_code == 200 and overview.text.count("<svg") == 1, "only the tiers (now) are charted"
    assert overview.text.count("Nothing in this range.") == 3
    overview = http.get("/console/")
    assert overview.status_code == 200 and overview.text.count("<svg") == 2, "credits and tiers charted"
    assert f"{datetime.now(UTC).date().isoformat()}: granted 3" in overview.text, "today's bar of the grant"
    bad = http.get("/console/?since=2020-01-05&until=2020-01-01")
    assert bad.status_code == 422
    assert http.get("/console/workspaces/nope").status_code == 404


def test_the_calendar_marks_planned_slots_needing_content(herald, api):
    ws, key = api.open_workspace("cal-shop", name="Calendar Shop", tier="business", timezone="Europe/Berlin")
    account = api.connect(ws, key, handle="cal-a")
    every_day = {"slots": [{"weekday": d, "time": "12:00"} for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")]}
    made = api.http.put(f"/v1/workspaces/{ws}/social-accounts/{account}/posting-schedule", json=every_day, headers=key)
    assert made.status_code == 200, made.text
    http = api.http
    log_in(http, herald.admin_api_key)
    next_week = (datetime.now(UTC) + timedelta(days=7)).date().isoformat()
    page = f"/console/workspaces/{ws}?view=week&date={next_week}"
    with running(role_loops(herald, "relay", "projections")):
        wait_until(lambda: "7 planned slots need content" in http.get(page).text, "the week's slots shown")
        week = http.get(page).text
        assert week.count('class="status s-needs_content">needs content') == 7
        assert week.count("12:00 sandbox·cal-a") == 7, "local times (Europe/Berlin)"
        month = http.get(f"/console/workspaces/{ws}?view=month&date={next_week}").text
        assert "Monday" in month and month.count("needs content") >= 7
    assert http.get(f"/console/workspaces/{ws}?view=year").status_code == 422
    assert http.get(f"/console/workspaces/{ws}?date=0001-01-01").status_code == 422, "bounded as the API bounds it"


def test_a_dead_letter_is_listed_and_re_driven_from_the_console(herald, api):
    from types import SimpleNamespace

    from herald.messaging.consumer import dead_letter
    from herald.messaging.dead_letters import list_dead_letters
    from tests.support import read_topic

    s = herald.settings
    record = SimpleNamespace(topic=s.commands_topic, partition=1, offset=7, key=b"ws-x", value=b'{"not": json')
    dead_letter(herald.producer, s.dlq_topic, record, "handler", "unparseable command: console test")
    [parked] = list_dead_letters(s.kafka_bootstrap, s.dlq_topic)
    http = api.http
    token = log_in(http, herald.admin_api_key)
    listing = http.get("/console/dead-letters")
    assert listing.status_code == 200 and parked.id in listing.text and "console test" in listing.text
    done = http.post(f"/console/dead-letters/{parked.id}/replay", data={"csrf_token": token}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/console/dead-letters"
    assert "Re-driven" in http.get("/console/dead-letters").text, "the page says what happened"
    copies = read_topic(s.kafka_bootstrap, s.commands_topic,
                        until=lambda got: any(("herald_replayed_from", parked.id.encode()) in (r.headers or [])
                                              for r in got))
    replayed = [r for r in copies if ("herald_replayed_from", parked.id.encode()) in (r.headers or [])]
    assert [(r.key, r.value) for r in replayed] == [(b"ws-x", b'{"not": json')]
    unknown = http.post("/console/dead-letters/9:999/replay", data={"csrf_token": token})
    assert "There is no dead letter 9:999" in unknown.text


def test_console_pages_forbid_framing_and_foreign_scripts(herald, api):
    http = api.http
    log_in(http, herald.admin_api_key)
    page = http.get("/console/jobs")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
    assert 'src="/console/static/htmx.min.js"' in page.text and "://" not in page.text.split("<main")[0], \
        "nothing loaded from another host"
    script = http.get("/console/static/htmx.min.js")
    assert script.status_code == 200 and "htmx" in script.text[:2000]


def test_a_bad_address_is_an_error_page_not_json(herald, api):
    http = api.http
    log_in(http, herald.admin_api_key)
    bad = http.get("/console/workspaces/w/posts/p?version=abc")
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("text/html")
    assert "version" in bad.text
    assert http.get("/console/?since=yesterday").status_code == 422
