"""Accounts connected before the credentials store existed kept their sealed token in their
``SocialAccountConnected`` event. At the first start of this version their sealed tokens are
copied, still sealed (same key), into the store (run once by ``Herald.prepare()`` and recorded in
``herald_upgrades`` as ``credentials-store-v1``). Reads the history once; an account that already
has credentials in the store keeps them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

from psycopg_pool import ConnectionPool

from domain.base import derived_id
from processors.accounts import vault
from schemas import events as ev

if TYPE_CHECKING:
    from domain.application import HeraldApplication

PAGE = 1_000


def upgrade_version(account_id: str) -> str:
    return derived_id("credential", "upgrade", account_id)


def copy_earlier_tokens(app: HeraldApplication, pool: ConnectionPool) -> int:
    """Store every sealed token found in stored connect events; returns how many were stored."""
    copied = 0
    with pool.connection() as conn:
        for workspace_id, data in _connected_with_tokens(app):
            account_id = data["social_account_id"]
            if vault.current(conn, account_id, workspace_id) is not None:
                continue
            copied += vault.store(conn, social_account_id=account_id, version=upgrade_version(account_id),
                                  workspace_id=workspace_id, platform=data["platform"],
                                  instance_url=data.get("instance_url"), sealed_access_token=data["sealed_token"],
                                  sealed_refresh_token=None, access_expires_at=None)
    return copied


def _connected_with_tokens(app: HeraldApplication) -> Iterator[tuple[str, dict]]:
    start = 1
    while notifications := app.recorder.select_notifications(start=start, limit=PAGE):
        for notification in notifications:
            event = app.mapper.to_domain_event(notification)
            if getattr(event, "type", None) == ev.SocialAccountConnected.type and event.data.get("sealed_token"):
                yield event.workspace_id, event.data
        start = notifications[-1].id + 1
