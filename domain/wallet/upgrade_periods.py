"""Workspaces opened before credit periods existed get their first period once, at the first
start of this version: it starts then and renews on that local day of the month (monthly credits
from the first renewal on). Reads the history once for the opened workspaces; a workspace that
has a period already is left as it is (the command is a no-op for it)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Iterator

from schemas import commands as cmd
from schemas import events as ev

from domain.base import derived_id

if TYPE_CHECKING:
    from domain.application import HeraldApplication

PAGE = 1_000
BATCH = 200


def start_missing_periods(app: HeraldApplication) -> int:
    """Decide ``start_credit_period`` for every workspace opened so far; returns how many were asked."""
    batch: list[cmd.CommandEnvelope] = []
    asked = 0
    for workspace_id in _opened(app):
        batch.append(cmd.CommandEnvelope.wrap(
            cmd.StartCreditPeriod(), command_id=derived_id("upgrade", "credit-period", workspace_id),
            workspace_id=workspace_id, issued_by="upgrade", issued_at=datetime.now(UTC)))
        if len(batch) >= BATCH:
            asked += _decide(app, batch)
    return asked + _decide(app, batch)


def _opened(app: HeraldApplication) -> Iterator[str]:
    start = 1
    while notifications := app.recorder.select_notifications(start=start, limit=PAGE):
        for notification in notifications:
            event = app.mapper.to_domain_event(notification)
            if getattr(event, "type", None) == ev.WorkspaceOpened.type:
                yield event.workspace_id
        start = notifications[-1].id + 1


def _decide(app: HeraldApplication, batch: list[cmd.CommandEnvelope]) -> int:
    count = len(batch)
    if batch:
        app.handle_batch(batch)
        batch.clear()
    return count
