"""BrandVoice: a workspace's voice for generated captions (one per workspace), versioned: every
change is a new version, and each generation records the version its prompt used."""

from __future__ import annotations

from typing import Any

from schemas import events as ev

from domain.base import Context, HeraldAggregate


class BrandVoice(HeraldAggregate):
    KIND = "brand_voice"

    def __init__(self) -> None:
        super().__init__()
        self.voice: dict[str, Any] = {}
        self.voice_version = 0

    @classmethod
    def set_first(cls, ctx: Context, fields: dict[str, Any]) -> BrandVoice:
        return cls.start(ctx, ctx.workspace_id, ev.BrandVoiceSet(version=1, **fields))

    def change(self, ctx: Context, fields: dict[str, Any]) -> None:
        self.record(ctx, ev.BrandVoiceSet(version=self.voice_version + 1, **fields))

    def evolve(self, event: ev.EventData) -> None:
        if isinstance(event, ev.BrandVoiceSet):
            self.voice = event.model_dump()
            self.voice_version = event.version
