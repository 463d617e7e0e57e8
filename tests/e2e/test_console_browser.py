"""The admin console in a real browser: Playwright driving Debian's Chromium (/usr/bin/chromium, or
HERALD_CHROMIUM) against a gateway served by uvicorn, with the handler, relay, processors (dispatch,
publish to a fake Mastodon, settle) and projections running.

An admin logs in (keyboard only), finds a workspace, opens a failed post's timeline and state at a
version, retries the failed destination and sees it publish, exports a CSV and parses it, resolves
an unknown outcome from the job monitor and logs out; a page without the session cookie goes to
the login form and a POST without the CSRF token is refused. Screenshots of the main pages go to
tests/artifacts/screenshots (ignored by git)."""

from __future__ import annotations

import csv
import os
import shutil
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn

from tests.fakes.local_server import LocalServer
from tests.fakes.mastodon_server import FakeMastodon
from tests.support import Api, role_loops, running, wait_until

pytestmark = pytest.mark.e2e

CHROMIUM = os.environ.get("HERALD_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
TOKEN = "console-token"
FAST = {"dispatch_interval_s": 0.1, "publish_lead_s": 1.0, "retry_delays_s": [1.0, 1.0, 1.0],
        "publish_maintain_every_s": 0.5, "publish_rechecks_s": []}


@pytest.fixture
def mastodon():
    with FakeMastodon(valid_tokens={TOKEN}) as fake:
        yield fake


@pytest.fixture
def gateway_url(heralds):
    """The gateway on a free port, every role running."""
    herald = heralds.start(**FAST)
    port = LocalServer()  # a free port, bound
    port._socket.close()
    server = uvicorn.Server(uvicorn.Config(herald.gateway(), host="127.0.0.1", port=port.port, log_level="warning"))
    with running(role_loops(herald, "handler", "relay", "processors", "projections")):
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        url = port.base_url
        wait_until(lambda: httpx.get(f"{url}/healthz").status_code == 200, "the gateway answers", timeout=15,
                   ignoring=(httpx.HTTPError,))
        yield url, herald
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    assert shutil.which(CHROMIUM) or Path(CHROMIUM).exists(), \
        f"no Chromium at {CHROMIUM}: `apt-get install -y chromium` (make test does)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


UNLABELLED = """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')]
    .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !(e.tagName === 'BUTTON' && e.textContent.trim()))
    .map(e => e.outerHTML)"""
UNNAMED = """() => [...document.querySelectorAll('table:not(:has(caption)), svg[role=img]:not(:has(title))')].map(e => e.outerHTML.slice(0, 80))"""


def shot(page, name: str) -> None:
    """Checks what a screen reader needs (every control labelled, every table and chart named),
    then saves a screenshot of the whole page."""
    assert page.evaluate("document.documentElement.lang") == "en"
    assert page.evaluate(UNLABELLED) == [], f"{name}: controls without a label"
    assert page.evaluate(UNNAMED) == [], f"{name}: tables or charts without a name"
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def destination_status(http: Api, ws: str, key: dict, post_id: str) -> str | None:
    """The post's one destination's state; None until the read models have the post."""
    found = http.http.get(f"/v1/workspaces/{ws}/posts/{post_id}", headers=key)
    return found.json()["destinations"][0]["status"] if found.status_code == 200 else None


def test_an_admin_finds_a_post_retries_it_resolves_an_unknown_outcome_and_exports(gateway_url, browser, mastodon):
    url, herald = gateway_url
    with httpx.Client(base_url=url, timeout=20) as client:
        api = Api(client, admin_key=herald.admin_api_key)
        ws, key = api.open_workspace("acme-ws", name="Acme Bakery", tier="pro")
        masto = api.connect(ws, key, handle="acme", platform="mastodon", access_token=TOKEN,
                            instance_url=mastodon.base_url)
        sandbox = api.connect(ws, key, handle="acme-sandbox")
        api.grant(ws, key, 10, source="purchase")
        daily = {"slots": [{"weekday": d, "time": "09:30"} for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")]}
        planned = client.put(f"/v1/workspaces/{ws}/social-accounts/{sandbox}/posting-schedule", json=daily, headers=key)
        assert planned.status_code == 200, planned.text
        now = datetime.now(UTC) + timedelta(seconds=1)
        assert api.schedule(ws, key, [sandbox], text="fresh bread", publish_at=now).status_code == 201

        mastodon.fail_next(1, status=422, body={"error": "Validation failed: Text is not allowed"})
        failing = api.schedule(ws, key, [masto], text="refused once", publish_at=now).json()["post_id"]
        wait_until(lambda: destination_status(api, ws, key, failing) == "failed", "failed for good", timeout=40)
        # Taken by the platform but the answer is lost, and the look-up fails: nobody can tell.
        mastodon.fail_next(1, status=500, after_create=True, drop_connection=True)
        mastodon.fail_next(1, status=503)
        unknown = api.schedule(ws, key, [masto], text="lost answer",
                               publish_at=datetime.now(UTC) + timedelta(seconds=1)).json()["post_id"]
        wait_until(lambda: destination_status(api, ws, key, unknown) == "outcome_unknown", "unknown", timeout=40)

        context = browser.new_context(accept_downloads=True, base_url=url)
        page = context.new_page()
        errors: list[str] = []  # script errors and refused loads (the console's CSP) would show here
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))

        # No session: the login form, which remembers where the admin was going.
        page.goto("/console/workspaces")
        assert "/console/login?next=" in page.url
        assert page.evaluate("document.activeElement.id") == "api_key", "the key field has the focus"
        page.keyboard.type(herald.admin_api_key)
        page.keyboard.press("Enter")
        page.wait_for_url("**/console/workspaces")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Skip to content", "the first tab stop"

        # Find the workspace by part of its name: htmx updates the results as the admin types.
        page.get_by_label("Workspace id or name").fill("bakery")
        page.locator("#results caption").filter(has_text="1 workspace matching “bakery”").wait_for(timeout=5000)
        assert "q=bakery" in page.url, "htmx put the search in the address"
        page.get_by_role("link", name="acme-ws").click()
        page.wait_for_url(f"**/console/workspaces/{ws}")
        assert page.get_by_role("heading", name="Acme Bakery").is_visible()
        shot(page, "workspace")

        # The calendar: next week has a planned slot a day, each marked "needs content".
        page.get_by_role("link", name="Next week").click()
        page.wait_for_url("**view=week&date=*")
        calendar = page.locator("table.calendar")
        assert calendar.get_by_text("needs content").count() == 7
        calendar.screenshot(path=str(SHOTS / "calendar.png"))
        page.get_by_label("View").select_option("month")
        page.get_by_role("button", name="Show the calendar").click()
        page.wait_for_url("**view=month*")
        assert page.locator("table.calendar.month").get_by_text("needs content").count() >= 7

        # The queue shows waiting work by default; ask for the failed destinations, open the post.
        page.get_by_label("failed", exact=True).check()
        page.get_by_role("button", name="Show these states").click()
        page.get_by_role("link", name=failing).click()
        page.wait_for_url(f"**/posts/{failing}")
        timeline = page.locator("#timeline ~ table").inner_text()
        assert "destination failed" in timeline and "invalid_content" in timeline
        assert "publisher" in timeline, "who caused it"
        shot(page, "post")
        page.get_by_label("Version", exact=True).fill("1")
        page.get_by_role("button", name="Show the post as it was").click()
        assert "As it was right after version 1" in page.locator("#state ~ p").first.inner_text()
        assert "pending" in page.locator("#state ~ table").inner_text()

        # A POST without the CSRF token is refused, even with the session cookie.
        forged = page.request.post(f"/console/workspaces/{ws}/posts/{failing}/destinations/{masto}/retry",
                                   form={"back": "/console/jobs"}, max_redirects=0)
        assert forged.status == 403
        assert destination_status(api, ws, key, failing) == "failed", "nothing was retried"

        # Retry it from the post page and see it publish.
        page.get_by_role("button", name=f"Retry {masto} of post {failing}").click()
        assert "Retry accepted" in page.get_by_role("status").inner_text()
        wait_until(lambda: destination_status(api, ws, key, failing) == "published", "published", timeout=40)
        page.reload()
        assert "published" in page.locator("article.destination").first.inner_text()
        assert mastodon.count_for("refused once") == 1

        # Export the errors report as CSV and parse the file.
        page.get_by_role("link", name="Job monitor").click()
        page.wait_for_url("**/console/jobs")
        shot(page, "jobs")
        with page.expect_download() as download:
            page.get_by_role("link", name="Export errors CSV").click()
        with open(download.value.path(), newline="") as file:
            rows = list(csv.reader(file))
        columns = rows[0]
        assert columns == ["at", "workspace_id", "post_id", "social_account_id", "platform", "outcome", "attempt",
                           "error_kind", "detail"]
        by_post = {(r[2], r[5]) for r in rows[1:]}
        assert (failing, "destination_failed") in by_post and (unknown, "outcome_unknown") in by_post

        # Resolve the unknown outcome from the job monitor.
        form = page.locator("form.resolve").filter(has_text=unknown)
        form.get_by_label("Found on the platform").check()
        form.get_by_label("Platform post id (when found)").fill("masto-found-1")
        form.get_by_role("button", name="Resolve").click()
        assert "Resolved" in page.get_by_role("status").inner_text()
        assert destination_status(api, ws, key, unknown) == "published"
        assert "Unknown outcomes awaiting review (0)" in page.locator("#unknown").inner_text()
        shot(page, "jobs-resolved")

        page.get_by_role("link", name="Overview").click()
        page.wait_for_url("**/console/")
        assert page.locator("svg[role=img]").count() >= 2, "credits, publishing and tiers charted"
        shot(page, "overview")

        assert errors == [], errors
        page.get_by_role("button", name="Log out").click()
        page.wait_for_url("**/console/login")
        page.goto("/console/jobs")
        assert "/console/login" in page.url, "logged out: no more pages"

        # Another browser without the cookie: the login form.
        other = browser.new_context(base_url=url).new_page()
        other.goto(f"/console/workspaces/{ws}/posts/{failing}")
        assert "/console/login" in other.url
        context.close()
