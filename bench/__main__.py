"""python -m bench [SCENARIO ...]: measure, print one line per figure, then the JSON summary as the last line.

Scenarios: throughput (roles against raw baselines), history (latency as a workspace ages),
concurrency (many clients, one workspace), lateness (publishing lateness at a fake platform, against BullMQ;
sized by HERALD_BENCH_LATENESS_* variables, see bench/lateness.py), replay (1 M events rebuilt into every read
model; smaller with BENCH_REPLAY_EVENTS), clock (the credit clock expiring 100,000 grants due in the same
minute), topoff (planned slots for 1,000 accounts × 28 days). None named → all of them, in that order.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

from bench import clock, concurrency, history, lateness, replay, roles, throughput, topoff
from bench.stack import running, say
from herald.storage.embedded import EmbeddedBroker

SERVER_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SCENARIOS = ("throughput", "history", "concurrency", "lateness", "replay", "clock", "topoff")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n", 1)[1])
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO", help=f"any of {', '.join(SCENARIOS)} (default: all)")
    group = parser.add_argument_group("throughput")
    group.add_argument("--commands", type=int, default=5_000)
    group.add_argument("--workspaces", type=int, default=100)
    group.add_argument("--aggregates", type=int, default=20_000)
    group.add_argument("--messages", type=int, default=50_000)
    group.add_argument("--profile", metavar="DIR", help="run each role under cProfile, dumping DIR/<role>.prof")
    group = parser.add_argument_group("history")
    group.add_argument("--history-posts", type=int, default=history.Options.history_posts,
                       help="posts of history at the second measuring point (the first is at 10)")
    group.add_argument("--history-window", type=int, default=history.Options.window,
                       help="requests of each kind (schedule, wallet, queue) per measuring round")
    group.add_argument("--history-rounds", type=int, default=history.Options.rounds,
                       help="measuring rounds at each point (their samples are pooled)")
    group.add_argument("--history-clients", type=int, default=history.Options.clients,
                       help="concurrent HTTP clients building the history")
    group.add_argument("--history-budget-s", type=float, default=history.Options.budget_s,
                       help="time for building the history; past it, measure at what was built")
    group.add_argument("--history-via", choices=("commands", "posts"), default=history.Options.via,
                       help="schedule the history through POST /v1/commands (decided by the handler in batches)"
                       " or POST .../posts (decided synchronously)")
    group = parser.add_argument_group("concurrency")
    group.add_argument("--clients", type=int, default=concurrency.Options.clients)
    group.add_argument("--posts-per-client", type=int, default=concurrency.Options.posts_per_client)
    group.add_argument("--concurrency-budget-s", type=float, default=concurrency.Options.budget_s,
                       help="clients send no new request after this")
    group = parser.add_argument_group("clock")
    group.add_argument("--clock-grants", type=int, default=clock.Options.grants)
    group.add_argument("--clock-workspaces", type=int, default=clock.Options.workspaces)
    group = parser.add_argument_group("topoff")
    group.add_argument("--topoff-accounts", type=int, default=topoff.Options.accounts)
    group.add_argument("--topoff-batch", type=int, default=topoff.Options.batch,
                       help="top-off commands (one per workspace of 10 accounts) per transaction")
    args = parser.parse_args()
    unknown = sorted(set(args.scenarios) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenarios {unknown}; scenarios are {', '.join(SCENARIOS)}")
    chosen = [s for s in SCENARIOS if s in args.scenarios] if args.scenarios else list(SCENARIOS)
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
        roles.PROFILE_DIR = args.profile
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    run_started = time.perf_counter()
    tag = secrets.token_hex(4)
    results: dict[str, object] = {}
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="herald-bench-") as tmp, EmbeddedBroker(Path(tmp) / "broker") as broker:
        for scenario in chosen:
            started = time.perf_counter()
            try:
                results.update(run(scenario, args, tag, broker.bootstrap, Path(tmp)))
            except Exception as error:  # noqa: BLE001 - report it, run the other scenarios, fail at the end
                logging.getLogger("bench").exception("scenario %s failed", scenario)
                say(f"{scenario}: FAILED: {type(error).__name__}: {error}")
                failed.append(scenario)
            say(f"{scenario}: {time.perf_counter() - started:.1f} s")
    say(f"total bench time {time.perf_counter() - run_started:.1f} s")
    if failed:
        results["failed_scenarios"] = ",".join(failed)
    print(json.dumps(results), flush=True)
    return 1 if failed else 0


def run(scenario: str, args: argparse.Namespace, tag: str, bootstrap: str, tmp: Path) -> dict:
    if scenario == "throughput":
        return throughput.run(args, tag, SERVER_URL, bootstrap, tmp)
    if scenario == "history":
        opts = history.Options(history_posts=args.history_posts, window=args.history_window, rounds=args.history_rounds,
                               clients=args.history_clients, budget_s=args.history_budget_s,
                               via=args.history_via)
        with running(SERVER_URL, bootstrap, tmp, "history") as stack:
            return history.run(stack, opts, say)
    if scenario == "concurrency":
        opts = concurrency.Options(clients=args.clients, posts_per_client=args.posts_per_client,
                                   budget_s=args.concurrency_budget_s)
        with running(SERVER_URL, bootstrap, tmp, "concurrency") as stack:
            return concurrency.run(stack, opts, say)
    if scenario == "lateness":
        opts = lateness.Options.from_env()
        with running(SERVER_URL, bootstrap, tmp, "lateness",
                     role_processes=os.environ.get("HERALD_BENCH_LATENESS_TOPOLOGY", "processes") == "processes") as stack:
            figures = lateness.run(stack, opts, say, tmp)
        return {**figures, **lateness.against_peer(figures, opts, say)}
    if scenario == "replay":
        return replay.run(SERVER_URL, tag, say)
    if scenario == "clock":
        opts = clock.Options(grants=args.clock_grants, workspaces=args.clock_workspaces)
        return clock.run(opts, tag, SERVER_URL, bootstrap, tmp, say)
    if scenario == "topoff":
        return topoff.run(topoff.Options(accounts=args.topoff_accounts, batch=args.topoff_batch), tag, SERVER_URL, say)
    raise ValueError(scenario)


if __name__ == "__main__":
    sys.exit(main())
