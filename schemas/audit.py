"""API bodies of the audit endpoints: an aggregate's history, its state at a past version, and a
workspace's rejected commands (gateway/routes/audit.py; docs/audit-and-replay.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


class Reason(BaseModel):
    code: str = Field(description="stable: a domain reason code, a platform error kind, or e.g. `missed`")
    sentence: str = Field(description="for people")


class HistoryEntry(BaseModel):
    kind: Literal["event", "rejection", "publishing"] = Field(
        description="`event`: the aggregate's own; `rejection`: a command rejected about it (changed nothing); "
        "`publishing`: in an account's history, an event of a post sent to that account")
    position: int = Field(description="global position in the event store")
    version: int | None = Field(description="the aggregate's version after this event (events only)")
    type: str
    time: datetime
    actor: str | None = Field(description="who sent the command: `api-key:<key id>`, `dispatcher`, `publisher`, "
                              "`settler`, …; null for events recorded before senders were recorded")
    command_id: str
    command_type: str | None
    causation_id: str
    correlation_id: str | None
    data: dict[str, Any] = Field(description="the event's data; tokens redacted")
    reason: Reason | None = Field(description="for rejections, skips, failures, retries, unknown outcomes, "
                                  "releases and cancellations")
    post_id: str | None = None
    post_version: int | None = None


class History(BaseModel):
    subject: str = Field(description="`post:<id>`, `wallet` or `social_account:<id>`")
    workspace_id: str
    aggregate_id: str
    entries: list[HistoryEntry]
    next_cursor: str | None = Field(description="pass back as `cursor` for the next page; null on the last")


class PastState(BaseModel):
    subject: str
    workspace_id: str
    version: int
    modified_at: datetime
    state: dict[str, Any] = Field(description="the aggregate's fields (and derived figures) then; no secrets")


class Rejection(BaseModel):
    command_id: str
    command_type: str
    reason_code: str
    detail: str
    issued_by: str | None
    subjects: list[str]
    rejected_at: datetime
    position: int


class Rejections(BaseModel):
    workspace_id: str
    rejections: list[Rejection]
    next_after: int | None = Field(description="pass back as `after` for the next page; null on the last")
