"""Workspace: its tier and limits, its linked social accounts, and its queue of waiting posts."""

from __future__ import annotations

from schemas import events as ev

from domain import tiers
from domain.base import Context, HeraldAggregate
from domain.rejections import Reason, Rejected


class Workspace(HeraldAggregate):
    KIND = "workspace"

    def __init__(self) -> None:
        super().__init__()
        self.name = ""
        self.tier = "free"
        self.timezone = "UTC"
        self.limit_overrides: dict[str, int] = {}
        self.accounts: dict[str, str] = {}  # social account id → platform
        self.waiting_posts: set[str] = set()

    @classmethod
    def open(cls, ctx: Context, workspace_name: str, tier: str, timezone: str, limit_overrides: dict[str, int]) -> Workspace:
        effective = {name: tiers.limit(tier, name, limit_overrides) for name in tiers.LIMIT_NAMES}
        opened = ev.WorkspaceOpened(
            name=workspace_name, tier=tier, timezone=timezone, limit_overrides=limit_overrides, limits=effective
        )
        return cls.start(ctx, ctx.workspace_id, opened)

    def limit(self, name: str) -> int:
        return tiers.limit(self.tier, name, self.limit_overrides)

    def link_account(self, ctx: Context, social_account_id: str, platform: str) -> None:
        on_platform = sum(1 for p in self.accounts.values() if p == platform)
        allowed = self.limit("accounts_per_platform")
        if on_platform >= allowed:
            raise Rejected(
                Reason.account_limit_reached,
                f"the {self.tier} tier allows {allowed} {platform} account(s) per workspace",
            )
        self.record(ctx, ev.SocialAccountLinked(social_account_id=social_account_id, platform=platform))

    def enqueue_post(self, ctx: Context, post_id: str) -> None:
        allowed = self.limit("queue_size")
        if len(self.waiting_posts) >= allowed:
            raise Rejected(
                Reason.queue_full, f"{len(self.waiting_posts)} posts are waiting; the {self.tier} tier allows {allowed}"
            )
        self.record(ctx, ev.PostQueued(post_id=post_id))

    def dequeue_post(self, ctx: Context, post_id: str) -> None:
        if post_id in self.waiting_posts:
            self.record(ctx, ev.PostLeftQueue(post_id=post_id))

    def evolve(self, event: ev.EventData) -> None:
        match event:
            case ev.WorkspaceOpened():
                self.name, self.tier, self.timezone = event.name, event.tier, event.timezone
                self.limit_overrides = dict(event.limit_overrides)
            case ev.SocialAccountLinked():
                self.accounts[event.social_account_id] = event.platform
            case ev.PostQueued():
                self.waiting_posts.add(event.post_id)
            case ev.PostLeftQueue():
                self.waiting_posts.discard(event.post_id)
