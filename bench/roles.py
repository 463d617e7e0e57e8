"""Herald's own roles under load: command handler, outbox relay, queue projection."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from domain.command import CommandRecord
from herald.messaging.consumer import produce_commands
from herald.messaging.relay import cloud_event_attributes, to_record
from herald.runtime.wiring import Herald
from projections import catalogue as read_models
from projections import positions, queue
from schemas import commands as cmd

BIG = 1_000_000


@dataclass
class Timed:
    count: int
    seconds: float  # from the first non-empty poll until done
    join_s: float  # from starting the loop until its first non-empty poll (group join etc.)
    events: int = 0  # events stored, where the role stores them

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else float("nan")


def _envelope(payload: cmd.Payload, workspace_id: str, command_id: str) -> cmd.CommandEnvelope:
    return cmd.CommandEnvelope.wrap(payload, command_id=command_id, workspace_id=workspace_id,
                                    issued_by="bench", issued_at=datetime.now(UTC))


def setup_workspaces(herald: Herald, workspaces: int, credits: int) -> dict[str, list[str]]:
    """Open workspaces directly through the application (not timed); returns workspace → account ids."""
    overrides = {"queue_size": BIG, "daily_posts_per_platform": BIG, "accounts_per_platform": 10}
    accounts: dict[str, list[str]] = {}
    for w in range(workspaces):
        ws = f"bench-ws-{w}"
        steps: list[tuple[str, cmd.Payload]] = [
            ("open", cmd.OpenWorkspace(name=ws, tier="business", limit_overrides=overrides)),
            (f"{ws}-acct-a", cmd.ConnectSocialAccount(platform="sandbox", handle=f"{ws}-a")),
            (f"{ws}-acct-b", cmd.ConnectSocialAccount(platform="sandbox", handle=f"{ws}-b")),
            ("grant", cmd.GrantCredits(amount=credits)),
        ]
        for command_id, payload in steps:
            decision = herald.app.handle(_envelope(payload, ws, command_id))
            if not decision.accepted:
                raise RuntimeError(f"setup {ws}/{command_id} rejected: {decision.reason_code} {decision.detail}")
            if "social_account_id" in decision.result:
                accounts.setdefault(ws, []).append(decision.result["social_account_id"])
    return accounts


def schedule_commands(accounts: dict[str, list[str]], total: int) -> list[cmd.CommandEnvelope]:
    workspaces = sorted(accounts)
    return [
        _envelope(cmd.SchedulePost(text=f"bench post {i}", destinations=accounts[ws]), ws, f"bench-post-{i}")
        for i in range(total)
        for ws in [workspaces[i % len(workspaces)]]
    ]


def _first_batch_clock(consumer) -> list[float]:
    """Record when the consumer's poll first returns records (instance-level wrapper, bench only)."""
    seen: list[float] = []
    original = consumer.poll

    def poll(*args, **kwargs):
        batch = original(*args, **kwargs)
        if batch and not seen:
            seen.append(time.perf_counter())
        return batch

    consumer.poll = poll
    return seen


PROFILE_DIR: str | None = None  # set by --profile: loops then run in the calling thread under cProfile


def _drive(name: str, loop, is_done, timeout_s: float) -> tuple[float, float, bool]:
    """Run ``loop(stop)`` until ``is_done()``; returns (started, ended, done)."""
    stop = threading.Event()
    result: dict[str, object] = {"done": False}

    def watch() -> None:
        while time.perf_counter() - result["started"] < timeout_s and not stop.is_set():
            if is_done():
                result["done"] = True
                break
            time.sleep(0.05)
        result["ended"] = time.perf_counter()
        stop.set()

    result["started"] = time.perf_counter()
    if PROFILE_DIR:
        import cProfile

        watcher = threading.Thread(target=watch, name=f"bench-{name}-watch", daemon=True)
        watcher.start()
        profiler = cProfile.Profile()
        profiler.runcall(loop, stop)
        profiler.dump_stats(f"{PROFILE_DIR}/{name}.prof")
        watcher.join()
    else:
        worker = threading.Thread(target=loop, args=(stop,), name=f"bench-{name}", daemon=True)
        worker.start()
        watch()
        worker.join(timeout=30)
    return result["started"], result["ended"], result["done"]


def _count_events(herald: Herald, topic_like: str) -> int:
    with herald.pool.connection() as conn:
        return conn.execute("SELECT count(*) FROM herald_events WHERE topic LIKE %s", (topic_like,)).fetchone()[0]


