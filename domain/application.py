"""Herald's command handling: load the aggregates a command touches, decide, save atomically.

Every command ends in exactly one recorded outcome (accepted with its events, or rejected
with a reason code), saved in the same transaction as the events it caused. A repeated
command id returns that first outcome and changes nothing.

Commands on one workspace are decided one batch at a time (``serialise``, plus lock stripes
inside the process), so concurrent clients and processors queue instead of conflicting; a
conflict that still happens (another writer that does not take the lock) is decided again
here, never handed to the client. Deciding loads bounded state: aggregates a batch saved stay
warm, checked current in one query; cold ones load from a snapshot plus at most a
snapshot interval of events.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import random
import threading
import time
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Callable, ContextManager, Iterable, Iterator, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.persistence import IntegrityError, JSONTranscoder, Transcoding
from pydantic import ValidationError

from schemas import commands as cmd
from schemas import events as ev

from domain.account import SocialAccount
from domain.account.handlers import account_id_for
from domain.base import Context, HeraldAggregate
from domain.command import CommandRecord
from domain.command.subjects import subjects_of
from domain.post import Post, PublishPolicy
from domain.post.handlers import post_id_for
from domain.registry import assert_complete, handler_for
from domain.rejections import Reason, Rejected, TierLimitReached
from domain.wallet import Grant, Hold, Wallet
from domain.wallet.grant_claim import GrantClaim
from domain.wallet.handlers import grant_id_for
from domain.workspace import Workspace
from domain.workspace import handlers as _workspace_handlers  # noqa: F401 - registers them
from domain.workspace import tier_handlers as _tier_handlers  # noqa: F401 - registers them
from domain.wallet import clock_handlers as _clock_handlers  # noqa: F401 - registers them
from domain.generation import handlers as _generation_handlers  # noqa: F401 - registers them
from domain.post import workflow_handlers as _workflow_handlers  # noqa: F401 - registers them
from domain.planning import handlers as _planning_handlers  # noqa: F401 - registers them
from domain.planning import Series, SlotPlan
from domain.post import edit_handlers as _edit_handlers  # noqa: F401 - registers them
from domain.wallet.aggregate import Period

A = TypeVar("A", bound=HeraldAggregate)

assert_complete()  # the imports above registered every handler

Serialise = Callable[[list[str]], ContextManager[None]]


@dataclass(frozen=True)
class Decision:
    command_id: str
    command_type: str
    accepted: bool
    reason_code: str | None = None
    detail: str = ""
    result: dict[str, Any] = field(default_factory=dict)
    position: int | None = field(default=None, compare=False)  # where the decision landed in the event store
    limit: dict[str, Any] | None = None  # a tier limit's breach: limit, tier, current, allowed

    @classmethod
    def of(cls, record: CommandRecord, position: int | None = None) -> Decision:
        outcome = record.outcome
        if isinstance(outcome, ev.CommandAccepted):
            return cls(outcome.command_id, outcome.command_type, True, result=dict(outcome.result), position=position)
        assert isinstance(outcome, ev.CommandRejected)
        return cls(outcome.command_id, outcome.command_type, False, outcome.reason_code, outcome.detail,
                   position=position, limit=outcome.limit.model_dump() if outcome.limit else None)


class _Batch:
    """The aggregates of one batch, each loaded once and shared by its commands.

    A rejected command must leave no trace, but copying every aggregate for every command
    costs more than deciding it. So the batch notes how many pending events each aggregate
    had when the command first touched it, and only for a rejected command that had already
    changed one does it rebuild that aggregate: reloaded from the store, then brought forward
    with the pending events of the commands before.
    """

    def __init__(self, load: Callable[[UUID], Any], absent: set[UUID], warm: dict[UUID, Any],
                 recall: Callable[[UUID], Any] = lambda _id: None) -> None:
        self.load, self.recall = load, recall
        self.current: dict[UUID, Any] = {**warm, **dict.fromkeys(absent)}
        self.changed: dict[UUID, HeraldAggregate] = {}
        self.checkpoints: dict[UUID, int] = {}  # pending events before the running command

    def find(self, aggregate_id: UUID) -> Any:
        if aggregate_id not in self.current:
            # One the commands did not name (e.g. a post's account): a warm copy still current,
            # else the store.
            recalled = self.recall(aggregate_id)
            self.current[aggregate_id] = recalled if recalled is not None else self.load(aggregate_id)
        aggregate = self.current[aggregate_id]
        if aggregate is not None and aggregate_id not in self.checkpoints:
            self.checkpoints[aggregate_id] = len(aggregate.pending_events)
        return aggregate

    def keep(self, changed: list[HeraldAggregate]) -> None:
        for aggregate in changed:
            self.current[aggregate.id] = self.changed[aggregate.id] = aggregate
        self.checkpoints.clear()

    def undo(self) -> None:
        for aggregate_id, kept_events in self.checkpoints.items():
            aggregate = self.current[aggregate_id]
            if len(aggregate.pending_events) == kept_events:
                continue
            rebuilt = self.load(aggregate_id)  # None when an earlier command of the batch made it
            for event in aggregate.pending_events[:kept_events]:
                rebuilt = event.mutate(rebuilt)
                rebuilt.pending_events.append(event)
            self.current[aggregate_id] = rebuilt
            if aggregate_id in self.changed:
                self.changed[aggregate_id] = rebuilt
        self.checkpoints.clear()


class _Warm:
    """Aggregates as the last successful batch saved them, least recently used dropped first.
    Batches of different workspaces touch different aggregates, so they may run at once;
    the dict itself is guarded."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.entries: dict[UUID, Any] = {}
        self._lock = threading.Lock()

    def get(self, ids: Iterable[UUID]) -> dict[UUID, Any]:
        with self._lock:
            return {i: self.entries[i] for i in ids if i in self.entries}

    def keep(self, aggregates: Iterable[Any]) -> None:
        with self._lock:
            for aggregate in aggregates:
                self.entries.pop(aggregate.id, None)
                self.entries[aggregate.id] = aggregate
            for aggregate_id in list(itertools.islice(self.entries, max(0, len(self.entries) - self.capacity))):
                del self.entries[aggregate_id]

    def drop(self, ids: Iterable[UUID]) -> None:
        with self._lock:
            for aggregate_id in ids:
                self.entries.pop(aggregate_id, None)


