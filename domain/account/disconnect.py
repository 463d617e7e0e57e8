"""Disconnecting a social account: its waiting destinations cancelled, then the account unlinked."""

from __future__ import annotations

from typing import TYPE_CHECKING

from schemas import commands as cmd
from schemas.statuses import WAITING

from domain.account.aggregate import SocialAccount
from domain.base import Context, HeraldAggregate
from domain.post.aggregate import Post
from domain.post.handlers import cancel_destinations, hold_destinations, unique
from domain.registry import Outcome, handles
from domain.rejections import Reason, Rejected

if TYPE_CHECKING:
    from domain.application import HeraldApplication


@handles(cmd.DisconnectSocialAccount)
def disconnect_social_account(app: HeraldApplication, ctx: Context, p: cmd.DisconnectSocialAccount) -> Outcome:
    """Cancels the account's waiting destinations (looked up among the workspace's waiting posts,
    at most its queue size) and unlinks it, freeing its place under the accounts limit."""
    workspace = app.workspace(ctx)
    account = app.find(SocialAccount, p.social_account_id)
    if account is None or account.workspace_id != ctx.workspace_id or account.disconnected:
        raise Rejected(Reason.unknown_social_account, f"no connected social account {p.social_account_id} in this "
                       "workspace")
    changed: list[HeraldAggregate] = []
    cancelled: list[dict[str, str]] = []
    held: list[dict[str, str]] = []
    for post_id in sorted(workspace.waiting_posts):
        post = app.find(Post, post_id)
        if post is None:
            continue
        waiting = [d_id for d_id, d in post.destinations.items()
                   if d.social_account_id == p.social_account_id and d.status in WAITING]
        if waiting and p.waiting == "hold":
            changed += hold_destinations(app, ctx, post, waiting, "account_disconnected")
            held += [{"post_id": post_id, "destination_id": d} for d in waiting]
        elif waiting:
            changed += cancel_destinations(app, ctx, post, waiting, "account_disconnected")
            cancelled += [{"post_id": post_id, "destination_id": d} for d in waiting]
    workspace.unlink_account(ctx, p.social_account_id)
    account.disconnect(ctx, p.reason, len(cancelled), len(held))
    return unique([*changed, workspace, account]), {"social_account_id": p.social_account_id,
                                                    "cancelled": cancelled, "on_hold": held}
