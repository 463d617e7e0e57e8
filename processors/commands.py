"""How processors word the commands they send back: deterministic ids, so a redelivered
event re-issues the same command and the domain sees a repeat, not a second request."""

from __future__ import annotations

from datetime import UTC, datetime

from domain.base import derived_id
from schemas.commands import CommandEnvelope, Payload
from schemas.events import CloudEvent


def command_for(payload: Payload, *, workspace_id: str, id_parts: tuple[object, ...], issued_by: str,
                caused_by: CloudEvent | None = None) -> CommandEnvelope:
    return CommandEnvelope.wrap(
        payload,
        command_id=derived_id("command", *id_parts),
        workspace_id=workspace_id,
        issued_by=issued_by,
        issued_at=datetime.now(UTC),
        correlation_id=caused_by.correlationid if caused_by else None,
    )
