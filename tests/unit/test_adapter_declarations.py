"""What each part-B adapter declares for the registry and GET /v1/platforms: its capabilities as the
port's ``Capabilities``, settings, budgets with their sources, and limits that agree with
domain/post/platform_rules.py."""

from __future__ import annotations

import pytest

from domain.post.platform_rules import RULES, check
from processors.platforms import bluesky, discord, pinterest, reddit, telegram, tiktok, webhook, youtube
from processors.platforms.base import PORT, AdapterRegistry, Capabilities, Reconcile, TokenRefresh

ADAPTERS = [
    bluesky.BlueskyAdapter, pinterest.PinterestAdapter, reddit.RedditAdapter, youtube.YouTubeAdapter,
    tiktok.TikTokAdapter, discord.DiscordAdapter, telegram.TelegramAdapter, webhook.WebhookAdapter,
]
IDS = [a.platform for a in ADAPTERS]

# What each adapter can tell after an unknown outcome (docs/platforms.md).
RECONCILE = {"bluesky": Reconcile.lookup, "pinterest": Reconcile.lookup, "reddit": Reconcile.lookup,
             "youtube": Reconcile.lookup, "tiktok": Reconcile.lookup, "discord": Reconcile.none,
             "telegram": Reconcile.none, "webhook": Reconcile.idempotency_key}
MEDIA = {"bluesky": ("gif", "image", "video"), "pinterest": ("gif", "image", "video"),
         "reddit": ("gif", "image", "video"), "youtube": ("video",), "tiktok": ("image", "video"),
         "discord": ("file", "gif", "image", "video"), "telegram": ("image", "video"),
         "webhook": ("file", "gif", "image", "video")}


@pytest.mark.parametrize("adapter", ADAPTERS, ids=IDS)
def test_each_adapter_declares_the_port(adapter):
    capabilities = adapter.capabilities
    assert isinstance(capabilities, Capabilities)
    assert capabilities.reconcile is RECONCILE[adapter.platform]
    assert capabilities.media_kinds == MEDIA[adapter.platform]
    assert capabilities.threads is False
    assert capabilities.doc_url.startswith("https://") and capabilities.notes
    assert isinstance(adapter.required_settings, tuple) and all(isinstance(s, str) for s in adapter.required_settings)
    assert not set(adapter.required_settings) & set(capabilities.optional_settings)
    assert adapter.token_refresh is None or isinstance(adapter.token_refresh, TokenRefresh)
    assert all(b.source.startswith("https://") and b.requests > 0 and b.per_s > 0 for b in adapter.rate_budgets)
    assert all(hasattr(adapter, name) for name in PORT)


def test_the_registry_takes_every_part_b_adapter():
    registry = AdapterRegistry([bluesky.BlueskyAdapter(None), pinterest.PinterestAdapter(None),
                                reddit.RedditAdapter(None), youtube.YouTubeAdapter(None), tiktok.TikTokAdapter(None),
                                discord.DiscordAdapter(None), telegram.TelegramAdapter(None),
                                webhook.WebhookAdapter()])
    assert registry.platforms() == sorted(IDS)


@pytest.mark.parametrize("adapter", ADAPTERS, ids=IDS)
def test_capabilities_agree_with_the_platform_rules(adapter):
    rules = RULES[adapter.platform]
    capabilities = adapter.capabilities
    assert capabilities.display_name == rules.display
    assert capabilities.max_length in {limit.maximum for limit in rules.limits}
    assert capabilities.max_media == max(option.maximum for option in rules.media)
    kinds = {str(k) for option in rules.media for k in option.kinds}
    assert set(capabilities.media_kinds) - {"file"} <= kinds


@pytest.mark.parametrize(("adapter", "limit"), [(bluesky.BlueskyAdapter, bluesky.MAX_GRAPHEMES),
                                                (webhook.WebhookAdapter, webhook.MAX_BODY_TEXT)],
                         ids=["bluesky", "webhook"])
def test_the_adapters_own_text_cap_is_the_rules_cap(adapter, limit):
    assert adapter.capabilities.max_length == limit
    assert check(adapter.platform, "a" * limit) == []
    assert [v.code for v in check(adapter.platform, "a" * (limit + 1))] == ["text_too_long"]


def test_secrets_are_never_settings():
    for adapter in ADAPTERS:
        names = set(adapter.required_settings) | set(adapter.capabilities.optional_settings)
        assert not {"token", "secret", "password", "webhook_url"} & names
