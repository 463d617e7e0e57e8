"""The provider port and what every provider shares: one call returns the model's raw text and its
token counts; `Generator.generate` adds the retries (tenacity: rate limits and transient failures,
honouring Retry-After), the output check and one repair round on invalid output."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from processors.generation import output, prompt
from processors.generation.errors import FailureKind, ProviderError


@dataclass(frozen=True)
class Turn:
    """One exchange so far: what we asked and, for a repair, what the model answered before."""

    prompt: prompt.Prompt
    previous_answer: str | None = None
    problem: str | None = None


@dataclass(frozen=True)
class Completion:
    text: str
    tokens_in: int
    tokens_out: int


class Provider(Protocol):
    name: str
    model: str

    def complete(self, turn: Turn) -> Completion: ...


@dataclass(frozen=True)
class Generated:
    content: output.GeneratedContent
    provider: str
    model: str
    prompt_sha256: str
    tokens_in: int
    tokens_out: int
    latency_ms: int
    repaired: bool


class GenerationFailed(Exception):
    def __init__(self, error: ProviderError, *, provider: str, model: str, prompt_sha256: str, latency_ms: int) -> None:
        super().__init__(str(error))
        self.kind = error.kind
        self.detail = error.detail
        self.retry_after_s = error.retry_after_s
        self.provider, self.model, self.prompt_sha256, self.latency_ms = provider, model, prompt_sha256, latency_ms


class Generator:
    def __init__(self, provider: Provider, *, attempts: int = 3, max_wait_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.provider = provider
        self.attempts = attempts
        self.max_wait_s = max_wait_s
        self._clock = clock
        self._sleep = sleep

    def generate(self, request: prompt.GenerationRequest) -> Generated:
        assembled = prompt.assemble(request)
        started = self._clock()
        tokens_in = tokens_out = 0
        try:
            first = self._call(Turn(assembled))
            tokens_in, tokens_out = first.tokens_in, first.tokens_out
            try:
                content, repaired = output.parse(first.text, request.platforms), False
            except output.InvalidOutput as problem:
                second = self._call(Turn(assembled, first.text, str(problem)))
                tokens_in, tokens_out = tokens_in + second.tokens_in, tokens_out + second.tokens_out
                try:
                    content, repaired = output.parse(second.text, request.platforms), True
                except output.InvalidOutput as again:
                    raise ProviderError(FailureKind.invalid_output, str(again)) from None
        except ProviderError as error:
            raise GenerationFailed(error, provider=self.provider.name, model=self.provider.model,
                                   prompt_sha256=assembled.sha256, latency_ms=self._elapsed(started)) from error
        return Generated(content, self.provider.name, self.provider.model, assembled.sha256, tokens_in, tokens_out,
                         self._elapsed(started), repaired)

    def _call(self, turn: Turn) -> Completion:
        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            retry=retry_if_exception(lambda e: isinstance(e, ProviderError) and e.retryable),
            wait=self._wait,
            sleep=self._sleep,
            reraise=True,
        )
        return retrying(self.provider.complete, turn)

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, ProviderError) and error.retry_after_s is not None:
            return min(error.retry_after_s, self.max_wait_s)
        return wait_exponential(multiplier=0.5, max=self.max_wait_s)(state)

    def _elapsed(self, started: float) -> int:
        return int((self._clock() - started) * 1000)
