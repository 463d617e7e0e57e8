"""The offline provider: no key, no network, deterministic. It fills a template from the request
(topic, tone, context, the brand voice's words to use) and is labelled in every result: provider
`offline`, model `template-v1`, so nobody takes its captions for an AI's. It lets `make run` and the
tests generate on a fresh machine."""

from __future__ import annotations

import json
import re

from processors.generation import output
from processors.generation.providers import Completion, Turn

_FIELD = re.compile(r"^(Topic|Tone for this post|Context|Platform): (.*)$", re.MULTILINE)


class OfflineTemplate:
    name = "offline"
    model = "template-v1"

    def complete(self, turn: Turn) -> Completion:
        fields: dict[str, list[str]] = {}
        for label, value in _FIELD.findall(turn.prompt.user):
            fields.setdefault(label, []).append(value)
        topic = (fields.get("Topic") or ["our news"])[0].strip()
        tone = (fields.get("Tone for this post") or [""])[0].strip()
        context = (fields.get("Context") or [""])[0].strip()
        platforms = [p.split(" (", 1)[0].strip() for p in fields.get("Platform", [])]
        hashtags = _hashtags(topic)
        captions = [{"platform": p, "text": _fit(p, _caption(topic, tone, context), hashtags)} for p in platforms]
        text = json.dumps({"captions": captions, "hashtags": hashtags}, ensure_ascii=False)
        return Completion(text, tokens_in=0, tokens_out=0)


def _caption(topic: str, tone: str, context: str) -> str:
    opening = {"playful": "Guess what?", "formal": "We are pleased to share:", "urgent": "Don't miss this:"}
    text = f"{opening.get(tone.lower(), 'New:')} {topic}."
    return f"{text} {context}" if context else text


def _hashtags(topic: str) -> list[str]:
    words = [w for w in re.findall(r"\w+", topic) if len(w) > 3]
    return list(dict.fromkeys(w.lower() for w in words))[:3]


def _fit(platform: str, caption: str, hashtags: list[str]) -> str:
    """Drops words from the end until caption and hashtags fit the platform's text limit."""
    words = caption.split()
    while len(words) > 1 and output.over_limit(platform, output.posted_text(" ".join(words), hashtags)):
        words.pop()
    text = " ".join(words)
    while len(text) > 1 and output.over_limit(platform, output.posted_text(text, hashtags)):
        text = text[:-1]
    return text
