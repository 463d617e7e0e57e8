"""The generation providers against real HTTP fakes of the OpenAI-compatible and Anthropic APIs
(tests/fakes/openai_server.py, anthropic_server.py): the documented request shapes, and what each
fault becomes (429 with Retry-After, 500, invalid JSON output, timeout, a wrong key)."""

from __future__ import annotations

import json

import pytest

from processors.generation import output
from processors.generation.anthropic import AnthropicMessages
from processors.generation.errors import FailureKind
from processors.generation.offline import OfflineTemplate
from processors.generation.openai_compat import OpenAICompatible
from processors.generation.prompt import BrandVoice, GenerationRequest
from processors.generation.providers import GenerationFailed, Generator
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.openai_server import FakeOpenAI

REQUEST = GenerationRequest(topic="Our spring sale opens tomorrow", platforms=["x", "mastodon"], tone="playful",
                            voice=BrandVoice(tone="warm", words_to_avoid=("cheap",)))


class Recorder:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture(params=["openai", "anthropic"])
def setup(request):
    fake = FakeOpenAI() if request.param == "openai" else FakeAnthropic()
    with fake:
        yield request.param, fake
        fake.assert_no_violations()


def make(kind: str, fake, *, key: str = "fake-key", timeout_s: float = 5.0):
    if kind == "openai":
        return OpenAICompatible(fake.base_url + "/v1", "gpt-test", key, timeout_s=timeout_s)
    return AnthropicMessages(fake.base_url, "claude-test", key, timeout_s=timeout_s)


def route(kind: str) -> str:
    return "chat" if kind == "openai" else "messages"


def test_a_generation_sends_the_documented_request_and_reads_the_answer(setup):
    kind, fake = setup
    generated = Generator(make(kind, fake), sleep=Recorder()).generate(REQUEST)
    assert {c.platform for c in generated.content.captions} == {"x", "mastodon"}
    assert generated.content.hashtags == ["fake"]
    assert generated.provider == kind and generated.model.endswith("-test")
    assert generated.tokens_in > 0 and generated.tokens_out > 0
    assert len(generated.prompt_sha256) == 64 and not generated.repaired
    body = fake.bodies[0]
    assert body["stream"] is False
    if kind == "openai":
        assert body["response_format"]["type"] == "json_schema"
        assert body["response_format"]["json_schema"]["strict"] is True
        assert body["messages"][0]["role"] == "system" and "warm" in body["messages"][0]["content"]
    else:
        assert "warm" in body["system"] and body["max_tokens"] >= 16


def test_429_waits_for_retry_after_then_succeeds(setup):
    kind, fake = setup
    fake.fail_next(route(kind), 429, headers={"retry-after": "7"})
    sleep = Recorder()
    generated = Generator(make(kind, fake), sleep=sleep).generate(REQUEST)
    assert sleep.waits == [7.0]
    assert len(generated.content.captions) == 2
    assert len(fake.bodies) == 2


def test_rate_limited_on_every_attempt_fails_as_rate_limited(setup):
    kind, fake = setup
    fake.fail_next(route(kind), 429, headers={"retry-after": "1"}, n=3)
    sleep = Recorder()
    with pytest.raises(GenerationFailed) as failed:
        Generator(make(kind, fake), attempts=3, sleep=sleep).generate(REQUEST)
    assert failed.value.kind is FailureKind.rate_limited
    assert sleep.waits == [1.0, 1.0] and len(fake.bodies) == 3


def test_a_500_is_transient_and_retried(setup):
    kind, fake = setup
    fake.fail_next(route(kind), 500)
    sleep = Recorder()
    generated = Generator(make(kind, fake), sleep=sleep).generate(REQUEST)
    assert len(sleep.waits) == 1 and len(fake.bodies) == 2
    assert generated.content.captions


def test_persistent_500_fails_as_transient(setup):
    kind, fake = setup
    fake.fail_next(route(kind), 500, n=2)
    with pytest.raises(GenerationFailed) as failed:
        Generator(make(kind, fake), attempts=2, sleep=Recorder()).generate(REQUEST)
    assert failed.value.kind is FailureKind.transient
    assert failed.value.provider == kind and len(failed.value.prompt_sha256) == 64


def test_invalid_json_gets_one_repair_round(setup):
    kind, fake = setup
    fake.answer_next("Sure! Here are your captions: {captions: oops")
    generated = Generator(make(kind, fake), sleep=Recorder()).generate(REQUEST)
    assert generated.repaired
    repair = fake.bodies[1]["messages"]
    assert [m["role"] for m in repair[-3:]] == ["user", "assistant", "user"]
    assert "not JSON" in repair[-1]["content"]
    assert generated.tokens_out > 0


def test_invalid_output_twice_fails_as_invalid_output(setup):
    kind, fake = setup
    too_long = json.dumps({"captions": [{"platform": "x", "text": "a" * 300}, {"platform": "mastodon", "text": "b"}],
                           "hashtags": []})
    fake.answer_next("not json at all", too_long)
    with pytest.raises(GenerationFailed) as failed:
        Generator(make(kind, fake), sleep=Recorder()).generate(REQUEST)
    assert failed.value.kind is FailureKind.invalid_output
    assert "at most 280" in failed.value.detail
    assert len(fake.bodies) == 2


def test_a_timeout_is_transient_and_retried(setup):
    kind, fake = setup
    fake.fail_next(route(kind), 200, hang_s=1.5)
    generated = Generator(make(kind, fake, timeout_s=0.3), sleep=Recorder()).generate(REQUEST)
    assert generated.content.captions


def test_timeouts_on_every_attempt_fail_as_transient(setup):
    kind, fake = setup
    fake.fail_next(route(kind), 200, hang_s=1.5, n=2)
    with pytest.raises(GenerationFailed) as failed:
        Generator(make(kind, fake, timeout_s=0.3), attempts=2, sleep=Recorder()).generate(REQUEST)
    assert failed.value.kind is FailureKind.transient and "timed out" in failed.value.detail


def test_a_wrong_key_fails_as_auth_without_retrying_or_showing_the_key(setup):
    kind, fake = setup
    sleep = Recorder()
    with pytest.raises(GenerationFailed) as failed:
        Generator(make(kind, fake, key="sk-wrong-secret"), sleep=sleep).generate(REQUEST)
    assert failed.value.kind is FailureKind.auth
    assert sleep.waits == []
    assert "sk-wrong-secret" not in str(failed.value) and "[redacted]" in failed.value.detail  # the fake echoed it


def test_the_offline_provider_is_deterministic_labelled_and_within_limits():
    long = GenerationRequest(topic="A very long announcement " * 30, platforms=["x", "instagram", "threads"],
                             context="More words. " * 200)
    first = Generator(OfflineTemplate()).generate(long)
    again = Generator(OfflineTemplate()).generate(long)
    assert first.content == again.content
    assert (first.provider, first.model) == ("offline", "template-v1")
    for caption in first.content.captions:
        assert output.over_limit(caption.platform, output.posted_text(caption.text, first.content.hashtags)) == []
