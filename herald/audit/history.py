"""The history of one post, wallet or social account, read from the event store, and its state
at any past version.

Reading the event store directly is right here: audit wants exactly what was decided, and it is
not a hot path. Pages are bounded (``MAX_LIMIT``) and keyset-ordered, so a wallet with years of
history costs the same per page. Each event is shown with who caused it: its causation id is a
command id, whose ``CommandRecord`` (one event, found by its derived id in one query per page)
names the sender (``issued_by``) and the command type. Rejected commands never touch the
aggregate; they come from the audit read model (``projections.audit``) by subject and are merged
in by position.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from psycopg import Connection
from pydantic_core import to_jsonable_python

from domain.account import SocialAccount
from domain.application import HeraldApplication
from domain.base import HeraldAggregate
from domain.command import CommandRecord
from domain.post import Post
from domain.wallet import Wallet
from herald.audit.reasons import reason_of
from projections import audit

MAX_LIMIT = 500
SECRET_FIELDS = frozenset({"sealed_token", "access_token"})  # never shown, even sealed

KINDS: dict[str, type[HeraldAggregate]] = {"post": Post, "wallet": Wallet, "social_account": SocialAccount}


class NotFound(LookupError):
    """The subject does not exist in this workspace (or the version is not one it had)."""


@dataclasses.dataclass(frozen=True)
class Subject:
    kind: str  # post | wallet | social_account
    herald_id: str  # post id, workspace id (wallet), social account id
    workspace_id: str

    @property
    def name(self) -> str:  # as in CommandRejected.subjects
        return "wallet" if self.kind == "wallet" else f"{self.kind}:{self.herald_id}"

    @property
    def aggregate_id(self) -> UUID:
        return KINDS[self.kind].aggregate_id(self.herald_id)


def encode_cursor(version: int, position: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([version, position]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        version, position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(version, int) or not isinstance(position, int):
            raise TypeError("cursor fields are not integers")
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError) as error:
        raise ValueError(f"malformed history cursor {cursor[:80]!r}: pass back a next_cursor as returned") from error
    return version, position


def redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ("<redacted>" if k in SECRET_FIELDS else redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


class History:
    def __init__(self, app: HeraldApplication) -> None:
        self.app = app
        self.table = app.recorder.events_table_name
        self.decode = app.mapper.transcoder.decode

    def _stream(self, conn: Connection, aggregate_id: UUID, after_version: int, limit: int) -> list[tuple]:
        return conn.execute(
            f"SELECT originator_version, notification_id, state FROM {self.table}"  # noqa: S608 - our own table name
            " WHERE originator_id = %s AND originator_version > %s ORDER BY originator_version LIMIT %s",
            (aggregate_id, after_version, limit),
        ).fetchall()

    def _check_owner(self, conn: Connection, subject: Subject, *, rejections_suffice: bool = False) -> None:
        """Raises NotFound unless the aggregate exists in this workspace (or, when
        ``rejections_suffice``, commands about it were rejected there: a post whose scheduling was
        refused never existed, yet its rejection is its history)."""
        first = self._stream(conn, subject.aggregate_id, 0, 1)
        if first and self.decode(first[0][2])["workspace_id"] == subject.workspace_id:
            return
        if not first and rejections_suffice and audit.has_rejections_about(conn, subject.workspace_id, subject.name):
            return
        raise NotFound(f"no {subject.kind.replace('_', ' ')} {subject.herald_id} in this workspace")

    def _commands(self, conn: Connection, workspace_id: str, command_ids: set[str]) -> dict[str, dict[str, Any]]:
        """command id → its recorded outcome (issued_by, command_type), in one query."""
        ids = {CommandRecord.aggregate_id(CommandRecord.key(workspace_id, c)): c for c in command_ids}
        rows = conn.execute(
            f"SELECT originator_id, state FROM {self.table} WHERE originator_id = ANY(%s) AND originator_version = 1",
            (list(ids),),
        ).fetchall()
        return {ids[originator]: self.decode(state)["data"] for originator, state in rows}

    def page(self, conn: Connection, subject: Subject, *, cursor: str | None = None, limit: int = 100) -> dict[str, Any]:
        """One page of the subject's timeline, oldest first: its events and the commands rejected
        about it, merged by position. Raises NotFound, ValueError (bad cursor or limit)."""
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_LIMIT}, not {limit!r}")
        after_version, after_position = decode_cursor(cursor) if cursor else (0, 0)
        self._check_owner(conn, subject, rejections_suffice=True)
        entries: list[dict[str, Any]] = []
        for version, position, state in self._stream(conn, subject.aggregate_id, after_version, limit):
            stored = self.decode(state)
            entries.append({
                "kind": "event", "position": position, "version": version, "type": stored["type"],
                "time": stored["timestamp"], "command_id": stored["causation_id"],
                "causation_id": stored["causation_id"], "correlation_id": stored["correlation_id"],
                "data": redact(stored["data"]), "reason": reason_of(stored["type"], stored["data"]),
            })
        for row in audit.rejections_about(conn, subject.workspace_id, subject.name, after=after_position, limit=limit):
            data = {"command_id": row["command_id"], "command_type": row["command_type"],
                    "reason_code": row["reason_code"], "detail": row["detail"]}
            entries.append({
                "kind": "rejection", "position": row["position"], "version": None, "type": "herald.command.rejected.v1",
                "time": row["rejected_at"], "command_id": row["command_id"], "causation_id": row["command_id"],
                "correlation_id": None, "actor": row["issued_by"], "command_type": row["command_type"],
                "data": data, "reason": reason_of("herald.command.rejected.v1", data),
            })
        if subject.kind == "social_account":
            for row in audit.account_events(conn, subject.workspace_id, subject.herald_id, after=after_position,
                                            limit=limit):
                entries.append({
                    "kind": "publishing", "position": row["position"], "version": None, "type": row["type"],
                    "time": row["time"], "command_id": row["causation_id"], "causation_id": row["causation_id"],
                    "correlation_id": row["correlation_id"], "post_id": row["post_id"],
                    "post_version": row["aggregate_version"], "data": redact(row["data"]),
                    "reason": reason_of(row["type"], row["data"]),
                })
        entries.sort(key=lambda e: e["position"])
        entries = entries[:limit]
        commands = self._commands(conn, subject.workspace_id, {e["command_id"] for e in entries if e["kind"] != "rejection"})
        for entry in entries:
            if entry["kind"] != "rejection":
                outcome = commands.get(entry["command_id"], {})
                entry["actor"], entry["command_type"] = outcome.get("issued_by"), outcome.get("command_type")
        next_cursor = None
        if len(entries) == limit:
            last_version = max((e["version"] for e in entries if e["version"] is not None), default=after_version)
            next_cursor = encode_cursor(last_version, entries[-1]["position"])
        return {"subject": subject.name, "workspace_id": subject.workspace_id, "aggregate_id": str(subject.aggregate_id),
                "entries": entries, "next_cursor": next_cursor}

    def version_at(self, conn: Connection, subject: Subject, at: datetime) -> int:
        """The last version recorded at or before ``at``: a binary search over the stream's versions,
        one indexed read per step, so it costs log(length) however long the stream is."""
        self._check_owner(conn, subject)
        latest = conn.execute(f"SELECT max(originator_version) FROM {self.table} WHERE originator_id = %s",  # noqa: S608
                              (subject.aggregate_id,)).fetchone()[0]
        lo, hi = 0, latest  # invariant: version lo is at or before ``at`` (0: none is), hi + 1 is after it
        while lo < hi:
            mid = (lo + hi + 1) // 2
            [(_, _, state)] = self._stream(conn, subject.aggregate_id, mid - 1, 1)
            if self.decode(state)["timestamp"] <= at:
                lo = mid
            else:
                hi = mid - 1
        if lo == 0:
            raise NotFound(f"{subject.name} did not exist yet at {at.isoformat()}")
        return lo

    def state_at(self, conn: Connection, subject: Subject, version: int) -> dict[str, Any]:
        """The aggregate as it was right after ``version`` (loaded from a snapshot at or below it
        plus the events up to it, so bounded by the snapshot interval)."""
        self._check_owner(conn, subject)
        try:
            aggregate = self.app.repository.get(subject.aggregate_id, version=version)
        except AggregateNotFoundError:
            raise NotFound(f"{subject.name} has no version {version}") from None
        if aggregate.version != version:
            raise NotFound(f"{subject.name} has no version {version}; its latest is {aggregate.version}")
        return {"subject": subject.name, "workspace_id": subject.workspace_id, "version": aggregate.version,
                "modified_at": aggregate.modified_on, "state": state_of(aggregate)}


DERIVED = ("status", "granted", "held", "available")  # properties worth showing beside the fields


def state_of(aggregate: HeraldAggregate) -> dict[str, Any]:
    """The aggregate's own fields (and derived figures such as a post's status or a wallet's
    balance) as JSON: no library bookkeeping, no secrets."""
    fields = {k: v for k, v in vars(aggregate).items() if not k.startswith("_")}
    for name in DERIVED:
        if isinstance(getattr(type(aggregate), name, None), property):
            fields[name] = getattr(aggregate, name)
    return redact(to_jsonable_python(fields, fallback=str))