class _Stripes:
    """In-process mutual exclusion per workspace, from a fixed set of locks (bounded memory;
    two workspaces sharing a stripe only wait for each other). Taken in index order."""

    def __init__(self, count: int = 1024) -> None:
        self.locks = [threading.Lock() for _ in range(count)]

    @contextlib.contextmanager
    def hold(self, workspace_ids: list[str]) -> Iterator[None]:
        taken = sorted({zlib.crc32(w.encode()) % len(self.locks) for w in workspace_ids})
        with contextlib.ExitStack() as stack:
            for index in taken:
                stack.enter_context(self.locks[index])
            yield


class ConflictsPersisted(RuntimeError):
    """Concurrent writers kept changing the same aggregates; the command was not applied."""


class _DataclassAsDict(Transcoding):
    def __init__(self, kind: type) -> None:
        self.type, self.name = kind, kind.__name__.lower()

    def encode(self, obj: Any) -> Any:
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}

    def decode(self, data: Any) -> Any:
        return self.type(**data)


class _SetAsList(Transcoding):
    type, name = set, "set"

    def encode(self, obj: set[Any]) -> list[Any]:
        return sorted(obj)

    def decode(self, data: list[Any]) -> set[Any]:
        return set(data)


class HeraldApplication(Application):
    name = "herald"
    # Workspace and Wallet streams grow with every post; a snapshot every so many events keeps
    # a cold load to one snapshot plus fewer than that many events. A snapshot holds every
    # waiting post and pending hold (up to the queue limit: 10,000 of them is about 1 MB of
    # JSON), so taking one every 100 events was a third of a busy handler's time; every 1,000
    # a cold load replays at most 1,000 small events (tens of ms), and aggregates in use stay
    # warm anyway. Posts, accounts and command records have short streams of their own.
    snapshotting_intervals = {Workspace: 1000, Wallet: 1000, SlotPlan: 100, Series: 100}
    MAX_CONFLICT_RETRIES = 20

    def __init__(
        self,
        env: dict[str, str] | None = None,
        *,
        policy: PublishPolicy = PublishPolicy(),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        versions: Callable[[list[UUID]], dict[UUID, int]] | None = None,
        serialise: Serialise | None = None,
        recorded_at: Callable[[UUID], int | None] | None = None,
        warm_aggregates: int = 10_000,
    ) -> None:
        """``versions`` answers, in one query, the current version of those of the given
        aggregate ids that are in the store. With it a batch neither looks up one by one the
        records and posts its commands will create, nor reloads the aggregates the previous
        batches saved (at most ``warm_aggregates`` of them are kept in memory).

        ``serialise`` holds the given workspaces for the duration of a decision across
        processes (e.g. PostgreSQL advisory locks); inside this process lock stripes do.

        ``recorded_at`` answers where an aggregate's first event is in the store: a repeated
        command answers with the position of its record, saved after its decision's events."""
        super().__init__(env)
        self.versions = versions
        self.recorded_at = recorded_at
        self.conflicts = 0  # saves that failed on a version and were decided again (the locks keep it at 0)
        self.serialise: Serialise = serialise or (lambda _workspaces: contextlib.nullcontext())
        self._local = threading.local()  # the batch being decided, per thread
        self._warm = _Warm(warm_aggregates)
        self._stripes = _Stripes()
        self.policy = policy
        self.clock = clock

    def _take_snapshots(self, processing_event: ProcessingEvent) -> None:
        """A snapshot of each aggregate whose saved events crossed its interval, taken from the
        aggregate in memory as just saved. (The library's default reads the aggregate back from
        the store first: measured, that was a third of the handler's time on a busy wallet.)"""
        if not self.snapshots:
            return
        due: dict[UUID, Any] = {}
        for event in processing_event.events:
            aggregate = processing_event.aggregates.get(event.originator_id)
            interval = self.snapshotting_intervals.get(type(aggregate)) if aggregate is not None else None
            if interval and event.originator_version % interval == 0:
                due[event.originator_id] = aggregate
        if due:
            self.snapshots.put([getattr(type(a), "Snapshot", self.snapshot_class).take(a) for a in due.values()])

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        # What snapshots of the Workspace and Wallet hold besides JSON types.
        transcoder.register(_DataclassAsDict(Grant))
        transcoder.register(_DataclassAsDict(Hold))
        transcoder.register(_DataclassAsDict(Period))
        transcoder.register(_SetAsList())

    # Commands ------------------------------------------------------------------------

    def handle(self, command: cmd.CommandEnvelope) -> Decision:
        return self.handle_batch([command])[0]

    def handle_batch(self, commands: list[cmd.CommandEnvelope], *, checkpoint: object = None) -> list[Decision]:
        """Decide commands in order against aggregates loaded once, and save them all in one
        transaction, with ``checkpoint`` (for the recorder: e.g. the consumer's position).

        The batch's workspaces are held meanwhile, so no other decision on them interleaves.
        Aggregates a batch saved stay warm for the next one; before use each is checked, in the
        same query as the absent ids, to be still at the version it was saved at. If a save
        still fails on a version (a writer outside these locks), the batch is decided again
        from the store after a short random pause."""
        workspaces = sorted({c.workspace_id for c in commands})
        with self._stripes.hold(workspaces), self.serialise(workspaces):
            for attempt in range(self.MAX_CONFLICT_RETRIES):
                try:
                    return self._handle_batch(commands, checkpoint)
                except IntegrityError:
                    self.conflicts += 1
                    time.sleep(random.uniform(0, 0.005 * 2 ** min(attempt, 6)))
        raise ConflictsPersisted(f"a batch of {len(commands)} command(s) kept conflicting with concurrent writers")

    def _handle_batch(self, commands: list[cmd.CommandEnvelope], checkpoint: object) -> list[Decision]:
        payloads = [_payload_or_none(c) for c in commands]  # parsed once for the whole batch
        batch = self._local.batch = _Batch(self._load, *self._known_state(commands, payloads), recall=self._recall)
        try:
            outcomes = []
            for command, payload in zip(commands, payloads):
                record, changed = self._decide_once(command, payload)
                if isinstance(record.outcome, ev.CommandRejected) and changed:
                    batch.undo()
                batch.keep(changed)
                outcomes.append((record, bool(changed)))
            position = None
            if batch.changed or checkpoint is not None:
                # Records last: a record's position is then at or after every event of its decision,
                # so a repeated command answers with a position that covers its first decision too.
                changed = sorted(batch.changed.values(), key=lambda a: isinstance(a, CommandRecord))
                recordings = self.save(*changed, checkpoint=checkpoint)
                position = max((r.notification.id for r in recordings), default=None)
        except BaseException:
            self._warm.drop(batch.current)  # they may hold this batch's unsaved changes
            raise
        finally:
            self._local.batch = None
        # Command records are written once and looked up by id, never decided on again: keeping
        # them warm would only push out the posts and wallets the next batches decide on.
        self._warm.keep(a for a in batch.current.values() if a is not None and not isinstance(a, CommandRecord))
        return [Decision.of(record, position if new else self._position_of(record)) for record, new in outcomes]

    def _position_of(self, record: CommandRecord) -> int | None:
        return self.recorded_at(record.id) if self.recorded_at is not None else None

    def _known_state(self, commands: list[cmd.CommandEnvelope],
                     payloads: list[cmd.Payload | None]) -> tuple[set[UUID], dict[UUID, Any]]:
        """The ids of the aggregates the commands would create that do not exist yet, and the
        warm aggregates they would touch that are still current (a stale one is read afresh)."""
        if self.versions is None:
            return set(), {}
        created = [CommandRecord.aggregate_id(CommandRecord.key(c.workspace_id, c.command_id)) for c in commands]
        touched = {Workspace.aggregate_id(c.workspace_id) for c in commands}
        touched |= {Wallet.aggregate_id(c.workspace_id) for c in commands}
        for c, payload in zip(commands, payloads):
            match payload:
                case cmd.SchedulePost() | cmd.CreateDraft():
                    created.append(Post.aggregate_id(post_id_for(c.command_id, payload)))
                    touched |= {SocialAccount.aggregate_id(d) for d in payload.destinations}
                case cmd.GrantCredits():
                    created.append(GrantClaim.aggregate_id(GrantClaim.key(c.workspace_id, grant_id_for(c.command_id, payload))))
                case cmd.ConnectSocialAccount():
                    created.append(SocialAccount.aggregate_id(account_id_for(c.command_id, payload)))
                case (cmd.CancelPost() | cmd.StartPublishAttempt() | cmd.RecordPublishOutcome() | cmd.SubmitPost()
                      | cmd.ApprovePost() | cmd.RejectPost() | cmd.EditPost() | cmd.ReschedulePost()
                      | cmd.PublishPostNow()):
                    touched.add(Post.aggregate_id(payload.post_id))
        warm = self._warm.get(touched)
        current = self.versions(created + list(warm))
        fresh = {i: a for i, a in warm.items() if current.get(i) == a.version}
        return set(created) - current.keys(), fresh

    def _decide_once(self, command: cmd.CommandEnvelope,
                     payload: cmd.Payload | None) -> tuple[CommandRecord, list[HeraldAggregate]]:
        """The command's outcome and the aggregates to save (none when it was decided before)."""
        earlier = self.find(CommandRecord, CommandRecord.key(command.workspace_id, command.command_id))
        if earlier is not None:
            return earlier, []
        ctx = Context(
            command_id=command.command_id,
            correlation_id=command.correlation_id or command.command_id,
            workspace_id=command.workspace_id,
            issued_by=command.issued_by,
            now=self.clock(),
        )
        try:
            changed, result = self._decide(ctx, command, payload)
            record = CommandRecord.accepted(ctx, command.type, result, subjects_of(command))
        except Rejected as rejection:
            changed = []
            record = CommandRecord.rejected(ctx, command.type, rejection.reason, rejection.detail,
                                            subjects_of(command, rejection.reason), _breach_of(rejection))
        return record, [record, *changed]

    def _decide(self, ctx: Context, command: cmd.CommandEnvelope,
                payload: cmd.Payload | None) -> tuple[list[HeraldAggregate], dict[str, Any]]:
        if command.type not in cmd.COMMAND_TYPES:
            raise Rejected(Reason.unknown_command_type, f"unknown command type {command.type!r}")
        if payload is None:
            try:
                payload = command.parsed_payload()
            except ValidationError as error:
                problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'payload'}: {e['msg']}" for e in error.errors())
                raise Rejected(Reason.invalid_payload, problems) from None
        return handler_for(payload)(self, ctx, payload)

    # Loading: what handlers use ---------------------------------------------------------

    def find(self, kind: type[A], herald_id: str) -> A | None:
        aggregate_id = kind.aggregate_id(herald_id)
        batch: _Batch | None = getattr(self._local, "batch", None)
        if batch is not None:
            return batch.find(aggregate_id)
        return self._load(aggregate_id)

    def _recall(self, aggregate_id: UUID) -> Any:
        """The warm copy of an aggregate if the store is still at its version (one index probe),
        else None."""
        warm = self._warm.get([aggregate_id]).get(aggregate_id)
        if warm is None or self.versions is None:
            return None
        return warm if self.versions([aggregate_id]).get(aggregate_id) == warm.version else None

    def _load(self, aggregate_id: UUID) -> Any:
        try:
            return self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None

    def find_in_workspace(self, kind: type[A], herald_id: str, workspace_id: str) -> A | None:
        """The aggregate, if it exists and belongs to the workspace (others' are invisible)."""
        found = self.find(kind, herald_id)
        return found if found is not None and found.workspace_id == workspace_id else None

    def workspace(self, ctx: Context) -> Workspace:
        workspace = self.find(Workspace, ctx.workspace_id)
        if workspace is None:
            raise Rejected(Reason.unknown_workspace, f"no workspace {ctx.workspace_id}")
        return workspace

    def wallet(self, ctx: Context) -> Wallet:
        wallet = self.find(Wallet, ctx.workspace_id)
        if wallet is None:
            raise Rejected(Reason.unknown_workspace, f"no workspace {ctx.workspace_id}")
        return wallet

    def post(self, ctx: Context, post_id: str) -> Post:
        post = self.find_in_workspace(Post, post_id, ctx.workspace_id)
        if post is None:
            raise Rejected(Reason.unknown_post, f"no post {post_id} in this workspace")
        return post


def _breach_of(rejection: Rejected) -> ev.LimitBreach | None:
    if isinstance(rejection, TierLimitReached):
        return ev.LimitBreach(limit=rejection.limit, tier=rejection.tier, current=rejection.current,
                              allowed=rejection.allowed)
    return None


def _payload_or_none(command: cmd.CommandEnvelope) -> cmd.Payload | None:
    try:
        return command.parsed_payload()
    except (KeyError, ValidationError):
        return None
