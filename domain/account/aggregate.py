"""SocialAccount: one account on one platform that posts can be published to."""

from __future__ import annotations

from eventsourcing.utils import register_topic

from schemas import events as ev

from domain.base import Context, HeraldAggregate


class SocialAccount(HeraldAggregate):
    KIND = "social_account"

    def __init__(self) -> None:
        super().__init__()
        self.social_account_id = ""
        self.platform = ""
        self.handle = ""
        self.instance_url: str | None = None
        self.sealed_token = ""

    @classmethod
    def connect(
        cls, ctx: Context, social_account_id: str, platform: str, handle: str, instance_url: str | None, sealed_token: str
    ) -> SocialAccount:
        connected = ev.SocialAccountConnected(
            social_account_id=social_account_id,
            platform=platform,
            handle=handle,
            instance_url=instance_url,
            sealed_token=sealed_token,
        )
        return cls.start(ctx, social_account_id, connected)

    def evolve(self, event: ev.EventData) -> None:
        match event:
            case ev.SocialAccountConnected():
                self.social_account_id = event.social_account_id
                self.platform, self.handle = event.platform, event.handle
                self.instance_url, self.sealed_token = event.instance_url, event.sealed_token


# Events stored before the growth layout name the aggregate by its old module.
register_topic("domain.social_account:SocialAccount", SocialAccount)
