"""The publishing engine: calls the platforms at the due time, many at once, outside any
database transaction.

The publisher consumer journals each started attempt as ``scheduled`` (processors/publishing/
publisher.py). This engine, one loop per process:

1. claims scheduled attempts due within ``lead_s`` and holds them in memory, in due order;
2. at each attempt's due time, if its account and platform have room (calls in flight, rate
   budgets, waits the platform asked for: ``limits.py``), marks it ``in_flight`` — committed —
   and hands the call to a worker thread;
3. as calls end, frees their slots at once and hands them to a reporter thread, which stores
   their outcomes (``done``), produces the outcome commands to the domain and marks them
   ``reported``, a batch at a time: the loop that starts calls never waits on the database or
   the broker for calls that ended;
4. every few seconds renews its leases, and takes over what a dead engine left: attempts it
   claimed go back to the schedule, attempts it had in flight are reconciled with the platform
   (it may have posted), outcomes it had not reported are reported; unknown outcomes are
   re-checked with the platform on a schedule, then left to an admin.

The journal makes it exactly once: a call is only made for a row this engine moved to
``in_flight``, and a row found in flight is never called blindly again.
"""

from __future__ import annotations

import heapq
import logging
import queue
import threading
import time
import uuid
from collections import defaultdict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterable

from kafka import KafkaProducer
from psycopg_pool import ConnectionPool

from herald.messaging.consumer import produce_commands
from herald.runtime import metrics
from processors.accounts.credentials import Credentials, CredentialsError
from processors.commands import command_for
from processors.platforms.base import (
    AccountCredentials,
    AdapterRegistry,
    ErrorKind,
    PublishError,
    PublishRequest,
    PublishResult,
    UnknownPlatform,
)
from processors.publishing import journal
from processors.publishing.journal import Entry
from processors.publishing.limits import Limits, Slot
from domain.base import derived_id
from schemas.commands import (
    CommandEnvelope,
    Outcome,
    Payload,
    RecordPublishOutcome,
    Resolution,
    ResolvePublishOutcome,
)

log = logging.getLogger(__name__)

# When the platform says 429 without saying how long to wait.
DEFAULT_THROTTLE_S = 60.0
# Re-checks of an unknown outcome, after it was reported; then it waits for an admin. Mastodon
# keeps idempotency keys for an hour, so every re-check falls inside that.
RECHECKS_S = (60.0, 300.0, 900.0)


@dataclass(frozen=True)
class EngineSettings:
    lead_s: float = 2.0
    lease_s: float = 15.0
    max_in_flight: int = 200
    per_account: int = 4
    per_platform: int = 100
    max_held: int = 20_000
    tick_s: float = 0.02
    load_every_s: float = 0.1
    maintain_every_s: float = 5.0
    budget_share: float = 1.0
    rechecks_s: tuple[float, ...] = RECHECKS_S


@dataclass
class _Done:
    entry: Entry
    slot: Slot | None
    payload: Payload
    throttle_until: float | None = None  # monotonic


