"""generate_content and record_generation_outcome: counted against the daily generation limit in
the workspace's time zone (at the boundary, across local midnight), an outcome recorded once, and
never a change to the wallet (a hypothesis property over any mix of requests and outcomes)."""

from __future__ import annotations

import hashlib
import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.generation import Generation
from domain.wallet import Wallet
from schemas import commands as cmd
from tests.unit.stores import AppFactory, make_app  # noqa: F401 - the fixture
from tests.unit.test_domain import WS, Herald

TOKYO = ZoneInfo("Asia/Tokyo")
SHA = hashlib.sha256(b"prompt").hexdigest()


def tokyo(y: int, mo: int, d: int, hh: int, mm: int) -> datetime:
    return datetime(y, mo, d, hh, mm, tzinfo=TOKYO).astimezone(UTC)


def ask(generation_id: str, *platforms: str) -> cmd.GenerateContent:
    return cmd.GenerateContent(generation_id=generation_id, topic="spring sale", platforms=list(platforms or ["x"]))


def succeeded(generation_id: str, *platforms: str) -> cmd.RecordGenerationOutcome:
    return cmd.RecordGenerationOutcome(
        generation_id=generation_id, succeeded=True, provider="offline", model="template-v1", prompt_sha256=SHA,
        captions=[cmd.GeneratedCaption(platform=p, text=f"caption {p}") for p in platforms or ["x"]],
        hashtags=["sale"], tokens_in=3, tokens_out=4, latency_ms=5)


def failed(generation_id: str, failure: str = "rate_limited") -> cmd.RecordGenerationOutcome:
    return cmd.RecordGenerationOutcome(generation_id=generation_id, succeeded=False, failure=failure,
                                       detail="HTTP 429", provider="openai", model="m", prompt_sha256=SHA)


@pytest.fixture
def h(make_app: AppFactory) -> Herald:
    return Herald(make_app)


def test_the_daily_limit_holds_at_its_boundary_and_resets_at_the_workspaces_midnight(h: Herald) -> None:
    h.now = tokyo(2030, 6, 3, 23, 58)  # 14:58 UTC: the UTC day is far from over
    h.ok(cmd.OpenWorkspace(name=WS, tier="free", timezone="Asia/Tokyo", limit_overrides={"daily_generations": 3}))
    for n in range(2):
        h.ok(ask(f"g{n}"))
    third = h.ok(ask("g2"))  # n: still accepted
    assert (third["day"], third["generations_today"], third["daily_limit"]) == ("2030-06-03", 3, 3)
    refused = h.rejected(ask("g3"), "daily_generation_limit_reached")  # n + 1
    assert refused.limit == {"limit": "daily_generations", "tier": "free", "current": 3, "allowed": 3}
    assert h.app.find(Generation, Generation.key(WS, "g3")) is None
    h.now = tokyo(2030, 6, 3, 23, 59) + timedelta(seconds=59)
    h.rejected(ask("g4"), "daily_generation_limit_reached")  # one second before Tokyo's midnight
    h.now = tokyo(2030, 6, 4, 0, 0)  # Tokyo midnight = 15:00 UTC, same UTC day
    assert h.ok(ask("g5"))["day"] == "2030-06-04"
    assert [e["day"] for e in h.events_of("herald.generation.requested.v1")] == ["2030-06-03"] * 3 + ["2030-06-04"]


def test_an_outcome_is_recorded_once_for_the_requested_platforms(h: Herald) -> None:
    h.ok(cmd.OpenWorkspace(name=WS, tier="pro", timezone="UTC"))
    h.ok(ask("g1", "x", "mastodon"))
    h.rejected(ask("g1"), "generation_exists")
    h.rejected(succeeded("g1", "x"), "invalid_payload")  # mastodon's caption is missing
    assert h.ok(succeeded("g1", "x", "mastodon"))["status"] == "succeeded"
    h.rejected(failed("g1"), "generation_already_recorded")
    h.rejected(succeeded("nope"), "unknown_generation")
    h.ok(ask("g2"))
    assert h.ok(failed("g2", "invalid_output"))["status"] == "failed"
    [success] = h.events_of("herald.generation.succeeded.v1")
    assert success["captions"] == {"x": "caption x", "mastodon": "caption mastodon"}
    [failure] = h.events_of("herald.generation.failed.v1")
    assert (failure["reason"], failure["detail"]) == ("invalid_output", "HTTP 429")


def test_another_workspace_cannot_record_an_outcome(h: Herald) -> None:
    h.ok(cmd.OpenWorkspace(name=WS, tier="pro", timezone="UTC"))
    h.ok(cmd.OpenWorkspace(name="other", tier="pro", timezone="UTC"), workspace="ws-other")
    h.ok(ask("g1"))
    decision = h.send(succeeded("g1"), workspace="ws-other")
    assert not decision.accepted and decision.reason_code == "unknown_generation"


_workspaces = itertools.count(1)
steps = st.lists(st.tuples(st.sampled_from(["ask", "ok", "fail", "again"]), st.integers(0, 4)), max_size=25)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=steps, tier=st.sampled_from(["free", "pro"]))
def test_generation_never_changes_the_wallet(make_app: AppFactory, steps, tier) -> None:
    h = Herald(make_app)
    workspace = f"ws-{next(_workspaces)}"  # examples share the PostgreSQL store
    h.ok(cmd.OpenWorkspace(name=workspace, tier=tier, timezone="UTC"), workspace=workspace)
    h.ok(cmd.GrantCredits(amount=50), workspace=workspace)
    before = h.app.find(Wallet, workspace)
    before_state = (before.version, repr(sorted(vars(before).items())))
    for action, n in steps:
        generation_id = f"g{n}"
        if action == "ask":
            h.send(ask(generation_id), workspace=workspace)
        elif action == "ok":
            h.send(succeeded(generation_id), workspace=workspace)
        elif action == "fail":
            h.send(failed(generation_id), workspace=workspace)
        else:
            h.advance(3600 * 7)
    after = h.app.find(Wallet, workspace)
    assert (after.version, repr(sorted(vars(after).items()))) == before_state


def test_the_brand_voice_is_versioned_and_each_generation_names_the_version_it_used(h: Herald) -> None:
    h.ok(cmd.OpenWorkspace(name=WS, tier="pro", timezone="UTC"))
    assert h.ok(ask("g0"))["brand_voice"] is None
    first = h.ok(cmd.SetBrandVoice(tone="warm", words_to_avoid=["cheap"]))
    assert (first["version"], first["tone"], first["words_to_avoid"]) == (1, "warm", ["cheap"])
    second = h.ok(cmd.SetBrandVoice(tone="bold", audience="bakers", example_posts=["Flour in, joy out."]))
    assert (second["version"], second["tone"], second["words_to_avoid"]) == (2, "bold", [])
    answer = h.ok(ask("g1"))
    assert answer["brand_voice"]["version"] == 2 and answer["brand_voice"]["audience"] == "bakers"
    assert [e["brand_voice_version"] for e in h.events_of("herald.generation.requested.v1")] == [0, 2]
    assert h.send(cmd.SetBrandVoice(tone="x"), workspace="nowhere").reason_code == "unknown_workspace"
