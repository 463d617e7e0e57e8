"""Herald's command handling: load the aggregates a command touches, decide, save atomically.

Every command ends in exactly one recorded outcome (accepted with its events, or rejected
with a reason code), saved in the same transaction as the events it caused. A repeated
command id returns that first outcome and changes nothing.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Callable, Iterable, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError
from pydantic import ValidationError

from schemas import commands as cmd
from schemas import events as ev

from domain.base import Context, HeraldAggregate, derived_id
from domain.command import CommandRecord
from domain.post import Post, PublishPolicy, hold_id_for
from domain.rejections import Reason, Rejected
from domain.account import SocialAccount
from domain.wallet import Wallet
from domain.workspace import Workspace

A = TypeVar("A", bound=HeraldAggregate)

# A client clock a little behind ours should not turn "now" into "in the past".
CLOCK_SKEW = timedelta(seconds=60)


@dataclass(frozen=True)
class Decision:
    command_id: str
    command_type: str
    accepted: bool
    reason_code: str | None = None
    detail: str = ""
    result: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, record: CommandRecord) -> Decision:
        outcome = record.outcome
        if isinstance(outcome, ev.CommandAccepted):
            return cls(outcome.command_id, outcome.command_type, True, result=dict(outcome.result))
        assert isinstance(outcome, ev.CommandRejected)
        return cls(outcome.command_id, outcome.command_type, False, outcome.reason_code, outcome.detail)


class _Batch:
    """The aggregates of one batch, each loaded once and shared by its commands.

    A rejected command must leave no trace, but copying every aggregate for every command
    costs more than deciding it. So the batch notes how many pending events each aggregate
    had when the command first touched it, and only for a rejected command that had already
    changed one does it rebuild that aggregate: reloaded from the store, then brought forward
    with the pending events of the commands before.
    """

    def __init__(self, load: Callable[[UUID], Any], absent: set[UUID], warm: dict[UUID, Any]) -> None:
        self.load = load
        self.current: dict[UUID, Any] = {**warm, **dict.fromkeys(absent)}
        self.changed: dict[UUID, HeraldAggregate] = {}
        self.checkpoints: dict[UUID, int] = {}  # pending events before the running command

    def find(self, aggregate_id: UUID) -> Any:
        if aggregate_id not in self.current:
            self.current[aggregate_id] = self.load(aggregate_id)
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
    """Aggregates as the last successful batch saved them, least recently used dropped first."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.entries: dict[UUID, Any] = {}

    def keep(self, aggregates: Iterable[Any]) -> None:
        for aggregate in aggregates:
            self.entries.pop(aggregate.id, None)
            self.entries[aggregate.id] = aggregate
        for aggregate_id in list(itertools.islice(self.entries, max(0, len(self.entries) - self.capacity))):
            del self.entries[aggregate_id]

    def clear(self) -> None:
        self.entries.clear()


class ConflictsPersisted(RuntimeError):
    """Concurrent writers kept changing the same aggregates; the command was not applied."""


