"""SocialAccount: one account on one platform that posts can be published to.

Its tokens are not here: they live sealed in Herald's private credentials store, keyed by
account and version, and the account knows only which version is current. Events stored before
that store existed carried the sealed token; reading them drops it.
"""

from __future__ import annotations

from eventsourcing.utils import register_topic

from schemas import events as ev

from domain.base import Context, HeraldAggregate


class SocialAccount(HeraldAggregate):
    disconnected = False  # a class default: a snapshot from before disconnection existed loads without it
    KIND = "social_account"

    def __init__(self) -> None:
        super().__init__()
        self.social_account_id = ""
        self.platform = ""
        self.handle = ""
        self.instance_url: str | None = None
        self.credential_version: str | None = None
        self.needs_reconnect = ""  # the reason, while the platform refuses its token; "" when usable
        self.settings: dict[str, str] = {}  # non-secret (page_id, author_urn, …): they travel in events

    @classmethod
    def connect(cls, ctx: Context, social_account_id: str, platform: str, handle: str, instance_url: str | None,
                credential_version: str | None, settings: dict[str, str] | None = None) -> SocialAccount:
        connected = ev.SocialAccountConnected(
            social_account_id=social_account_id,
            platform=platform,
            handle=handle,
            instance_url=instance_url,
            credential_version=credential_version,
            settings=dict(settings or {}),
        )
        return cls.start(ctx, social_account_id, connected)

    def reconnect(self, ctx: Context, handle: str, instance_url: str | None, credential_version: str,
                  settings: dict[str, str] | None = None) -> None:
        """``settings``: the account's new settings; None or empty keeps the ones it has."""
        self.record(ctx, ev.SocialAccountReconnected(social_account_id=self.social_account_id, handle=handle,
                                                     instance_url=instance_url, credential_version=credential_version,
                                                     settings=dict(settings) if settings else None))

    def mark_needs_reconnect(self, ctx: Context, reason: str, credential_version: str | None, detail: str) -> bool:
        """Record it once per credential version; False when there is nothing to record (already
        marked, or the credentials that failed were replaced since)."""
        if self.needs_reconnect or credential_version != self.credential_version:
            return False
        self.record(ctx, ev.SocialAccountNeedsReconnect(social_account_id=self.social_account_id, reason=reason,
                                                        credential_version=credential_version, detail=detail))
        return True

    def disconnect(self, ctx: Context, reason: str, cancelled: int, held: int = 0) -> None:
        self.record(ctx, ev.SocialAccountDisconnected(social_account_id=self.social_account_id, actor=ctx.issued_by,
                                                      reason=reason, cancelled_destinations=cancelled,
                                                      held_destinations=held))

    def evolve(self, event: ev.EventData) -> None:
        match event:
            case ev.SocialAccountDisconnected():
                self.disconnected = True
            case ev.SocialAccountConnected():
                self.social_account_id = event.social_account_id
                self.platform, self.handle = event.platform, event.handle
                self.instance_url, self.credential_version = event.instance_url, event.credential_version
                self.settings = dict(event.settings)
            case ev.SocialAccountReconnected():
                self.handle, self.instance_url = event.handle, event.instance_url
                if event.settings is not None:
                    self.settings = dict(event.settings)
                self.credential_version, self.needs_reconnect = event.credential_version, ""
            case ev.SocialAccountNeedsReconnect():
                self.needs_reconnect = event.reason


# Events stored before the growth layout name the aggregate by its old module.
register_topic("domain.social_account:SocialAccount", SocialAccount)
