"""Deciding social-account commands."""

from __future__ import annotations

from typing import TYPE_CHECKING

from schemas import commands as cmd

from domain.account.aggregate import SocialAccount
from domain.base import Context, derived_id
from domain.registry import Outcome, handles
from domain.rejections import Reason, Rejected

if TYPE_CHECKING:
    from domain.application import HeraldApplication


def account_id_for(command_id: str, p: cmd.ConnectSocialAccount) -> str:
    return p.social_account_id or derived_id("social_account", command_id)


@handles(cmd.ConnectSocialAccount)
def connect_social_account(app: HeraldApplication, ctx: Context, p: cmd.ConnectSocialAccount) -> Outcome:
    workspace = app.workspace(ctx)
    account_id = account_id_for(ctx.command_id, p)
    instance_url = str(p.instance_url).rstrip("/") if p.instance_url else None
    result = {"social_account_id": account_id, "platform": str(p.platform), "handle": p.handle,
              "instance_url": instance_url, "settings": dict(p.settings)}
    existing = app.find(SocialAccount, account_id)
    if existing is not None:
        if existing.disconnected:
            raise Rejected(Reason.account_exists, f"social account {account_id} was disconnected; connect it under "
                           "a new id")
        if not _is_reconnect(existing, ctx, p):
            raise Rejected(Reason.account_exists, f"social account {account_id} is already connected")
        assert p.credential_version is not None
        existing.reconnect(ctx, p.handle, instance_url, p.credential_version, dict(p.settings))
        return [existing], {**result, "settings": dict(existing.settings), "reconnected": True}
    workspace.link_account(ctx, account_id, p.platform)
    account = SocialAccount.connect(ctx, account_id, p.platform, p.handle, instance_url, p.credential_version,
                                    dict(p.settings))
    return [workspace, account], result


def _is_reconnect(account: SocialAccount, ctx: Context, p: cmd.ConnectSocialAccount) -> bool:
    """The same workspace's account on the same platform, with credentials it does not have yet."""
    return (account.workspace_id == ctx.workspace_id and account.platform == str(p.platform)
            and p.credential_version is not None and p.credential_version != account.credential_version)


@handles(cmd.MarkAccountNeedsReconnect)
def mark_account_needs_reconnect(app: HeraldApplication, ctx: Context, p: cmd.MarkAccountNeedsReconnect) -> Outcome:
    account = app.find(SocialAccount, p.social_account_id)
    if account is None or account.workspace_id != ctx.workspace_id:
        raise Rejected(Reason.unknown_social_account, f"no social account {p.social_account_id} in this workspace")
    changed = account.mark_needs_reconnect(ctx, p.reason, p.credential_version, p.detail)
    return ([account] if changed else []), {"social_account_id": p.social_account_id,
                                             "needs_reconnect": account.needs_reconnect or None}

