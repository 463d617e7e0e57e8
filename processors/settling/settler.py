"""Settler: a published destination consumes its credit hold; a failed, skipped or
cancelled one releases it — for events from before the domain did so itself. Since then the
decision that ends a destination ends its hold too (domain/post/handlers.py, settle_holds) and
says so with ``hold_settled``; the settler leaves those be."""

from __future__ import annotations

from typing import Iterable

from psycopg import Connection

from processors.commands import command_for
from schemas import events as ev
from schemas.events import CloudEvent
from schemas.commands import CommandEnvelope, ConsumeHold, ReleaseHold


def settle(_conn: Connection, event: CloudEvent) -> Iterable[CommandEnvelope]:
    if event.type not in SETTLING_TYPES:
        return []
    data = event.parsed_data()
    if getattr(data, "hold_settled", False):
        return []

    def consume(hold_id: str) -> CommandEnvelope:
        return command_for(ConsumeHold(hold_id=hold_id), workspace_id=event.workspaceid,
                           id_parts=("consume", hold_id), issued_by="settler", caused_by=event)

    def release(hold_id: str, reason: str) -> CommandEnvelope:
        return command_for(ReleaseHold(hold_id=hold_id, reason=reason), workspace_id=event.workspaceid,
                           id_parts=("release", hold_id), issued_by="settler", caused_by=event)

    match data:
        case ev.DestinationPublished():
            return [consume(data.hold_id)]
        case ev.DestinationFailed():
            return [release(data.hold_id, "publish_failed")]
        case ev.DestinationSkipped():
            return [release(data.hold_id, f"skipped:{data.reason}")]
        case ev.PostCancelled():
            return [release(hold_id, "post_cancelled") for hold_id in data.released_holds]
    return []


SETTLING_TYPES = frozenset(
    m.type for m in (ev.DestinationPublished, ev.DestinationFailed, ev.DestinationSkipped, ev.PostCancelled)
)
