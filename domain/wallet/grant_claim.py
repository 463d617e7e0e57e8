"""GrantClaim: a grant id taken for good, so a grant sent again (say, for the same invoice)
under another command id is refused even after the first grant was used up and left the
wallet's state."""

from __future__ import annotations

from schemas import events as ev

from domain.base import Context, HeraldAggregate


class GrantClaim(HeraldAggregate):
    KIND = "grant"

    def __init__(self) -> None:
        super().__init__()

    @staticmethod
    def key(workspace_id: str, grant_id: str) -> str:
        return f"{workspace_id}/{grant_id}"

    @classmethod
    def claim(cls, ctx: Context, grant_id: str) -> GrantClaim:
        return cls.start(ctx, cls.key(ctx.workspace_id, grant_id), ev.GrantIdClaimed(grant_id=grant_id))

    def evolve(self, event: ev.EventData) -> None:
        pass  # existing is all a claim has to say
