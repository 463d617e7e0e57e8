"""clock: the credit clock expiring 100,000 grants that all fall due in the same minute.

Setup (not timed): a database of its own; workspaces opened and the grants made through the
application in batches, every grant expiring within one minute; the clock's due items written
as the read models write them (one ``credit_clock`` row per grant, copied in: the read-model
path itself is measured by ``throughput``). Then, once the whole minute has passed, timed: the
clock ticker (claims due items, produces ``expire_grant`` commands) and the command handler
(decides them in batches) run together until every command is decided.

``clock_expiries_per_s`` = grants / seconds from the handler's first batch (its consumer-group
join is left out) until the last decision; ``clock_commands_sent_per_s``: the clock alone.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Callable

from bench import roles
from bench.stack import bench_settings
from domain.wallet import Wallet
from herald.runtime.clock_loop import clock_ticker
from herald.runtime.wiring import Herald
from herald.storage import db
from projections.credit_clock import item_id
from schemas import commands as cmd

SETUP_BATCH = 500


@dataclass(frozen=True)
class Options:
    grants: int = 100_000
    workspaces: int = 1_000
    timeout_s: float = 600.0


def run(opts: Options, tag: str, server_url: str, bootstrap: str, tmp: Path, say: Callable[[str], None]) -> dict:
    db_name = f"herald_bench_clock_{tag}"
    db.create_database(server_url, db_name)
    try:
        return measure(opts, tag, db.with_database(server_url, db_name), bootstrap, tmp, say)
    finally:
        db.drop_database(server_url, db_name)


def measure(opts: Options, tag: str, database_url: str, bootstrap: str, tmp: Path, say: Callable[[str], None]) -> dict:
    herald = Herald(bench_settings(database_url, bootstrap, f"c{tag}.", tmp / "clock"), database_url, bootstrap)
    try:
        herald.prepare()
        started = time.perf_counter()
        per_ws = -(-opts.grants // opts.workspaces)
        # Every grant expires within the same minute, a little after the setup is expected to end.
        minute = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=30 + opts.grants // 2_000)
        grants = _setup(herald, opts.workspaces, per_ws, opts.grants, minute)
        say(f"clock setup: {len(grants):,} grants in {opts.workspaces:,} workspaces, expiring between "
            f"{minute:%H:%M:%S} and +60 s, in {time.perf_counter() - started:.1f} s")
        wait = (minute + timedelta(seconds=60) - datetime.now(UTC)).total_seconds()
        if wait > 0:
            time.sleep(wait)

        like = roles.command_record_topic_like(herald)
        target = roles._count_events(herald, like) + len(grants)
        s = herald.settings
        ticker = clock_ticker(herald.pool, herald.producer, s.commands_topic, interval_s=s.clock_interval_s,
                              limit=s.clock_batch_size, redeliver_after_s=3600)
        handler = herald.command_handler()
        first = roles._first_batch_clock(handler.consumer)  # the handler's group join is not the clock's cost
        stop = threading.Event()
        clock_thread = threading.Thread(target=ticker.run, args=(stop,), name="bench-clock", daemon=True)
        t0 = time.perf_counter()
        clock_thread.start()
        sent_at: list[float] = []

        def all_sent() -> None:
            while not stop.is_set():
                with herald.pool.connection() as conn:
                    if conn.execute("SELECT count(*) FROM credit_clock WHERE sent_at IS NULL").fetchone()[0] == 0:
                        sent_at.append(time.perf_counter())
                        return
                time.sleep(0.05)

        watcher = threading.Thread(target=all_sent, daemon=True)
        watcher.start()
        _, ended, done = roles._drive("handler", handler.run, lambda: roles._count_events(herald, like) >= target,
                                      opts.timeout_s)
        stop.set()
        clock_thread.join(timeout=30)
        if not done:
            raise RuntimeError(f"{target - roles._count_events(herald, like)} expiries undecided after {opts.timeout_s}s")
        t_first = max(first[0], t0) if first else t0
        seconds = ended - t_first
        _check_sample(herald, grants)
        rate = len(grants) / seconds
        sending = (sent_at[0] - t0) if sent_at else float("nan")
        say(f"clock: {rate:,.0f} expiries/s ({len(grants):,} grants due in the same minute, expired in "
            f"{seconds:.1f} s from the handler's first batch, {t_first - t0:.1f} s of group join before; "
            f"the clock sent every command within {sending:.1f} s)")
        return {"clock_expiries_per_s": round(rate, 1), "clock_commands_sent_per_s": round(len(grants) / sending, 1)}
    finally:
        herald.close()
        herald.app.close()


def _envelope(payload: cmd.Payload, ws: str, command_id: str) -> cmd.CommandEnvelope:
    return cmd.CommandEnvelope.wrap(payload, command_id=command_id, workspace_id=ws, issued_by="bench",
                                    issued_at=datetime.now(UTC))


def _setup(herald: Herald, workspaces: int, per_ws: int, total: int, minute: datetime) -> list[tuple[str, str, datetime]]:
    grants: list[tuple[str, str, datetime]] = []
    batch: list[cmd.CommandEnvelope] = []

    def flush() -> None:
        for decision in herald.app.handle_batch(batch):
            if not decision.accepted:
                raise RuntimeError(f"setup rejected: {decision.reason_code} {decision.detail}")
        batch.clear()

    opens = [_envelope(cmd.OpenWorkspace(name=f"clock-{w}"), f"clock-ws-{w}", "open") for w in range(workspaces)]
    for start in range(0, len(opens), SETUP_BATCH):
        batch.extend(opens[start:start + SETUP_BATCH])
        flush()
    for w in range(workspaces):
        ws = f"clock-ws-{w}"
        for g in range(per_ws):
            if len(grants) == total:
                break
            n = len(grants)
            expires_at = minute + timedelta(seconds=60 * n / total)
            grant_id = f"g{g}"
            batch.append(_envelope(cmd.GrantCredits(grant_id=grant_id, amount=5, source="promotion",
                                                    expires_at=expires_at), ws, f"grant-{g}"))
            grants.append((ws, grant_id, expires_at))
            if len(batch) >= SETUP_BATCH:
                flush()
    if batch:
        flush()
    with herald.pool.connection() as conn, conn.cursor() as cur:
        with cur.copy("COPY credit_clock (item_id, workspace_id, kind, ref, due_at) FROM STDIN") as copy:
            for ws, grant_id, expires_at in grants:
                copy.write_row((item_id("expire_grant", ws, grant_id), ws, "expire_grant", grant_id, expires_at))
    return grants


def _check_sample(herald: Herald, grants: list[tuple[str, str, datetime]]) -> None:
    """Every sampled grant's expiry was decided and accepted, and its wallet holds no live credits of it."""
    for ws, grant_id, _ in grants[:: max(1, len(grants) // 100)]:
        wallet = herald.app.find(Wallet, ws)
        if wallet is None or grant_id in wallet.grants:
            raise RuntimeError(f"grant {ws}/{grant_id} did not expire")
