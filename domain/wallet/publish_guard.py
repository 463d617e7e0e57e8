"""Zero credits at publish time. Credits are reserved when a post is scheduled (one hold per
destination), and a pending hold keeps its credits even if the grant behind them expires. So a
destination reaches its start without credits only when its hold is gone: expired by the
credit clock (its post was due longer than the hold grace ago) or released. Such a destination
is skipped with reason ``insufficient_credits`` instead of starting: no platform call, and the
post's other destinations go on."""

from __future__ import annotations

from typing import TYPE_CHECKING

from schemas import events as ev
from schemas.statuses import WAITING

from domain.base import Context

if TYPE_CHECKING:
    from domain.application import HeraldApplication
    from domain.post.aggregate import Post

INSUFFICIENT_CREDITS = "insufficient_credits"


def skipped_without_credits(app: HeraldApplication, ctx: Context, post: Post, destination_id: str,
                            attempt: int) -> bool:
    """Skip the destination (and say so) when the attempt would start without a pending hold."""
    dest = post.destination(destination_id)
    if dest.status not in WAITING or attempt != dest.attempt + 1:
        return False  # the post's own fencing answers this attempt
    if dest.hold_id in app.wallet(ctx).holds:
        return False
    post.record(ctx, ev.DestinationSkipped(post_id=post.post_id, destination_id=destination_id,
                                           hold_id=dest.hold_id, reason=INSUFFICIENT_CREDITS))
    return True