class HeraldApplication(Application):
    name = "herald"
    MAX_CONFLICT_RETRIES = 8

    def __init__(
        self,
        env: dict[str, str] | None = None,
        *,
        seal: Callable[[str], str] = lambda token: token,
        policy: PublishPolicy = PublishPolicy(),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        versions: Callable[[list[UUID]], dict[UUID, int]] | None = None,
        warm_aggregates: int = 10_000,
    ) -> None:
        """``versions`` answers, in one query, the current version of those of the given
        aggregate ids that are in the store. With it a batch neither looks up one by one the
        records and posts its commands will create, nor reloads the aggregates the previous
        batches saved (at most ``warm_aggregates`` of them are kept in memory)."""
        super().__init__(env)
        self.versions = versions
        self._local = threading.local()  # the batch being decided, per thread
        self._warm = _Warm(warm_aggregates)
        self._batch_lock = threading.Lock()
        self.seal = seal
        self.policy = policy
        self.clock = clock

    # Commands ------------------------------------------------------------------------

    def handle(self, command: cmd.CommandEnvelope) -> Decision:
        for _ in range(self.MAX_CONFLICT_RETRIES):
            record, changed = self._decide_once(command)
            try:
                if changed:
                    self.save(*changed)
            except IntegrityError:
                continue  # someone else changed one of these aggregates first: decide again
            return Decision.of(record)
        raise ConflictsPersisted(f"command {command.command_id} kept conflicting with concurrent writers")

    def handle_batch(self, commands: list[cmd.CommandEnvelope], *, checkpoint: object = None) -> list[Decision]:
        """Decide commands in order against aggregates loaded once, and save them all in one
        transaction, with ``checkpoint`` (for the recorder: e.g. the consumer's position).
        If another writer got there first, fall back to one command at a time.

        Aggregates a batch saved stay warm for the next one. Before use each is checked, in the
        same query as the absent ids, to be still at the version it was saved at, so a batch
        decides on what a fresh load at its start would have read; a change after that fails
        the save on its version, and the batch is decided again from the store."""
        with self._batch_lock:
            try:
                return self._handle_batch(commands, checkpoint)
            except BaseException:
                self._warm.clear()  # they may hold this batch's unsaved changes
                raise

    def _handle_batch(self, commands: list[cmd.CommandEnvelope], checkpoint: object) -> list[Decision]:
        batch = self._local.batch = _Batch(self._load, *self._known_state(commands))
        try:
            decisions = []
            for command in commands:
                record, changed = self._decide_once(command)
                if isinstance(record.outcome, ev.CommandRejected) and changed:
                    batch.undo()
                batch.keep(changed)
                decisions.append(Decision.of(record))
        finally:
            self._local.batch = None
        try:
            if batch.changed or checkpoint is not None:
                self.save(*batch.changed.values(), checkpoint=checkpoint)
        except IntegrityError:
            self._warm.clear()
            decisions = [self.handle(command) for command in commands]
            self.save(checkpoint=checkpoint)
            return decisions
        self._warm.keep(a for a in batch.current.values() if a is not None)
        return decisions

    def _known_state(self, commands: list[cmd.CommandEnvelope]) -> tuple[set[UUID], dict[UUID, Any]]:
        """The ids of the aggregates the commands would create that do not exist yet, and the
        warm aggregates they would touch that are still current (a stale one is read afresh)."""
        if self.versions is None:
            return set(), {}
        created = [CommandRecord.aggregate_id(CommandRecord.key(c.workspace_id, c.command_id)) for c in commands]
        created += [Post.aggregate_id(c.payload.get("post_id") or derived_id("post", c.command_id))
                    for c in commands if c.type == "schedule_post.v1"]
        touched = {Workspace.aggregate_id(c.workspace_id) for c in commands}
        touched |= {Wallet.aggregate_id(c.workspace_id) for c in commands}
        for c in commands:
            if isinstance(post_id := c.payload.get("post_id"), str):
                touched.add(Post.aggregate_id(post_id))
            if isinstance(destinations := c.payload.get("destinations"), list):
                touched |= {SocialAccount.aggregate_id(d) for d in destinations if isinstance(d, str)}
        warm = [i for i in touched if i in self._warm.entries]
        current = self.versions(created + warm)
        fresh = {i: self._warm.entries[i] for i in warm if current.get(i) == self._warm.entries[i].version}
        return set(created) - current.keys(), fresh

    def _decide_once(self, command: cmd.CommandEnvelope) -> tuple[CommandRecord, list[HeraldAggregate]]:
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
            changed, result = self._decide(ctx, command)
            record = CommandRecord.accepted(ctx, command.type, result)
        except Rejected as rejection:
            changed = []
            record = CommandRecord.rejected(ctx, command.type, rejection.reason, rejection.detail)
        return record, [record, *changed]

    def _decide(self, ctx: Context, command: cmd.CommandEnvelope) -> tuple[list[HeraldAggregate], dict[str, Any]]:
        if command.type not in cmd.COMMAND_TYPES:
            raise Rejected(Reason.unknown_command_type, f"unknown command type {command.type!r}")
        try:
            payload = command.parsed_payload()
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'payload'}: {e['msg']}" for e in error.errors())
            raise Rejected(Reason.invalid_payload, problems) from None
        decide = getattr(self, f"_{type(payload).__name__}")
        return decide(ctx, payload)

    def _OpenWorkspace(self, ctx: Context, p: cmd.OpenWorkspace) -> tuple[list[HeraldAggregate], dict[str, Any]]:
        if self.find(Workspace, ctx.workspace_id) is not None:
            raise Rejected(Reason.workspace_exists, f"workspace {ctx.workspace_id} is already open")
        workspace = Workspace.open(ctx, p.name, p.tier, p.timezone, dict(p.limit_overrides))
        return [workspace, Wallet.open(ctx)], {"workspace_id": ctx.workspace_id}

    def _ConnectSocialAccount(self, ctx: Context, p: cmd.ConnectSocialAccount) -> tuple[list[HeraldAggregate], dict[str, Any]]:
        workspace = self._workspace(ctx)
        account_id = p.social_account_id or derived_id("social_account", ctx.command_id)
        if self.find(SocialAccount, account_id) is not None:
            raise Rejected(Reason.account_exists, f"social account {account_id} is already connected")
        workspace.link_account(ctx, account_id, p.platform)
        instance_url = str(p.instance_url).rstrip("/") if p.instance_url else None
        account = SocialAccount.connect(ctx, account_id, p.platform, p.handle, instance_url, self.seal(p.access_token))
        return [workspace, account], {"social_account_id": account_id}

    def _GrantCredits(self, ctx: Context, p: cmd.GrantCredits) -> tuple[list[HeraldAggregate], dict[str, Any]]:
        self._workspace(ctx)
        wallet = self._wallet(ctx)
        grant_id = p.grant_id or derived_id("grant", ctx.command_id)
        wallet.grant(ctx, grant_id, p.amount, p.source, p.expires_at)
        return [wallet], {"grant_id": grant_id, "available": wallet.available}

    def _SchedulePost(self, ctx: Context, p: cmd.SchedulePost) -> tuple[list[HeraldAggregate], dict[str, Any]]:
        workspace = self._workspace(ctx)
        post_id = p.post_id or derived_id("post", ctx.command_id)  # as _known_state() predicts it
        if self.find(Post, post_id) is not None:
            raise Rejected(Reason.post_exists, f"post {post_id} already exists")
        publish_at = p.publish_at or ctx.now
        if publish_at < ctx.now - CLOCK_SKEW:
            raise Rejected(Reason.publish_at_in_past, f"publish_at {publish_at.isoformat()} is in the past")
        destinations = []
        for account_id in p.destinations:
            account = self.find(SocialAccount, account_id) if account_id in workspace.accounts else None
            if account is None:
                raise Rejected(Reason.unknown_social_account, f"no social account {account_id} in this workspace")
            destinations.append(
                ev.Destination(
                    destination_id=account_id,
                    social_account_id=account_id,
                    platform=account.platform,
                    handle=account.handle,
                    text=p.destination_text.get(account_id, p.text),
                    hold_id=hold_id_for(post_id, account_id),
                )
            )
        workspace.enqueue_post(ctx, post_id)
        wallet = self._wallet(ctx)
        for dest in destinations:
            wallet.place_hold(ctx, dest.hold_id, post_id, dest.destination_id)
        post = Post.schedule(ctx, post_id, p.text, [str(u) for u in p.media_urls], publish_at, destinations)
        return [workspace, wallet, post], {"post_id": post_id, "publish_at": publish_at.isoformat()}

    def _CancelPost(self, ctx: Context, p: cmd.CancelPost) -> tuple[list[HeraldAggregate], dict[str, Any]]:
        post = self._post(ctx, p.post_id)
        post.cancel(ctx, p.reason)
        return [post, *self._dequeue_if_settled(ctx, post)], {"post_id": p.post_id, "status": post.status}

    def _StartPublishAttempt(self, ctx: Context, p: cmd.StartPublishAttempt) -> tuple[list[HeraldAggregate], dict[str, Any]]:
        post = self._post(ctx, p.post_id)
        dest = post.destination(p.destination_id)
        account = self.find(SocialAccount, dest.social_account_id)
        if account is None:
            raise Rejected(Reason.unknown_social_account, f"social account {dest.social_account_id} is gone")
        connected = ev.SocialAccountConnected(
            social_account_id=account.social_account_id,
            platform=account.platform,
            handle=account.handle,
            instance_url=account.instance_url,
            sealed_token=account.sealed_token,
        )
        post.start_attempt(ctx, p.destination_id, p.attempt, connected, self.policy)
        result = {"post_id": p.post_id, "destination_id": p.destination_id, "status": dest.status}
        return [post, *self._dequeue_if_settled(ctx, post)], result

    def _RecordPublishOutcome(self, ctx: Context, p: cmd.RecordPublishOutcome) -> tuple[list[HeraldAggregate], dict[str, Any]]:
        post = self._post(ctx, p.post_id)
        post.record_outcome(ctx, p, self.policy)
        result = {"post_id": p.post_id, "destination_id": p.destination_id, "status": post.destination(p.destination_id).status}
        return [post, *self._dequeue_if_settled(ctx, post)], result

    def _ConsumeHold(self, ctx: Context, p: cmd.ConsumeHold) -> tuple[list[HeraldAggregate], dict[str, Any]]:
        wallet = self._wallet(ctx)
        wallet.consume(ctx, p.hold_id)
        return [wallet], {"hold_id": p.hold_id, "available": wallet.available}

    def _ReleaseHold(self, ctx: Context, p: cmd.ReleaseHold) -> tuple[list[HeraldAggregate], dict[str, Any]]:
        wallet = self._wallet(ctx)
        wallet.release(ctx, p.hold_id, p.reason)
        return [wallet], {"hold_id": p.hold_id, "available": wallet.available}

    # Loading -------------------------------------------------------------------------

    def find(self, kind: type[A], herald_id: str) -> A | None:
        aggregate_id = kind.aggregate_id(herald_id)
        batch: _Batch | None = getattr(self._local, "batch", None)
        if batch is not None:
            return batch.find(aggregate_id)
        return self._load(aggregate_id)

    def _load(self, aggregate_id: UUID) -> Any:
        try:
            return self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None

    def find_in_workspace(self, kind: type[A], herald_id: str, workspace_id: str) -> A | None:
        """The aggregate, if it exists and belongs to the workspace (others' are invisible)."""
        found = self.find(kind, herald_id)
        return found if found is not None and found.workspace_id == workspace_id else None

    def _workspace(self, ctx: Context) -> Workspace:
        workspace = self.find(Workspace, ctx.workspace_id)
        if workspace is None:
            raise Rejected(Reason.unknown_workspace, f"no workspace {ctx.workspace_id}")
        return workspace

    def _wallet(self, ctx: Context) -> Wallet:
        wallet = self.find(Wallet, ctx.workspace_id)
        if wallet is None:
            raise Rejected(Reason.unknown_workspace, f"no workspace {ctx.workspace_id}")
        return wallet

    def _post(self, ctx: Context, post_id: str) -> Post:
        post = self.find_in_workspace(Post, post_id, ctx.workspace_id)
        if post is None:
            raise Rejected(Reason.unknown_post, f"no post {post_id} in this workspace")
        return post

    def _dequeue_if_settled(self, ctx: Context, post: Post) -> list[HeraldAggregate]:
        if not post.settled:
            return []
        workspace = self._workspace(ctx)
        workspace.dequeue_post(ctx, post.post_id)
        return [workspace]
