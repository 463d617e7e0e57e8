"""CommandRecord: the first outcome of a command id, kept so a repeat has no second effect."""

from __future__ import annotations

from typing import Any

from eventsourcing.utils import register_topic

from schemas import events as ev

from domain.base import Context, HeraldAggregate


class CommandRecord(HeraldAggregate):
    KIND = "command"

    def __init__(self) -> None:
        super().__init__()
        self.outcome: ev.CommandAccepted | ev.CommandRejected | None = None

    @staticmethod
    def key(workspace_id: str, command_id: str) -> str:
        """Command ids are unique per workspace: another workspace's id never answers for ours."""
        return f"{workspace_id}/{command_id}"

    @classmethod
    def accepted(cls, ctx: Context, command_type: str, result: dict[str, Any],
                 subjects: list[str] | None = None) -> CommandRecord:
        event = ev.CommandAccepted(command_id=ctx.command_id, command_type=command_type, result=result,
                                   issued_by=ctx.issued_by, subjects=subjects or [])
        return cls.start(ctx, cls.key(ctx.workspace_id, ctx.command_id), event)

    @classmethod
    def rejected(cls, ctx: Context, command_type: str, reason_code: str, detail: str,
                 subjects: list[str] | None = None, limit: ev.LimitBreach | None = None) -> CommandRecord:
        event = ev.CommandRejected(
            command_id=ctx.command_id, command_type=command_type, reason_code=reason_code, detail=detail,
            issued_by=ctx.issued_by, subjects=subjects or [], limit=limit,
        )
        return cls.start(ctx, cls.key(ctx.workspace_id, ctx.command_id), event)

    def evolve(self, event: ev.EventData) -> None:
        match event:
            case ev.CommandAccepted() | ev.CommandRejected():
                self.outcome = event


# Events stored before the growth layout name the aggregate by its old module.
register_topic("domain.command_record:CommandRecord", CommandRecord)
