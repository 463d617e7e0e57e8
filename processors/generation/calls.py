"""One generation's provider call, shared by the gateway (POST …/generations) and the automation rule
runner: the configured provider built once, the prompt's brand voice, and the provider's answer or
failure worded as the `record_generation_outcome` command."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from processors.generation import prompt
from processors.generation.errors import FailureKind, ProviderError
from processors.generation.offline import OfflineTemplate
from processors.generation.providers import GenerationFailed, Generator
from schemas import commands as cmd

_VOICE_FIELDS = ("tone", "audience", "niche", "words_to_use", "words_to_avoid", "example_posts", "emoji_policy",
                 "hashtag_policy")


class ConfiguredProvider:
    """The configured generator, built once; a configuration error is kept and reported per request."""

    def __init__(self, build: Any) -> None:
        self._build = build or (lambda: Generator(OfflineTemplate()))
        self._lock = threading.Lock()
        self._built: Generator | None = None
        self._error: str | None = None

    def get(self) -> Generator:
        with self._lock:
            if self._built is None and self._error is None:
                try:
                    self._built = self._build()
                except Exception as error:  # noqa: BLE001 - any configuration error fails generations, not the gateway
                    self._error = f"{type(error).__name__}: {error}"
            if self._built is None:
                raise ProviderError(FailureKind.not_configured, self._error or "no provider")
            return self._built


def voice_of(found: dict[str, Any] | None) -> prompt.BrandVoice:
    if not found:
        return prompt.BrandVoice()
    return prompt.BrandVoice(**{k: found[k] for k in _VOICE_FIELDS}, version=found["version"])


@dataclass(frozen=True)
class Called:
    """A provider call worded as its record command, and how long the provider asked to wait (a
    rate limit's or a 5xx's Retry-After), if it said."""

    command: cmd.RecordGenerationOutcome
    retry_after_s: float | None = None


def call(generator: ConfiguredProvider, generation_id: str, request: prompt.GenerationRequest) -> Called:
    try:
        generated = generator.get().generate(request)
    except GenerationFailed as failed:
        return Called(cmd.RecordGenerationOutcome(
            generation_id=generation_id, succeeded=False, failure=str(failed.kind), detail=failed.detail[:2000],
            provider=failed.provider, model=failed.model[:200], prompt_sha256=failed.prompt_sha256,
            latency_ms=failed.latency_ms), failed.retry_after_s)
    except ProviderError as error:  # not configured: nothing was called
        return Called(cmd.RecordGenerationOutcome(
            generation_id=generation_id, succeeded=False, failure=str(error.kind), detail=error.detail[:2000],
            provider="none", prompt_sha256=prompt.assemble(request).sha256))
    return Called(cmd.RecordGenerationOutcome(
        generation_id=generation_id, succeeded=True,
        captions=[cmd.GeneratedCaption(platform=c.platform, text=c.text) for c in generated.content.captions],
        hashtags=[tag[:100] for tag in generated.content.hashtags], provider=generated.provider,
        model=generated.model[:200], prompt_sha256=generated.prompt_sha256, tokens_in=generated.tokens_in,
        tokens_out=generated.tokens_out, latency_ms=generated.latency_ms))


def outcome_of(generator: ConfiguredProvider, generation_id: str,
               request: prompt.GenerationRequest) -> cmd.RecordGenerationOutcome:
    return call(generator, generation_id, request).command