class PublishEngine:
    def __init__(self, *, pool: ConnectionPool, producer: KafkaProducer, commands_topic: str,
                 adapters: AdapterRegistry, credentials: Credentials | None, settings: EngineSettings,
                 name: str = "publish-engine", clock: Callable[[], float] = time.time) -> None:
        self.pool, self.producer, self.commands_topic = pool, producer, commands_topic
        self.adapters, self.credentials, self.s, self.name, self.clock = adapters, credentials, settings, name, clock
        self.owner = f"{name}-{uuid.uuid4().hex[:12]}"
        budgets = {p: tuple(getattr(adapters.get(p), "rate_budgets", ())) for p in adapters.platforms()}
        self.limits = Limits(per_account=settings.per_account, per_platform=settings.per_platform,
                             budgets=budgets, budget_share=settings.budget_share)
        self.held: dict[str, Entry] = {}
        self.due: list[tuple[float, int, str]] = []  # (epoch time it may go, seq, attempt key)
        self.blocked: dict[str, deque[str]] = defaultdict(deque)  # account → keys waiting for a free call slot
        self.results: queue.SimpleQueue[_Done] = queue.SimpleQueue()  # calls that ended (workers → loop)
        self.reporter = _Reporter(self)
        self.wake = threading.Event()
        self.workers = ThreadPoolExecutor(max_workers=settings.max_in_flight, thread_name_prefix="publish-call")
        self.in_flight = 0
        self._seq = 0
        self._next_load = 0.0
        self._next_maintain = 0.0

    # The loop ------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        from herald.runtime.ticker import Backoff

        backoff = Backoff()
        reporting = threading.Thread(target=self.reporter.run, name=f"{self.name}-reporter", daemon=True)
        reporting.start()
        try:
            while not stop.is_set():
                try:
                    self.step()
                except Exception as error:  # noqa: BLE001 - database or broker away: wait, go on
                    metrics.FAILURES.labels(self.name).inc()
                    delay = backoff.next()
                    log.warning("%s: step failed (%s: %s); next try in %.1fs", self.name, type(error).__name__,
                                error, delay)
                    stop.wait(delay)
                    continue
                backoff.reset()
                metrics.beat(self.name)
                self.wake.wait(self._sleep_s())
                self.wake.clear()
        finally:
            self.close()
            reporting.join(timeout=30)

    def step(self) -> None:
        now = self.clock()
        if now >= self._next_maintain:
            self._maintain()
            self._next_maintain = now + self.s.maintain_every_s
        if now >= self._next_load:
            self._load()
            self._next_load = now + self.s.load_every_s
        self._collect()
        self._start_due()

    def close(self) -> None:
        """Let calls in flight end and report them; give back what was claimed but not called."""
        self.workers.shutdown(wait=True)
        self._collect()
        self.reporter.close()
        try:
            waiting = [key for key, entry in self.held.items() if entry.state == "claimed"]
            if waiting:
                with self.pool.connection() as conn:
                    journal.release(conn, self.owner, waiting)
        except Exception:  # noqa: BLE001 - stopping anyway; leases run out and another engine takes over
            log.warning("%s: could not hand back on close; leases will run out", self.name, exc_info=True)

    def _sleep_s(self) -> float:
        if not self.due:
            return self.s.tick_s * 5
        return min(self.s.tick_s * 5, max(0.0, self.due[0][0] - self.clock()))

    # Taking work ---------------------------------------------------------------------------

    def _load(self) -> None:
        room = self.s.max_held - len(self.held)
        with self.pool.connection() as conn:
            entries = journal.claim_due(conn, self.owner, lead_s=self.s.lead_s, lease_s=self.s.lease_s, limit=room)
        for entry in entries:
            self._hold(entry, entry.not_before)

    def _maintain(self) -> None:
        with self.pool.connection() as conn:
            journal.renew(conn, self.owner, self._kept_keys(), self.s.lease_s)
            lost = journal.claim_lost(conn, self.owner, lease_s=self.s.lease_s, limit=max(0, self.s.max_held - len(self.held)))
        self.limits.forget_expired(time.monotonic())
        for entry in lost:
            if entry.state == "done":  # its outcome is stored; only the report is missing
                self.reporter.stored(entry, _payload_from(entry))
            else:
                self._hold(entry, 0.0)

    def _hold(self, entry: Entry, at: float) -> None:
        if entry.attempt_key in self.held:
            return
        self.held[entry.attempt_key] = entry
        self._push(entry.attempt_key, at)

    def _push(self, key: str, at: float) -> None:
        self._seq += 1
        heapq.heappush(self.due, (at, self._seq, key))

    # Calling -------------------------------------------------------------------------------

    def _start_due(self) -> None:
        now, mono = self.clock(), time.monotonic()
        ready: list[tuple[Entry, Slot]] = []
        # Those that waited for a free call slot go first. Waiting is per account, so one busy
        # account never holds up the others.
        for account in list(self.blocked):
            keys = self.blocked[account]
            while keys:
                entry = self.held[keys[0]]
                slot = _slot(entry)
                wait = self.limits.wait_s(slot, mono)
                if wait is None:
                    break
                keys.popleft()
                if wait > 0:
                    self._push(entry.attempt_key, now + wait)
                    continue
                self.limits.take(slot, mono)
                ready.append((entry, slot))
            if not keys:
                del self.blocked[account]
        while self.due and self.due[0][0] <= now:
            _, _, key = heapq.heappop(self.due)
            entry = self.held[key]
            slot = _slot(entry)
            wait = self.limits.wait_s(slot, mono)
            if wait is None:
                self.blocked[slot.account].append(key)
            elif wait > 0:
                self._push(key, now + wait)
            else:
                self.limits.take(slot, mono)
                ready.append((entry, slot))
        if not ready:
            return
        fresh = [entry.attempt_key for entry, _ in ready if entry.state == "claimed"]
        try:
            with self.pool.connection() as conn:
                ours = journal.mark_in_flight(conn, self.owner, fresh, self.s.lease_s)
        except Exception:
            for entry, slot in ready:  # nothing was called: they go again at the next step
                self.limits.release(slot)
                self._push(entry.attempt_key, now)
            raise
        for entry, slot in ready:
            if entry.state == "claimed" and entry.attempt_key not in ours:
                self.limits.release(slot)  # another engine took it over: not ours to call
                del self.held[entry.attempt_key]
                continue
            mode = "publish" if entry.state == "claimed" else "recheck" if entry.state == "unresolved" else "reconcile"
            entry.state = "in_flight" if mode != "recheck" else entry.state
            self.in_flight += 1
            metrics.IN_FLIGHT.labels(self.name).set(self.in_flight)
            self.workers.submit(self._call, entry, slot, mode)

    def _call(self, entry: Entry, slot: Slot, mode: str) -> None:
        """On a worker thread: one platform call (or reconciliation), never raising."""
        try:
            done = _Done(entry, slot, self._outcome(entry, mode))
        except Exception as error:  # noqa: BLE001 - an adapter bug must not lose the attempt
            log.exception("attempt %s: the %s adapter failed unexpectedly", entry.attempt_key, entry.platform)
            done = _Done(entry, slot, _record(entry, Outcome.unknown, error_kind=str(ErrorKind.unknown),
                                              detail=f"adapter error {type(error).__name__}: {error}"[:2000]))
        if isinstance(done.payload, RecordPublishOutcome) and done.payload.outcome is Outcome.throttled:
            done.throttle_until = time.monotonic() + (done.payload.retry_after_s or DEFAULT_THROTTLE_S)
        self.results.put(done)
        self.wake.set()

    def _outcome(self, entry: Entry, mode: str, retried: bool = False) -> Payload:
        try:
            adapter = self.adapters.get(entry.platform)
        except UnknownPlatform as error:
            return _record(entry, Outcome.failed, error_kind=str(ErrorKind.permanent), detail=str(error))
        try:
            request = self._request(entry)
        except CredentialsError as error:  # needs reconnecting (skipped), or the token endpoint is away (retry)
            outcome = Outcome.unknown if mode == "recheck" else error.outcome
            return _record(entry, outcome, error_kind=error.error_kind, detail=error.detail)
        except Exception as error:  # noqa: BLE001 - a token that cannot be unsealed will not unseal later
            return _record(entry, Outcome.failed, error_kind=str(ErrorKind.permanent),
                           detail=f"the account's token cannot be unsealed ({type(error).__name__})")
        if mode == "recheck":
            return _recheck(entry, adapter.reconcile, request)
        try:
            if mode == "reconcile":
                found = adapter.reconcile(request)
                if found is not None:
                    return _published(entry, found)
                log.info("attempt %s: the platform provably has no post; publishing", entry.attempt_key)
            return _published(entry, adapter.publish(request))
        except PublishError as error:
            if error.status_code == 401 and not retried and self.credentials is not None:
                # Refused token: refresh it (unless another call already did) and try once more.
                try:
                    self._request(entry, refused=request.account.access_token)
                except CredentialsError as failed:
                    return _record(entry, failed.outcome, error_kind=failed.error_kind, status_code=401,
                                   detail=failed.detail)  # a skip's detail is its reason
                return self._outcome(entry, mode, retried=True)
            if error.kind is ErrorKind.unknown or (mode == "reconcile" and error.kind in _RETRYABLE):
                return _after_unknown(entry, adapter.reconcile, request, error)
            return _from_error(entry, error)

    def _request(self, entry: Entry, refused: str | None = None) -> PublishRequest:
        # Credentials are read from the store at call time (fresh, refreshed if they expire soon
        # or were just ``refused``); nothing secret is journaled.
        if self.credentials is not None:
            account = self.credentials.for_call(account_id=entry.account_id, workspace_id=entry.workspace_id,
                                                platform=entry.platform, handle=entry.handle,
                                                instance_url=entry.instance_url, refused=refused,
                                                settings=entry.account_settings)
        else:
            account = AccountCredentials(account_id=entry.account_id, platform=entry.platform, handle=entry.handle,
                                         access_token="", instance_url=entry.instance_url,
                                         settings=entry.account_settings)
        # The platform's idempotency key is per destination, not per attempt: a retry after a
        # timeout (the platform may have posted) then returns the earlier post instead of a second one.
        return PublishRequest(attempt_key=derived_id("publish", entry.post_id, entry.destination_id),
                              account=account, text=entry.text, media_urls=entry.media_urls)

    # Reporting -----------------------------------------------------------------------------

    def _collect(self) -> None:
        """Free the slots of the calls that ended and hand them to the reporter."""
        while True:
            try:
                done = self.results.get_nowait()
            except queue.Empty:
                break
            self.in_flight -= 1
            if done.slot is not None:
                self.limits.release(done.slot)
                if done.throttle_until is not None:
                    self.limits.throttle(done.slot, done.throttle_until)
                done.slot = None
            self.held.pop(done.entry.attempt_key, None)
            self.reporter.ended(done)
        metrics.IN_FLIGHT.labels(self.name).set(self.in_flight)

    def _kept_keys(self) -> list[str]:
        """The rows this engine holds: only their leases are renewed, so a row it lost track of
        runs out and is taken over (and reconciled) instead of being renewed forever."""
        return [*self.held, *self.reporter.keys()]


