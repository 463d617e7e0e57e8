"""Grant ids recorded before grant claims existed get their claim once, so the promise "a grant
id pays once, for good" holds for them too after an upgrade. Reads the whole history once (the
caller runs it once per store); saves nothing for ids already claimed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

from schemas import events as ev

from domain.base import Context
from domain.wallet.grant_claim import GrantClaim

if TYPE_CHECKING:
    from domain.application import HeraldApplication

PAGE = 1_000


def claim_earlier_grants(app: HeraldApplication) -> int:
    """Save a ``GrantClaim`` for every granted id that has none; returns how many were claimed."""
    claimed = 0
    pending: dict[str, GrantClaim] = {}
    for workspace_id, grant_id in _granted(app):
        key = GrantClaim.key(workspace_id, grant_id)
        if key in pending or app.find(GrantClaim, key) is not None:
            continue
        command_id = f"upgrade/grant-claim/{key}"
        ctx = Context(command_id=command_id, correlation_id=command_id, workspace_id=workspace_id,
                      issued_by="upgrade", now=app.clock())
        pending[key] = GrantClaim.claim(ctx, grant_id)
        if len(pending) >= PAGE:
            claimed += _save(app, pending)
    return claimed + _save(app, pending)


def _granted(app: HeraldApplication) -> Iterator[tuple[str, str]]:
    start = 1
    while notifications := app.recorder.select_notifications(start=start, limit=PAGE):
        for notification in notifications:
            event = app.mapper.to_domain_event(notification)
            if getattr(event, "type", None) == ev.CreditsGranted.type:
                yield event.workspace_id, event.data["grant_id"]
        start = notifications[-1].id + 1


def _save(app: HeraldApplication, pending: dict[str, GrantClaim]) -> int:
    count = len(pending)
    if pending:
        app.save(*pending.values())
        pending.clear()
    return count
