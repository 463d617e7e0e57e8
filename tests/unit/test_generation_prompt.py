"""The generation prompt (assembled in processors/generation/prompt.py) and the output contract."""

from __future__ import annotations

import json

import pytest

from processors.generation import output
from processors.generation.prompt import BrandVoice, GenerationRequest, assemble

VOICE = BrandVoice(tone="warm and direct", audience="small bakeries", niche="baking supplies",
                   words_to_use=("fresh", "local"), words_to_avoid=("cheap", "synergy"),
                   example_posts=("Flour in, joy out.",), emoji_policy="sparingly", hashtag_policy="3, lower case",
                   version=4)


def test_the_prompt_carries_the_request_the_brand_voice_and_each_platform_limit():
    prompt = assemble(GenerationRequest(topic="New rye flour", platforms=["x", "linkedin"], tone="playful",
                                        language="de", context="launch on Monday", media_description="a loaf",
                                        voice=VOICE))
    for expected in ("Brand tone: warm and direct", "Audience: small bakeries", "Niche: baking supplies",
                     "Words to use: fresh, local", "Words never to use: cheap, synergy", "Emoji: sparingly",
                     "Hashtags: 3, lower case", "Flour in, joy out."):
        assert expected in prompt.system
    for expected in ("Topic: New rye flour", "Language: de", "Tone for this post: playful", "Context: launch on Monday",
                     "The post's media shows: a loaf", "Platform: x (at most 280 characters",
                     "Platform: linkedin (at most 3000 characters"):
        assert expected in prompt.user


def test_an_empty_voice_adds_no_empty_lines_and_the_hash_follows_the_content():
    bare = assemble(GenerationRequest(topic="t", platforms=["mastodon"]))
    assert "Brand tone" not in bare.system and "Context" not in bare.user
    assert bare.sha256 == assemble(GenerationRequest(topic="t", platforms=["mastodon"])).sha256
    assert bare.sha256 != assemble(GenerationRequest(topic="t", platforms=["mastodon"], voice=VOICE)).sha256


def _answer(captions, hashtags=()):
    return json.dumps({"captions": [{"platform": p, "text": t} for p, t in captions], "hashtags": list(hashtags)})


def test_output_needs_exactly_one_caption_per_platform():
    with pytest.raises(output.InvalidOutput, match="exactly one per platform"):
        output.parse(_answer([("x", "hi")]), ["x", "mastodon"])
    with pytest.raises(output.InvalidOutput, match="schema"):
        output.parse(json.dumps({"captions": [{"platform": "x"}], "hashtags": []}), ["x"])


def test_hashtags_count_towards_the_platform_limit():
    caption = "a" * 270
    assert output.parse(_answer([("x", caption)]), ["x"]).captions[0].text == caption
    with pytest.raises(output.InvalidOutput, match="at most 280"):
        output.parse(_answer([("x", caption)], ["toolongtag"]), ["x"])


def test_instagram_hashtag_rule_applies_and_fenced_json_is_accepted():
    with pytest.raises(output.InvalidOutput, match="instagram"):
        output.parse(_answer([("instagram", "hello")], [f"tag{i}" for i in range(6)]), ["instagram"])
    fenced = "```json\n" + _answer([("instagram", "hello")], ["#one"]) + "\n```"
    assert output.parse(fenced, ["instagram"]).hashtags == ["one"]
