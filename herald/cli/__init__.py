"""The ``herald`` command: run any role, or all of them in one process."""

from __future__ import annotations

import json
import logging
import signal
import threading
from typing import Annotated

import typer
import uvicorn

from herald.runtime import health
from herald.settings import Settings
from herald.runtime.wiring import ROLES, Herald, infrastructure, run_loops

cli = typer.Typer(add_completion=False, no_args_is_help=True, help="Herald: schedule and publish social-media posts.")
log = logging.getLogger("herald")


def _serve(roles: list[str]) -> None:
    settings = Settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):  # from the first moment: a stop during start-up is clean too
        signal.signal(signum, lambda *_: stop.set())
    with infrastructure(settings) as (database_url, bootstrap):
        herald = Herald(settings, database_url, bootstrap)
        try:
            new_topics = herald.prepare()
            if "relay" in roles:
                herald.resume_relays(new_topics)
            loops = [loop for role in roles if role != "gateway" for loop in herald.loops(role)]
            threads = run_loops(loops, stop)
            if "gateway" in roles:
                _serve_gateway(herald, stop)
            else:
                if settings.metrics_port:
                    health.serve(herald.role_health(roles, threads), settings.http_host, settings.metrics_port)
                log.info("herald running roles %s; Ctrl-C stops", ", ".join(roles))
                stop.wait()
            stop.set()
            for thread in threads:
                thread.join(timeout=15)
        finally:
            herald.close()


def _serve_gateway(herald: Herald, stop: threading.Event) -> None:
    s = herald.settings
    server = uvicorn.Server(uvicorn.Config(herald.gateway(), host=s.http_host, port=s.http_port, log_level="info"))
    threading.Thread(target=lambda: (stop.wait(), setattr(server, "should_exit", True)), daemon=True).start()
    url = f"http://{s.http_host}:{s.http_port}"
    print(f"\nHerald gateway: {url}  (OpenAPI: {url}/docs)\nAdmin API key:  {herald.admin_api_key}\n", flush=True)
    server.run()  # returns on Ctrl-C / SIGTERM


@cli.command()
def run(roles: Annotated[list[str] | None, typer.Option("--role", help="limit to these roles")] = None) -> None:
    """Run every role in one process (embedded PostgreSQL and broker unless configured)."""
    chosen = roles or list(ROLES)
    unknown = sorted(set(chosen) - set(ROLES))
    if unknown:
        raise typer.BadParameter(f"unknown roles {unknown}; roles are {', '.join(ROLES)}")
    _serve(chosen)


def _role_command(role: str) -> None:
    @cli.command(name=role, help=f"Run only the {role} role (scale out by starting more).")
    def command() -> None:
        _serve([role])


for _role in ROLES:
    _role_command(_role)


# Dead letters ------------------------------------------------------------------------

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


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
