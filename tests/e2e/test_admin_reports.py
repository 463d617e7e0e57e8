"""Admin reports with real data from an end-to-end run: the handler, the relay, the processors (dispatch,
publish to the sandbox platform and a fake Mastodon, settle) and the projections running; posts published,
failed (a post the fake platform refuses with 422), cancelled; promotional credits expired by the credit clock;
then every report as JSON and as CSV (parsed
with the csv module), which must say the same."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from tests.fakes.mastodon_server import FakeMastodon
from tests.support import role_loops, running, wait_until

pytestmark = pytest.mark.e2e

TOKEN = "reports-token"
REPORTS = ["credits-daily", "credits-top", "publishing-daily", "tiers", "jobs", "unknown-outcomes", "errors"]


@pytest.fixture
def platform():
    with FakeMastodon(valid_tokens={TOKEN}) as fake:
        yield fake


def as_csv_cells(json_rows: list[dict], columns: list[str]) -> list[list[str]]:
    return [["" if row[c] is None else str(row[c]) for c in columns] for row in json_rows]


def test_reports_from_a_real_run_as_json_and_csv(heralds, api, platform):
    herald = heralds.start(dispatch_interval_s=0.2)
    admin = api.admin
    ws, key = api.open_workspace("shop", tier="pro")
    a = api.connect(ws, key, handle="shop-a")
    b = api.connect(ws, key, handle="shop-b")
    m = api.connect(ws, key, handle="shop-m", platform="mastodon", access_token=TOKEN, instance_url=platform.base_url)
    platform.fail_next(1, status=422, body={"error": "Validation failed: Text is not allowed"})  # refused for good
    api.grant(ws, key, 6, source="purchase")
    other, other_key = api.open_workspace("blog", tier="free")
    c = api.connect(other, other_key, handle="blog-a")
    api.grant(other, other_key, 1)

    now = datetime.now(UTC)
    published = [api.schedule(ws, key, [a, b], text=f"hello {i}", publish_at=now).json()["post_id"] for i in range(2)]
    failing = api.schedule(ws, key, [m], text="refused by the platform", publish_at=now).json()["post_id"]
    later = api.schedule(ws, key, [b], in_s=3600).json()["post_id"]
    assert api.http.post(f"/v1/workspaces/{ws}/posts/{later}/cancel", headers=key).status_code == 200
    api.schedule(other, other_key, [c], text="blog post", publish_at=now)
    assert api.schedule(other, other_key, [c], text="no credits left").status_code == 402
    # Promotional credits no post reserved (the holds above took the purchase): the clock expires them.
    api.grant(ws, key, 2, source="promotion", expires_at=(datetime.now(UTC) + timedelta(seconds=8)).isoformat())

    with running(role_loops(herald, "handler", "relay", "processors", "projections")):
        def settled() -> bool:
            jobs = {r["status"]: r["destinations"] for r in api.http.get("/v1/admin/reports/jobs", headers=admin).json()["rows"]}
            wallet = api.http.get(f"/v1/workspaces/{ws}/wallet", headers=key)
            credits = api.http.get("/v1/admin/reports/credits-daily", headers=admin).json()["rows"]
            done = (wallet.status_code == 200 and not wallet.json()["holds"] and jobs
                    and not {"pending", "retry_scheduled", "attempting"} & set(jobs)
                    and sum(r["expired"] for r in credits) == 2)
            return done
        wait_until(settled, "every destination ended and every hold settled", timeout=90)

    reports = {name: api.http.get(f"/v1/admin/reports/{name}", headers=admin) for name in REPORTS}
    for name, response in reports.items():
        assert response.status_code == 200, (name, response.text)
        body = response.json()
        as_csv = api.http.get(f"/v1/admin/reports/{name}", headers=admin, params={"format": "csv"})
        assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
        parsed = list(csv.reader(io.StringIO(as_csv.text)))
        assert parsed[0] == body["columns"], name
        assert parsed[1:] == as_csv_cells(body["rows"], body["columns"]), f"{name}: the CSV says what the JSON says"

    jobs = {r["status"]: r["destinations"] for r in reports["jobs"].json()["rows"]}
    assert jobs == {"published": 5, "failed": 1, "cancelled": 1}

    publishing = reports["publishing-daily"].json()["rows"]
    rows = {(r["platform"], r["tier"]): r for r in publishing}
    sandbox_pro, mastodon_pro = rows[("sandbox", "pro")], rows[("mastodon", "pro")]
    assert (sandbox_pro["published"], sandbox_pro["failed"], sandbox_pro["cancelled"]) == (4, 0, 1)
    assert (mastodon_pro["published"], mastodon_pro["failed"], mastodon_pro["cancelled"]) == (0, 1, 0)
    assert sandbox_pro["success_rate"] == 1.0 and mastodon_pro["success_rate"] == 0.0
    assert rows[("sandbox", "free")]["success_rate"] == 1.0
    assert sandbox_pro["lateness_p50_s"] is not None and sandbox_pro["lateness_p50_s"] >= 0

    credits = reports["credits-daily"].json()["rows"]
    pro = [r for r in credits if r["tier"] == "pro"]
    assert sum(r["granted"] for r in pro) == 8
    assert sum(r["consumed"] for r in pro) == 4 and sum(r["released"] for r in pro) == 2  # failed + cancelled
    assert [(r["platform"], r["expired"]) for r in pro if r["expired"]] == [(None, 2)], "the promotion expired"
    assert {r["platform"] for r in pro if r["consumed"]} == {"sandbox"}
    top = reports["credits-top"].json()["rows"]
    assert [(r["workspace_id"], r["consumed"]) for r in top] == [(ws, 4), (other, 1)]

    tiers = {r["tier"]: r for r in reports["tiers"].json()["rows"]}
    assert tiers["pro"]["workspaces"] == 1 and tiers["free"]["workspaces"] == 1
    assert tiers["free"]["at_account_limit"] == 1 and tiers["pro"]["at_account_limit"] == 0
    assert (tiers["pro"]["credits_available"], tiers["free"]["credits_available"]) == (2, 0)

    [error] = reports["errors"].json()["rows"]
    assert (error["post_id"], error["outcome"], error["error_kind"]) == (failing, "destination_failed", "invalid_content")
    assert "Text is not allowed" in error["detail"] and error["platform"] == "mastodon"
    assert reports["unknown-outcomes"].json()["rows"] == []

    # Only the admin key, and a bad range is a clear error.
    assert api.http.get("/v1/admin/reports/jobs", headers=key).status_code == 403
    bad = api.http.get("/v1/admin/reports/credits-daily", headers=admin, params={"since": "2030-01-02", "until": "2030-01-01"})
    assert bad.status_code == 422 and bad.json()["reason_code"] == "invalid_query"