class _Reporter:
    """Stores the outcomes of ended calls and reports them to the domain, on a thread of its own.
    A failure keeps them for the next try (their rows stay the engine's and leased, so nobody
    else reconciles a call whose outcome it holds)."""

    def __init__(self, engine: PublishEngine) -> None:
        self.engine = engine
        self.incoming: queue.SimpleQueue[_Done | tuple[Entry, Payload]] = queue.SimpleQueue()
        self.finished: list[_Done] = []  # outcome not yet stored
        self.unreported: list[tuple[Entry, Payload]] = []  # stored, not yet produced
        self._keys: set[str] = set()
        self._lock = threading.Lock()
        self._closing = threading.Event()

    def ended(self, done: _Done) -> None:
        self._take(done.entry.attempt_key, done)

    def stored(self, entry: Entry, payload: Payload) -> None:
        self._take(entry.attempt_key, (entry, payload))

    def _take(self, key: str, item: _Done | tuple[Entry, Payload]) -> None:
        with self._lock:
            self._keys.add(key)
        self.incoming.put(item)

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._keys)

    def close(self) -> None:
        """Report what is left, then stop (``run`` returns once it is all reported or cannot be)."""
        self._closing.set()

    def run(self) -> None:
        from herald.runtime.ticker import Backoff

        backoff = Backoff()
        while True:
            self._drain(wait_s=0.05)
            if not (self.finished or self.unreported):
                if self._closing.is_set() and self.incoming.empty():
                    return
                continue
            try:
                self._store_and_report()
            except Exception as error:  # noqa: BLE001 - database or broker away: keep them, try again
                metrics.FAILURES.labels(self.engine.name).inc()
                if self._closing.is_set():
                    log.warning("%s: could not report on close (%s); leases will run out", self.engine.name, error)
                    return
                delay = backoff.next()
                log.warning("%s: reporting failed (%s: %s); next try in %.1fs", self.engine.name,
                            type(error).__name__, error, delay)
                time.sleep(delay)
                continue
            backoff.reset()

    def _drain(self, wait_s: float) -> None:
        try:
            item = self.incoming.get(timeout=wait_s)
        except queue.Empty:
            return
        while True:
            if isinstance(item, _Done):
                self.finished.append(item)
            else:
                self.unreported.append(item)
            try:
                item = self.incoming.get_nowait()
            except queue.Empty:
                return

    def _store_and_report(self) -> None:
        engine = self.engine
        if self.finished:
            with engine.pool.connection() as conn:
                ours = journal.finish(conn, engine.owner, [(d.entry.attempt_key, d.payload) for d in self.finished])
            finished, self.finished = self.finished, []
            self.unreported.extend((d.entry, d.payload) for d in finished if d.entry.attempt_key in ours)
            self._forget(d.entry.attempt_key for d in finished if d.entry.attempt_key not in ours)
        if self.unreported:
            self._report(self.unreported)
            reported, self.unreported = self.unreported, []
            self._forget(e.attempt_key for e, _ in reported)

    def _forget(self, keys: Iterable[str]) -> None:
        with self._lock:
            self._keys.difference_update(keys)

    def _report(self, outcomes: list[tuple[Entry, Payload]]) -> None:
        engine = self.engine
        commands: list[CommandEnvelope | None] = []
        unresolved: dict[str, float] = {}
        for entry, payload in outcomes:
            commands.append(_command(entry, payload))
            if _is_unknown(payload):
                if entry.checks < len(engine.s.rechecks_s):
                    unresolved[entry.attempt_key] = engine.s.rechecks_s[entry.checks]
        produce_commands(engine.producer, engine.commands_topic, [c for c in commands if c is not None])
        metrics.PUBLISH_OUTCOMES.labels(engine.name).inc(len(outcomes))
        with engine.pool.connection() as conn:
            journal.reported(conn, [e.attempt_key for e, _ in outcomes], unresolved)