def command_record_topic_like(herald: Herald) -> str:
    """The LIKE pattern matching stored CommandRecord events (found from the setup's records)."""
    with herald.pool.connection() as conn:
        topics = [t for (t,) in conn.execute("SELECT DISTINCT topic FROM herald_events").fetchall()]
    matching = [t for t in topics if "CommandRecord" in t or "command_record" in t or ".command." in t]
    if not matching:
        raise RuntimeError(f"cannot tell CommandRecord events among topics {topics}")
    prefix = min(matching, key=len)
    # CommandRecord events share a class-qualified prefix: CommandRecord.<Event>
    common = prefix.rsplit(".", 1)[0] if len(matching) == 1 else _common_prefix(matching)
    return common + "%"


def _common_prefix(strings: list[str]) -> str:
    first, last = min(strings), max(strings)
    i = 0
    while i < min(len(first), len(last)) and first[i] == last[i]:
        i += 1
    return first[:i]


def run_handler(herald: Herald, commands: list[cmd.CommandEnvelope], timeout_s: float = 150) -> Timed:
    """Produce the commands, then time CommandHandler until every one is recorded."""
    like = command_record_topic_like(herald)
    before = _count_events(herald, like)
    events_before = max_position(herald)
    produce_commands(herald.producer, herald.settings.commands_topic, commands)
    handler = herald.command_handler()
    first = _first_batch_clock(handler.consumer)
    target = before + len(commands)
    started, ended, done = _drive("handler", handler.run, lambda: _count_events(herald, like) >= target, timeout_s)
    if not done:
        raise RuntimeError(f"handler decided {_count_events(herald, like) - before} of {len(commands)} commands"
                           f" within {timeout_s}s")
    rejected = [c.command_id for c in commands if not _accepted(herald, c)]
    if rejected:
        raise RuntimeError(f"{len(rejected)} commands rejected (setup is wrong), e.g. {rejected[:3]}")
    t_first = first[0] if first else started
    return Timed(len(commands), ended - t_first, t_first - started, events=max_position(herald) - events_before)


def _accepted(herald: Herald, command: cmd.CommandEnvelope) -> bool:
    record = herald.app.find(CommandRecord, CommandRecord.key(command.workspace_id, command.command_id))
    return record is not None and type(record.outcome).__name__ == "CommandAccepted"


def max_position(herald: Herald) -> int:
    return herald.app.recorder.max_notification_id() or 0


def relay_records(herald: Herald) -> list[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    """The records the relay sends for the whole store, built before any timing."""
    notifications = herald.app.recorder.select_notifications(start=None, limit=max_position(herald))
    return [to_record(cloud_event_attributes(herald.app, n)) for n in notifications]


def run_relay(herald: Herald) -> Timed:
    """Time relay_once() from position 0 until the whole event store is on the events topic."""
    relay = herald.relay()
    if relay.position() != 0:
        raise RuntimeError("relay position is not zero")
    total = 0

    def drain() -> None:
        nonlocal total
        while (sent := relay.relay_once()) > 0:
            total += sent

    started = time.perf_counter()
    if PROFILE_DIR:
        import cProfile

        cProfile.runctx("drain()", globals(), {"drain": drain}, f"{PROFILE_DIR}/relay.prof")
    else:
        drain()
    return Timed(total, time.perf_counter() - started, 0.0)


def run_projection(herald: Herald, expected_events: int, timeout_s: float = 150, *,
                   every_read_model: bool = False) -> Timed:
    """Time an EventConsumer applying projections.queue (the figure kept from before), or with
    ``every_read_model`` the projections role's consumer as wired (every read model and the
    per-workspace positions), until its positions reach the last event."""
    name = "bench-read-models" if every_read_model else "bench-projection"

    def handler(conn, event):
        if every_read_model:
            read_models.apply_all(conn, event)
        else:
            queue.apply(conn, event)
        return []

    consumer = herald.event_consumer(name, handler, on_batch=positions.record if every_read_model else None)
    first = _first_batch_clock(consumer.consumer)
    target = max_position(herald)

    def reached() -> tuple[int, int]:
        with herald.pool.connection() as conn:  # a fresh topic: offsets start at 0 in every partition
            row = conn.execute("SELECT max(global_position), sum(kafka_offset + 1) FROM consumer_positions"
                               " WHERE consumer = %s", (name,)).fetchone()
        return row[0] or 0, row[1] or 0

    def is_done() -> bool:
        position, consumed = reached()
        return position >= target and consumed >= expected_events

    started, ended, done = _drive("projection", consumer.run, is_done, timeout_s)
    if not done:
        raise RuntimeError(f"projection reached (position, messages) {reached()} of {(target, expected_events)}"
                           f" within {timeout_s}s")
    t_first = first[0] if first else started
    return Timed(expected_events, ended - t_first, t_first - started)
