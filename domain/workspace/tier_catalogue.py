"""TierCatalogue: the tiers an admin defined, each at its latest version. One stream for all
tiers (a handful, each a few numbers), so its state stays small. A tier never defined here is
the shipped one from ``domain.tiers`` (version 0)."""

from __future__ import annotations

from dataclasses import dataclass

from schemas import events as ev

from domain import tiers
from domain.base import Context, HeraldAggregate

CATALOGUE_ID = "tiers"
# Commands on the catalogue travel with this workspace id: it belongs to no workspace.
ADMIN_WORKSPACE = "_tiers"


@dataclass(frozen=True)
class TierDefinition:
    name: str
    version: int
    limits: dict[str, int]

    @property
    def rank(self) -> tuple[int, int]:
        """Upgrade or downgrade: more monthly credits is a higher tier, then a longer queue."""
        return self.limits.get("monthly_credits", 0), self.limits.get("queue_size", 0)


def shipped(name: str) -> TierDefinition | None:
    return TierDefinition(name, 0, dict(tiers.LIMITS[name])) if name in tiers.LIMITS else None


class TierCatalogue(HeraldAggregate):
    KIND = "tier_catalogue"

    def __init__(self) -> None:
        super().__init__()
        self.tiers: dict[str, dict] = {}  # name → {"version": n, "limits": {...}}

    @classmethod
    def create(cls, ctx: Context, name: str, limits: dict[str, int]) -> TierCatalogue:
        return cls.start(ctx, CATALOGUE_ID, ev.TierDefined(tier=name, version=1, limits=limits))

    def define(self, ctx: Context, name: str, limits: dict[str, int]) -> int:
        version = self.tiers.get(name, {}).get("version", 0) + 1
        self.record(ctx, ev.TierDefined(tier=name, version=version, limits=limits))
        return version

    def get(self, name: str) -> TierDefinition | None:
        found = self.tiers.get(name)
        return TierDefinition(name, found["version"], dict(found["limits"])) if found else shipped(name)

    def evolve(self, event: ev.EventData) -> None:
        match event:
            case ev.TierDefined():
                self.tiers[event.tier] = {"version": event.version, "limits": dict(event.limits)}