# Outcomes -----------------------------------------------------------------------------------

_RETRYABLE = frozenset({ErrorKind.rate_limited, ErrorKind.transient})


def _slot(entry: Entry) -> Slot:
    return Slot(account=f"{entry.platform}:{entry.account_id}", platform=entry.platform)


def _record(entry: Entry, outcome: Outcome, **fields: object) -> RecordPublishOutcome:
    return RecordPublishOutcome(post_id=entry.post_id, destination_id=entry.destination_id, attempt=entry.attempt,
                                outcome=outcome, **fields)


def _published(entry: Entry, result: PublishResult) -> RecordPublishOutcome:
    return _record(entry, Outcome.published, platform_post_id=result.platform_post_id, url=result.url)


def _from_error(entry: Entry, error: PublishError) -> RecordPublishOutcome:
    kind = {ErrorKind.rate_limited: Outcome.throttled, ErrorKind.transient: Outcome.retry}.get(error.kind, Outcome.failed)
    retry_after = error.retry_after_s
    if kind is Outcome.throttled and retry_after is None:
        retry_after = DEFAULT_THROTTLE_S
    return _record(entry, kind, error_kind=str(error.kind), detail=error.detail[:2000],
                   retry_after_s=retry_after, status_code=error.status_code)


def _after_unknown(entry: Entry, reconcile: Callable[[PublishRequest], PublishResult | None],
                   request: PublishRequest, cause: PublishError) -> RecordPublishOutcome:
    """The call may have reached the platform: look before anything else."""
    try:
        found = reconcile(request)
    except PublishError as error:
        return _record(entry, Outcome.unknown, error_kind=str(ErrorKind.unknown), status_code=cause.status_code,
                       detail=f"{cause.detail} — and the platform could not tell: {error.detail}"[:2000])
    if found is not None:
        return _published(entry, found)
    return _record(entry, Outcome.retry, error_kind=str(cause.kind), status_code=cause.status_code,
                   detail=f"{cause.detail} (the platform has no post: safe to retry)"[:2000])


