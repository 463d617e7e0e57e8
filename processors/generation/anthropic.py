"""An Anthropic Messages client.

POST {base_url}/v1/messages with the headers `x-api-key`, `anthropic-version: 2023-06-01` and
`content-type: application/json`; body `model`, `max_tokens`, `system`, `messages` (user/assistant
turns) and `stream: false`. The answer is the `text` blocks of `content`, the tokens
`usage.input_tokens`/`output_tokens`. Errors are `{"type": "error", "error": {"type", "message"}}`:
429 `rate_limit_error` (with `retry-after`), 529 `overloaded_error`, 401 `authentication_error`,
403 `permission_error`, 500 `api_error`.
https://docs.anthropic.com/en/api/messages, https://docs.anthropic.com/en/api/errors,
https://docs.anthropic.com/en/api/versioning
"""

from __future__ import annotations

import httpx

from processors.generation import prompt
from processors.generation.errors import FailureKind, ProviderError
from processors.generation.http import post_json
from processors.generation.providers import Completion, Turn

API_VERSION = "2023-06-01"


class AnthropicMessages:
    name = "anthropic"

    def __init__(self, base_url: str, model: str, api_key: str, *, timeout_s: float = 30.0,
                 max_tokens: int = 1024) -> None:
        self.url = base_url.rstrip("/") + "/v1/messages"
        self.model = model
        self._headers = {"x-api-key": api_key, "anthropic-version": API_VERSION}
        self.max_tokens = max_tokens
        self._secret = api_key
        self._client = httpx.Client(timeout=timeout_s)

    def complete(self, turn: Turn) -> Completion:
        messages = [{"role": "user", "content": turn.prompt.user}]
        if turn.previous_answer is not None:
            messages += [{"role": "assistant", "content": turn.previous_answer},
                         {"role": "user", "content": prompt.repair(turn.previous_answer, turn.problem or "")}]
        answer = post_json(self._client, self.url, self._headers, {
            "model": self.model, "max_tokens": self.max_tokens, "system": turn.prompt.system,
            "messages": messages, "stream": False,
        }, self._secret)
        try:
            text = "".join(block["text"] for block in answer["content"] if block.get("type") == "text")
            usage = answer.get("usage") or {}
            tokens_in, tokens_out = int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))
        except (KeyError, TypeError, ValueError):
            raise ProviderError(FailureKind.transient, "the answer has no content blocks") from None
        return Completion(text, tokens_in, tokens_out)

    def close(self) -> None:
        self._client.close()
