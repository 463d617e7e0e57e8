"""The provider the settings name, wrapped in a Generator."""

from __future__ import annotations

from herald.settings import Settings
from processors.generation.anthropic import AnthropicMessages
from processors.generation.offline import OfflineTemplate
from processors.generation.openai_compat import OpenAICompatible
from processors.generation.providers import Generator, Provider


class MissingSetting(ValueError):
    pass


def provider(settings: Settings) -> Provider:
    key = settings.generation_api_key.get_secret_value()
    match settings.generation_provider:
        case "offline":
            return OfflineTemplate()
        case "openai":
            if not settings.generation_model:
                raise MissingSetting("HERALD_GENERATION_MODEL is required for the openai provider")
            return OpenAICompatible(settings.generation_base_url or "https://api.openai.com/v1",
                                    settings.generation_model, key, timeout_s=settings.generation_timeout_s,
                                    max_tokens=settings.generation_max_tokens,
                                    json_schema=settings.generation_json_schema)
        case "anthropic":
            if not settings.generation_model or not key:
                raise MissingSetting("HERALD_GENERATION_MODEL and HERALD_GENERATION_API_KEY are required for anthropic")
            return AnthropicMessages(settings.generation_base_url or "https://api.anthropic.com",
                                     settings.generation_model, key, timeout_s=settings.generation_timeout_s,
                                     max_tokens=settings.generation_max_tokens)
    raise MissingSetting(f"unknown generation provider {settings.generation_provider!r}")


def generator(settings: Settings) -> Generator:
    return Generator(provider(settings), attempts=settings.generation_attempts)
