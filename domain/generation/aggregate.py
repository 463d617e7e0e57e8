"""Generation: one AI caption request, from its acceptance (counted against the day's limit) to the
provider's answer or failure, which is recorded once. Nothing here touches the wallet: generations
are never charged."""

from __future__ import annotations

from enum import StrEnum

from schemas import events as ev

from domain.base import Context, HeraldAggregate
from domain.rejections import Reason, Rejected


class Status(StrEnum):
    requested = "requested"
    succeeded = "succeeded"
    failed = "failed"


class Generation(HeraldAggregate):
    KIND = "generation"

    def __init__(self) -> None:
        super().__init__()
        self.generation_id = ""
        self.status = Status.requested
        self.platforms: list[str] = []
        self.outcome: dict = {}  # the succeeded or failed event's data

    @staticmethod
    def key(workspace_id: str, generation_id: str) -> str:
        return f"{workspace_id}/{generation_id}"

    @classmethod
    def request(cls, ctx: Context, requested: ev.GenerationRequested) -> Generation:
        return cls.start(ctx, cls.key(ctx.workspace_id, requested.generation_id), requested)

    def succeed(self, ctx: Context, succeeded: ev.GenerationSucceeded) -> None:
        self._pending()
        unasked = sorted(set(succeeded.captions) ^ set(self.platforms))
        if unasked:
            raise Rejected(Reason.invalid_payload, f"captions must be for exactly {sorted(self.platforms)}, "
                           f"they differ on {unasked}")
        self.record(ctx, succeeded)

    def fail(self, ctx: Context, failed: ev.GenerationFailed) -> None:
        self._pending()
        self.record(ctx, failed)

    def _pending(self) -> None:
        if self.status is not Status.requested:
            raise Rejected(Reason.generation_already_recorded,
                           f"generation {self.generation_id} already {self.status}")

    def evolve(self, event: ev.EventData) -> None:
        match event:
            case ev.GenerationRequested():
                self.generation_id, self.platforms = event.generation_id, list(event.platforms)
            case ev.GenerationSucceeded():
                self.status, self.outcome = Status.succeeded, event.model_dump()
            case ev.GenerationFailed():
                self.status, self.outcome = Status.failed, event.model_dump()
