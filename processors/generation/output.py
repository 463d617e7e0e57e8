"""The output contract every provider must meet: one caption per requested platform, within that
platform's text rules (domain/post/platform_rules.py, hashtags appended as they would be posted),
and hashtags. The JSON schema is what the providers ask the model for; pydantic checks the answer."""

from __future__ import annotations

import json
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from domain.post import platform_rules

_MEDIA_CODES = {
    platform_rules.Code.media_required, platform_rules.Code.too_many_media, platform_rules.Code.media_type_not_allowed,
    platform_rules.Code.media_kind_unknown, platform_rules.Code.mixed_media,
}


class Caption(BaseModel):
    model_config = ConfigDict(extra="forbid")
    platform: str
    text: str = Field(min_length=1)


class GeneratedContent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    captions: list[Caption] = Field(min_length=1)
    hashtags: list[str] = Field(default_factory=list, max_length=30)


class InvalidOutput(ValueError):
    pass


def json_schema() -> dict:
    """Strict-mode compatible: every property required, no additional properties."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["captions", "hashtags"],
        "properties": {
            "captions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["platform", "text"],
                    "properties": {"platform": {"type": "string"}, "text": {"type": "string"}},
                },
            },
            "hashtags": {"type": "array", "items": {"type": "string"}},
        },
    }


def posted_text(caption: str, hashtags: Sequence[str]) -> str:
    tags = " ".join(tag if tag.startswith("#") else f"#{tag}" for tag in hashtags)
    return f"{caption}\n\n{tags}" if tags else caption


def parse(raw: str, platforms: Sequence[str]) -> GeneratedContent:
    """The model's raw answer as content, or InvalidOutput saying what is wrong (fed to the repair)."""
    text = raw.strip()
    if text.startswith("```"):  # some models fence JSON even when asked not to
        text = text.strip("`").removeprefix("json").strip()
    try:
        content = GeneratedContent.model_validate(json.loads(text))
    except json.JSONDecodeError as error:
        raise InvalidOutput(f"not JSON: {error}") from None
    except ValidationError as error:
        raise InvalidOutput(f"does not match the schema: {error.errors(include_url=False)}") from None
    content.hashtags = [tag.lstrip("#").strip() for tag in content.hashtags if tag.strip("# ")]
    got = [c.platform for c in content.captions]
    if sorted(got) != sorted(set(platforms)):
        raise InvalidOutput(f"captions are for {got}; exactly one per platform {sorted(set(platforms))} is wanted")
    problems = []
    for caption in content.captions:
        text = posted_text(caption.text, content.hashtags)
        problems += [f"{v.platform}: {v.message}" for v in platform_rules.check(caption.platform, text)
                     if v.code not in _MEDIA_CODES]
        problems += over_limit(caption.platform, text)
    if problems:
        raise InvalidOutput("breaks the platform rules: " + "; ".join(problems))
    return content


def over_limit(platform: str, text: str) -> list[str]:
    """A generated caption is one post: an X text over 280 would be posted as a thread, which is
    not what was asked for, so the single-post limit applies here even where check() allows more."""
    rules = platform_rules.RULES.get(platform)
    return [
        f"{platform}: {limit.unit.count(text)} {limit.unit.name}, at most {limit.maximum}"
        for limit in (rules.limits if rules else ())
        if limit.part is platform_rules.Part.text and limit.with_media is not True
        and limit.unit.count(text) > limit.maximum
    ]
