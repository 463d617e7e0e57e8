"""POST /v1/workspaces/{ws}/generations and PUT …/brand-voice on a real PostgreSQL, with the offline
provider and with a fake OpenAI-compatible server (a real HTTP server, tests/fakes/openai_server.py):
the limit checked before any provider call, a failed call recorded, no credits touched."""

from __future__ import annotations

import csv
import io

import pytest
from fastapi.testclient import TestClient

from gateway.app import create_app
from processors.generation.openai_compat import OpenAICompatible
from processors.generation.providers import Generator
from tests.fakes.openai_server import FakeOpenAI
from tests.integration.test_gateway import ADMIN, Gateway, assert_problem
from tests.support import Api

pytestmark = pytest.mark.integration


def _no_wait(_: float) -> None:
    pass


@pytest.fixture
def gw(database_url):
    gateway = Gateway(database_url)
    yield gateway
    gateway.close()


@pytest.fixture
def openai_gw(database_url):
    with FakeOpenAI() as fake:
        gateway = Gateway(database_url)
        gateway.deps.generator = lambda: Generator(OpenAICompatible(fake.base_url + "/v1", "gpt-test", "fake-key",
                                                                    timeout_s=5), sleep=_no_wait)
        gateway.http = TestClient(create_app(gateway.deps))
        gateway.api = Api(gateway.http)
        yield gateway, fake
        gateway.close()
        fake.assert_no_violations()


def _wallet_events(gw: Gateway) -> list[str]:
    notifications = gw.app.recorder.select_notifications(start=1, limit=1_000_000)
    return [e.type for e in map(gw.app.mapper.to_domain_event, notifications) if ".wallet." in e.type]


def test_the_offline_provider_answers_without_a_key_and_charges_nothing(gw):
    ws, key = gw.api.open_workspace("a", tier="pro")
    gw.api.grant(ws, key, 5)
    wallet_before = _wallet_events(gw)
    made = gw.http.post(f"/v1/workspaces/{ws}/generations",
                        json={"topic": "Spring sale opens tomorrow", "platforms": ["x", "instagram"]}, headers=key)
    assert made.status_code == 201, made.text
    body = made.json()
    assert (body["status"], body["provider"], body["model"]) == ("succeeded", "offline", "template-v1")
    assert set(body["captions"]) == {"x", "instagram"} and body["hashtags"]
    assert (body["generations_today"], body["daily_limit"]) == (1, 50)
    assert _wallet_events(gw) == wallet_before


def test_the_brand_voice_reaches_the_provider_and_its_version_is_recorded(openai_gw):
    gw, fake = openai_gw
    ws, key = gw.api.open_workspace("a", tier="pro")
    voice = gw.http.put(f"/v1/workspaces/{ws}/brand-voice", headers=key,
                        json={"tone": "dry wit", "words_to_avoid": ["synergy"], "example_posts": ["Bread. Daily."]})
    assert voice.status_code == 200, voice.text and voice.json()["version"] == 1
    made = gw.http.post(f"/v1/workspaces/{ws}/generations", json={"topic": "rye", "platforms": ["mastodon"]},
                        headers=key)
    assert made.status_code == 201, made.text
    assert made.json()["brand_voice_version"] == 1 and made.json()["provider"] == "openai"
    system = fake.bodies[0]["messages"][0]["content"]
    assert "dry wit" in system and "synergy" in system and "Bread. Daily." in system


def test_a_failed_call_is_recorded_and_counts_but_charges_nothing(openai_gw):
    gw, fake = openai_gw
    ws, key = gw.api.open_workspace("a", tier="pro")
    gw.api.grant(ws, key, 5)
    wallet_before = _wallet_events(gw)
    fake.fail_next("chat", 500, n=3)
    failed = gw.http.post(f"/v1/workspaces/{ws}/generations", json={"topic": "rye", "platforms": ["x"]}, headers=key)
    problem = assert_problem(failed, 503, "generation_unavailable")
    assert failed.headers["Retry-After"] == "5", "worth trying again shortly"
    assert problem["reason"] == "transient" and problem["generations_today"] == 1
    assert len(fake.bodies) == 3  # the retries
    notifications = gw.app.recorder.select_notifications(start=1, limit=1_000_000)
    recorded = [e.data for e in map(gw.app.mapper.to_domain_event, notifications)
                if e.type == "herald.generation.failed.v1"]
    assert [(r["generation_id"], r["reason"]) for r in recorded] == [(problem["generation_id"], "transient")]
    assert _wallet_events(gw) == wallet_before


