"""Deciding wallet commands: grants, and consuming or releasing holds."""

from __future__ import annotations

from typing import TYPE_CHECKING

from schemas import commands as cmd

from domain.base import Context, derived_id
from domain.registry import Outcome, handles
from domain.rejections import Reason, Rejected
from domain.wallet.grant_claim import GrantClaim

if TYPE_CHECKING:
    from domain.application import HeraldApplication


def grant_id_for(command_id: str, p: cmd.GrantCredits) -> str:
    return p.grant_id or derived_id("grant", command_id)


@handles(cmd.GrantCredits)
def grant_credits(app: HeraldApplication, ctx: Context, p: cmd.GrantCredits) -> Outcome:
    app.workspace(ctx)
    wallet = app.wallet(ctx)
    grant_id = grant_id_for(ctx.command_id, p)
    if p.expires_at is not None and p.expires_at <= ctx.now:
        raise Rejected(Reason.expires_at_in_past, f"expires_at {p.expires_at.isoformat()} has passed")
    if app.find(GrantClaim, GrantClaim.key(ctx.workspace_id, grant_id)) is not None:
        raise Rejected(Reason.grant_exists, f"grant {grant_id} was already made")
    wallet.grant(ctx, grant_id, p.amount, p.source, p.expires_at)
    return [GrantClaim.claim(ctx, grant_id), wallet], {"grant_id": grant_id, "available": wallet.available_at(ctx.now)}


@handles(cmd.ConsumeHold)
def consume_hold(app: HeraldApplication, ctx: Context, p: cmd.ConsumeHold) -> Outcome:
    wallet = app.wallet(ctx)
    wallet.consume(ctx, p.hold_id)
    return [wallet], {"hold_id": p.hold_id, "available": wallet.available_at(ctx.now)}


@handles(cmd.ReleaseHold)
def release_hold(app: HeraldApplication, ctx: Context, p: cmd.ReleaseHold) -> Outcome:
    wallet = app.wallet(ctx)
    wallet.release(ctx, p.hold_id, p.reason)
    return [wallet], {"hold_id": p.hold_id, "available": wallet.available_at(ctx.now)}
