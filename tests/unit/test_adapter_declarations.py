"""What each part-B adapter declares for the registry and GET /v1/platforms: its capabilities in one
shape, settings, budgets with their sources, and limits that agree with domain/post/platform_rules.py."""

from __future__ import annotations

import pytest

from domain.post.platform_rules import RULES
from processors.platforms import bluesky, discord, pinterest, reddit, telegram, tiktok, webhook, youtube
from processors.platforms.base import TokenRefresh

ADAPTERS = [
    (bluesky, bluesky.BlueskyAdapter), (pinterest, pinterest.PinterestAdapter), (reddit, reddit.RedditAdapter),
    (youtube, youtube.YouTubeAdapter), (tiktok, tiktok.TikTokAdapter), (discord, discord.DiscordAdapter),
    (telegram, telegram.TelegramAdapter), (webhook, webhook.WebhookAdapter),
]


@pytest.mark.parametrize(("module", "adapter"), ADAPTERS, ids=[a.platform for _, a in ADAPTERS])
def test_each_adapter_declares_the_same_shape(module, adapter):
    capabilities = module.CAPABILITIES
    assert adapter.capabilities is capabilities
    assert set(capabilities) == {"media_kinds", "max_length", "threads", "reconcile", "doc"}
    assert capabilities["media_kinds"] and set(capabilities["media_kinds"]) <= {"image", "video", "gif", "file"}
    assert isinstance(capabilities["max_length"], int) and capabilities["max_length"] > 0
    assert capabilities["threads"] is False and isinstance(capabilities["reconcile"], bool)
    assert capabilities["doc"].startswith("https://")
    assert isinstance(adapter.required_settings, tuple) and all(isinstance(s, str) for s in adapter.required_settings)
    assert adapter.token_refresh is None or isinstance(adapter.token_refresh, TokenRefresh)
    assert all(b.source.startswith("https://") and b.requests > 0 and b.per_s > 0 for b in adapter.rate_budgets)


@pytest.mark.parametrize(("module", "adapter"), [a for a in ADAPTERS if a[1].platform != "webhook"],
                         ids=[a.platform for _, a in ADAPTERS if a.platform != "webhook"])
def test_capabilities_agree_with_the_platform_rules(module, adapter):
    rules = RULES[adapter.platform]
    assert module.CAPABILITIES["max_length"] in {limit.maximum for limit in rules.limits}
    kinds = {str(k) for option in rules.media for k in option.kinds} | {"file"}
    assert set(module.CAPABILITIES["media_kinds"]) <= kinds


def test_secrets_are_never_settings():
    for _, adapter in ADAPTERS:
        assert not {"token", "secret", "password", "webhook_url"} & set(adapter.required_settings)
