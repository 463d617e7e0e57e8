"""throughput: Herald's handler, relay and queue projection against raw library baselines.

Drives the roles directly (no HTTP): workspaces are set up through the application, commands
are produced to the commands topic, and each role is timed on its own.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bench import baselines, roles
from bench.stack import bench_settings, say
from herald.runtime.wiring import Herald
from herald.storage import db


def run(args: argparse.Namespace, tag: str, server_url: str, bootstrap: str, tmp: Path) -> dict[str, float]:
    """On a fresh database of its own (dropped afterwards)."""
    db_name = f"herald_bench_{tag}"
    db.create_database(server_url, db_name)
    say(f"bench {tag}: database {db_name}")
    try:
        return measure(args, tag, db.with_database(server_url, db_name), bootstrap, tmp)
    finally:
        db.drop_database(server_url, db_name)


def measure(args: argparse.Namespace, tag: str, database_url: str, bootstrap: str, tmp: Path) -> dict[str, float]:
    prefix = f"b{tag}."
    save_rate = baselines.save_aggregates(database_url, args.aggregates)
    say(f"baseline eventsourcing save: {save_rate:,.0f} aggregates/s ({args.aggregates} aggregates, 500 per save)")
    produce_rate, consume_rate = baselines.produce_consume(bootstrap, f"{prefix}baseline", args.messages)
    say(f"baseline kafka-python produce: {produce_rate:,.0f} msgs/s ({args.messages} x 300 B, acks=all)")
    say(f"baseline kafka-python consume: {consume_rate:,.0f} msgs/s")

    settings = bench_settings(database_url, bootstrap, prefix, tmp / "herald")
    herald = Herald(settings, database_url, bootstrap)
    try:
        herald.prepare()
        started = time.perf_counter()
        per_ws = -(-args.commands // args.workspaces)
        accounts = roles.setup_workspaces(herald, args.workspaces, credits=max(10, 4 * per_ws))
        commands = roles.schedule_commands(accounts, args.commands)
        say(f"setup: {args.workspaces} workspaces x 2 sandbox accounts in {time.perf_counter() - started:.1f} s")

        handled = roles.run_handler(herald, commands)
        say(f"handler: {handled.rate:,.0f} commands/s ({handled.count} SchedulePost, all accepted, "
            f"{handled.seconds:.2f} s after {handled.join_s:.1f} s group join)")

        say(f"handler: {handled.events / handled.seconds:,.0f} events/s stored ({handled.events} events)")

        relayed = roles.run_relay(herald)
        say(f"relay: {relayed.rate:,.0f} events/s ({relayed.count} events in {relayed.seconds:.2f} s)")
        same_records = roles.relay_records(herald)
        produce_same = baselines.produce(bootstrap, f"{prefix}baseline-events", same_records)
        consume_same = baselines.consume(bootstrap, settings.events_topic, relayed.count)
        say(f"baseline kafka-python produce, the relay's own records (~{_mean_size(same_records):,.0f} B,"
            f" {len(same_records[0][2])} headers): {produce_same:,.0f} msgs/s")
        say(f"baseline kafka-python consume, the events topic: {consume_same:,.0f} msgs/s")

        projected = roles.run_projection(herald, relayed.count)
        say(f"projection (queue): {projected.rate:,.0f} events/s ({projected.count} events in "
            f"{projected.seconds:.2f} s after {projected.join_s:.1f} s group join)")
        every = roles.run_projection(herald, relayed.count, every_read_model=True)
        say(f"projection (every read model, as the projections role runs): {every.rate:,.0f} events/s "
            f"({every.count} events in {every.seconds:.2f} s after {every.join_s:.1f} s group join)")
    finally:
        herald.close()
        herald.app.close()

    return {
        "handler_commands_per_s": round(handled.rate, 1),
        "relay_events_per_s": round(relayed.rate, 1),
        "projection_events_per_s": round(projected.rate, 1),
        "baseline_save_aggregates_per_s": round(save_rate, 1),
        "baseline_produce_per_s": round(produce_rate, 1),
        "baseline_consume_per_s": round(consume_rate, 1),
        "handler_vs_save": round(handled.rate / save_rate, 3),
        "relay_vs_produce": round(relayed.rate / produce_rate, 3),
        # Context: the same figures against like-for-like baselines (the very records Herald
        # stores, produces and consumes), since Herald's records are larger and carry headers.
        "handler_events_per_s": round(handled.events / handled.seconds, 1),
        "handler_events_vs_save": round(handled.events / handled.seconds / save_rate, 3),
        "baseline_produce_relay_records_per_s": round(produce_same, 1),
        "relay_vs_produce_relay_records": round(relayed.rate / produce_same, 3),
        "baseline_consume_events_topic_per_s": round(consume_same, 1),
        "projection_vs_consume_events_topic": round(projected.rate / consume_same, 3),
        "read_models_events_per_s": round(every.rate, 1),
    }


def _mean_size(records: list[baselines.Record]) -> float:
    return sum(len(value) for _, value, _ in records) / len(records)
