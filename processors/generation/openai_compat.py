"""An OpenAI-compatible Chat Completions client (OpenAI, xAI, vLLM, Ollama, LM Studio all speak it).

POST {base_url}/chat/completions with a bearer key, `stream: false` and `response_format`
`{"type": "json_schema", "json_schema": {"name", "schema", "strict": true}}` (Structured Outputs);
the answer is `choices[0].message.content`, the tokens `usage.prompt_tokens`/`completion_tokens`.
A `refusal` is invalid output; a cut-off answer (`finish_reason: length`) fails the output check
and gets the repair round.
https://platform.openai.com/docs/api-reference/chat/create,
https://platform.openai.com/docs/guides/structured-outputs
"""

from __future__ import annotations

import httpx

from processors.generation import output, prompt
from processors.generation.errors import FailureKind, ProviderError
from processors.generation.http import post_json
from processors.generation.providers import Completion, Turn


class OpenAICompatible:
    name = "openai"

    def __init__(self, base_url: str, model: str, api_key: str = "", *, timeout_s: float = 30.0,
                 max_tokens: int = 1024, json_schema: bool = True) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.max_tokens = max_tokens
        self._secret = api_key
        self.json_schema = json_schema  # some local servers know only {"type": "json_object"}
        self._client = httpx.Client(timeout=timeout_s)

    def complete(self, turn: Turn) -> Completion:
        messages = [{"role": "system", "content": turn.prompt.system}, {"role": "user", "content": turn.prompt.user}]
        if turn.previous_answer is not None:
            messages += [{"role": "assistant", "content": turn.previous_answer},
                         {"role": "user", "content": prompt.repair(turn.previous_answer, turn.problem or "")}]
        response_format = (
            {"type": "json_schema", "json_schema": {"name": "captions", "schema": output.json_schema(), "strict": True}}
            if self.json_schema else {"type": "json_object"}
        )
        answer = post_json(self._client, self.url, self._headers, {
            "model": self.model, "messages": messages, "response_format": response_format,
            "max_completion_tokens": self.max_tokens, "stream": False,
        }, self._secret)
        try:
            choice = answer["choices"][0]
            message = choice["message"]
            usage = answer.get("usage") or {}
            tokens_in, tokens_out = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
        except (KeyError, IndexError, TypeError, ValueError):
            raise ProviderError(FailureKind.transient, "the answer has no choices[0].message") from None
        if message.get("refusal"):
            raise ProviderError(FailureKind.invalid_output, f"the model refused: {str(message['refusal'])[:200]}")
        return Completion(message.get("content") or "", tokens_in, tokens_out)

    def close(self) -> None:
        self._client.close()
