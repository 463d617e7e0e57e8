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
    if app.find(SocialAccount, account_id) is not None:
        raise Rejected(Reason.account_exists, f"social account {account_id} is already connected")
    workspace.link_account(ctx, account_id, p.platform)
    instance_url = str(p.instance_url).rstrip("/") if p.instance_url else None
    account = SocialAccount.connect(ctx, account_id, p.platform, p.handle, instance_url, app.seal(p.access_token))
    result = {"social_account_id": account_id, "platform": str(p.platform), "handle": p.handle,
              "instance_url": instance_url}
    return [workspace, account], result
