"""`herald dlq list|replay`: the dead letters."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from herald.cli.app import cli
from herald.settings import Settings

dlq = typer.Typer(no_args_is_help=True, help="List and replay dead letters (needs HERALD_KAFKA_BOOTSTRAP).")
cli.add_typer(dlq, name="dlq")


def _dlq_settings() -> Settings:
    settings = Settings()
    if not settings.kafka_bootstrap:
        typer.echo(
            "error: HERALD_KAFKA_BOOTSTRAP is not set. The embedded broker lives inside a running `herald run` "
            "(it logs 'embedded Kafka-protocol broker at host:port'); set HERALD_KAFKA_BOOTSTRAP to that "
            "address (and HERALD_TOPIC_PREFIX if you changed it).",
            err=True,
        )
        raise typer.Exit(2)
    return settings


@dlq.command("list")
def dlq_list(
    limit: Annotated[int, typer.Option("--limit", min=1, help="at most this many, oldest first")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """List the dead letters in the DLQ topic."""
    from herald.messaging.dead_letters import list_dead_letters

    settings = _dlq_settings()
    found = list_dead_letters(settings.kafka_bootstrap, settings.dlq_topic, limit)
    if as_json:
        typer.echo(json.dumps([d.to_dict() for d in found], indent=2))
        return
    if not found:
        typer.echo(f"no dead letters in {settings.dlq_topic}")
        return
    rows = [("ID", "CONSUMER", "CAUSE", "SOURCE")]
    rows += [(d.id, d.consumer, _one_line(d.cause, 80), d.source) for d in found]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3])


@dlq.command("replay")
def dlq_replay(dead_letter_id: Annotated[str, typer.Argument(help="the id `herald dlq list` shows")]) -> None:
    """Produce a dead letter's original message to its source topic again (safe to repeat)."""
    from herald.messaging import kafka_io
    from herald.messaging.dead_letters import UnknownDeadLetter, replay_dead_letter

    settings = _dlq_settings()
    idempotent = kafka_io.use_idempotence(settings.producer_idempotence, settings.kafka_bootstrap)
    producer = kafka_io.make_producer(settings.kafka_bootstrap, idempotent=idempotent)
    try:
        replayed = replay_dead_letter(settings.kafka_bootstrap, settings.dlq_topic, dead_letter_id, producer)
    except UnknownDeadLetter as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    finally:
        producer.close(timeout=5)
    typer.echo(f"replayed {replayed.id} to {replayed.source_topic}")


def _one_line(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