def test_over_the_daily_limit_nothing_is_called(openai_gw):
    gw, fake = openai_gw
    ws, key = gw.api.open_workspace("a", tier="free", limit_overrides={"daily_generations": 1})
    assert gw.http.post(f"/v1/workspaces/{ws}/generations", json={"topic": "a", "platforms": ["x"]},
                        headers=key).status_code == 201
    refused = gw.http.post(f"/v1/workspaces/{ws}/generations", json={"topic": "b", "platforms": ["x"]}, headers=key)
    problem = assert_problem(refused, 409, "daily_generation_limit_reached")
    assert problem["limit"] == {"limit": "daily_generations", "tier": "free", "current": 1, "allowed": 1}
    assert len(fake.bodies) == 1


def test_a_repeated_idempotency_key_answers_the_first_outcome(openai_gw):
    gw, fake = openai_gw
    ws, key = gw.api.open_workspace("a", tier="pro")
    headers = {**key, "Idempotency-Key": "gen-1"}
    first = gw.http.post(f"/v1/workspaces/{ws}/generations", json={"topic": "a", "platforms": ["x"]}, headers=headers)
    fake.answer_next('{"captions": [{"platform": "x", "text": "something else"}], "hashtags": []}')
    again = gw.http.post(f"/v1/workspaces/{ws}/generations", json={"topic": "a", "platforms": ["x"]}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json()["generation_id"] == first.json()["generation_id"]
    assert again.json()["captions"] == first.json()["captions"] and again.json()["generations_today"] == 1
    assert len(fake.bodies) == 1, "the repeat is answered from the record: the provider is not called again"


def test_provider_failures_map_to_their_own_problems(database_url):
    with FakeOpenAI() as fake:
        good = _openai_gateway(database_url, fake, "fake-key")
        ws, key = good.api.open_workspace("a", tier="pro")
        fake.fail_next("chat", 429, headers={"retry-after": "7"}, n=3)
        limited = good.http.post(f"/v1/workspaces/{ws}/generations", json={"topic": "a", "platforms": ["x"]},
                                 headers=key)
        assert assert_problem(limited, 503, "generation_rate_limited")["reason"] == "rate_limited"
        assert limited.headers["Retry-After"] == "7", "the provider's own Retry-After"
        fake.answer_next("not json", "still not json")
        invalid = good.http.post(f"/v1/workspaces/{ws}/generations", json={"topic": "b", "platforms": ["x"]},
                                 headers=key)
        assert assert_problem(invalid, 502, "generation_invalid_output")["reason"] == "invalid_output"
        assert "Retry-After" not in invalid.headers
        good.close()
        wrong = _openai_gateway(database_url, fake, "sk-wrong-key")
        refused = wrong.http.post(f"/v1/workspaces/{ws}/generations", json={"topic": "c", "platforms": ["x"]},
                                  headers=key)
        problem = assert_problem(refused, 502, "generation_provider_auth")
        assert problem["reason"] == "auth" and "sk-wrong-key" not in refused.text, "the key is never shown"
        wrong.close()
        fake.assert_no_violations()


def _openai_gateway(database_url, fake, api_key: str) -> Gateway:
    gateway = Gateway(database_url)
    gateway.deps.generator = lambda: Generator(OpenAICompatible(fake.base_url + "/v1", "gpt-test", api_key,
                                                                timeout_s=5), sleep=_no_wait)
    gateway.http = TestClient(create_app(gateway.deps))
    gateway.api = Api(gateway.http)
    return gateway


def test_the_brand_voice_is_read_back_at_its_current_version(gw):
    ws, key = gw.api.open_workspace("a", tier="pro")
    assert_problem(gw.get(f"/v1/workspaces/{ws}/brand-voice", headers=key), 404, "no_brand_voice")
    for tone in ("warm", "dry wit"):
        assert gw.http.put(f"/v1/workspaces/{ws}/brand-voice", headers=key,
                           json={"tone": tone, "words_to_avoid": ["synergy"]}).status_code == 200
    voice = gw.get(f"/v1/workspaces/{ws}/brand-voice", headers=key)
    assert voice.status_code == 200, voice.text
    body = voice.json()
    assert (body["version"], body["tone"], body["words_to_avoid"]) == (2, "dry wit", ["synergy"])
    assert body["set_at"]


def test_bad_input_is_422_and_counts_nothing(gw):
    ws, key = gw.api.open_workspace("a", tier="pro")
    assert_problem(gw.http.post(f"/v1/workspaces/{ws}/generations", json={"topic": "", "platforms": ["x"]},
                                headers=key), 422, "validation_error")
    assert_problem(gw.http.post(f"/v1/workspaces/{ws}/generations", json={"topic": "a", "platforms": ["myspace"]},
                                headers=key), 422, "validation_error")
    for body in ({"topic": "a", "platforms": ["x", "x"]}, {"topic": "a", "platforms": ["x"], "language": "e n"}):
        assert_problem(gw.http.post(f"/v1/workspaces/{ws}/generations", json=body, headers=key), 422,
                       "validation_error")
    made = gw.http.post(f"/v1/workspaces/{ws}/generations", json={"topic": "a", "platforms": ["x"]}, headers=key)
    assert made.json()["generations_today"] == 1


def test_the_log_and_the_admin_stats(openai_gw):
    gw, fake = openai_gw
    ws, key = gw.api.open_workspace("a", tier="pro")
    other, other_key = gw.api.open_workspace("b", tier="pro")
    for topic in ("Rye", "rye", "Spelt"):
        assert gw.http.post(f"/v1/workspaces/{ws}/generations", json={"topic": topic, "platforms": ["x"]},
                            headers=key).status_code == 201
    fake.fail_next("chat", 429, headers={"retry-after": "0"}, n=3)
    gw.http.post(f"/v1/workspaces/{other}/generations", json={"topic": "oats", "platforms": ["mastodon"]},
                 headers=other_key)
    logged = gw.get(f"/v1/workspaces/{ws}/generations", headers=key)
    assert logged.status_code == 200, logged.text
    rows = logged.json()["generations"]
    assert [r["topic"] for r in rows] == ["Spelt", "rye", "Rye"]  # newest first, this workspace only
    assert all(r["status"] == "succeeded" and r["provider"] == "openai" and r["tokens_out"] > 0 for r in rows)
    assert rows[0]["captions"] == {"x": "Fake caption for x."} and len(rows[0]["prompt_sha256"]) == 64
    [failed] = gw.get(f"/v1/workspaces/{other}/generations", headers=other_key).json()["generations"]
    assert (failed["status"], failed["reason"], failed["captions"]) == ("failed", "rate_limited", None)
    assert_problem(gw.http.get("/v1/admin/generation-stats", headers=key), 403, "forbidden")
    stats = gw.http.get("/v1/admin/generation-stats", headers=ADMIN).json()
    assert (stats["total"], stats["succeeded"], stats["failed"], stats["pending"]) == (4, 3, 1, 0)
    assert stats["success_rate"] == 0.75 and stats["failures_by_reason"] == {"rate_limited": 1}
    assert stats["top_topics"][0] == {"topic": "rye", "generations": 2}
    assert stats["providers"] == [{"provider": "openai", "model": "gpt-test", "generations": 4}]
    # The daily report, as JSON and as CSV (the same rows).
    daily = gw.http.get("/v1/admin/reports/generation-daily", headers=ADMIN)
    assert daily.status_code == 200, daily.text
    [today] = daily.json()["rows"]
    assert (today["provider"], today["requested"], today["succeeded"], today["failed"], today["pending"]) == \
        ("openai", 4, 3, 1, 0)
    assert float(today["success_rate"]) == 0.75 and today["tokens_out"] > 0
    as_csv = gw.http.get("/v1/admin/reports/generation-daily", headers=ADMIN, params={"format": "csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    [row] = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert {k: row[k] for k in ("day", "provider", "requested", "succeeded", "failed")} == \
        {k: str(today[k]) for k in ("day", "provider", "requested", "succeeded", "failed")}
    assert_problem(gw.http.get("/v1/admin/reports/generation-daily", headers=key), 403, "forbidden")