def _recheck(entry: Entry, reconcile: Callable[[PublishRequest], PublishResult | None],
             request: PublishRequest) -> Payload:
    common = {"post_id": entry.post_id, "destination_id": entry.destination_id, "attempt": entry.attempt}
    try:
        found = reconcile(request)
    except PublishError as error:
        return _record(entry, Outcome.unknown, error_kind=str(ErrorKind.unknown),
                       detail=f"re-check {entry.checks}: the platform could not tell: {error.detail}"[:2000])
    if found is None:
        return ResolvePublishOutcome(**common, resolution=Resolution.not_published,
                                     note="the platform has no such post")
    return ResolvePublishOutcome(**common, resolution=Resolution.published, platform_post_id=found.platform_post_id,
                                 url=found.url)


def _is_unknown(payload: Payload) -> bool:
    return isinstance(payload, RecordPublishOutcome) and payload.outcome is Outcome.unknown


def _command(entry: Entry, payload: Payload) -> CommandEnvelope | None:
    if isinstance(payload, RecordPublishOutcome):
        if payload.outcome is Outcome.unknown and entry.state == "unresolved":
            return None  # a re-check that could not tell: the domain already knows it is unknown
        parts: tuple[object, ...] = ("outcome", entry.attempt_key)
    else:
        parts = ("resolve", entry.attempt_key)
    cmd = command_for(payload, workspace_id=entry.workspace_id, id_parts=parts, issued_by="publisher")
    if entry.correlation_id:
        cmd = cmd.model_copy(update={"correlation_id": entry.correlation_id})
    return cmd


def _payload_from(entry: Entry) -> Payload:
    stored = dict(entry.outcome or {})
    kind = stored.pop("type", "RecordPublishOutcome")
    model = ResolvePublishOutcome if kind == "ResolvePublishOutcome" else RecordPublishOutcome
    return model.model_validate(stored)
