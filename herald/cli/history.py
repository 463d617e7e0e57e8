"""`herald rebuild [PROJECTION...]` and `herald replay --from/--to`: operating on history.

See docs/audit-and-replay.md. Both are resumable: run the same command again after a crash.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from herald.cli.app import cli
from herald.settings import Settings

console = Console(stderr=True)


class Rate(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{task.speed or 0:>9,.0f} events/s")


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    Rate(), TimeRemainingColumn(), console=console, transient=False)


def tool_herald(settings: Settings, need_kafka: bool = False):
    from herald.runtime.wiring import Herald
    from herald.storage import db
    from herald.storage.embedded import start_embedded_postgres

    url = settings.database_url
    if not url:  # the embedded database of `herald run` on this data directory
        url = db.with_database(start_embedded_postgres(settings.data_dir / "postgres"), "herald")
    if need_kafka and not settings.kafka_bootstrap:
        typer.echo("error: HERALD_KAFKA_BOOTSTRAP is not set (the embedded broker lives inside a running "
                   "`herald run`; set HERALD_KAFKA_BOOTSTRAP to the address it logs).", err=True)
        raise typer.Exit(2)
    return Herald(settings, url, settings.kafka_bootstrap or "")


@cli.command()
def rebuild(
    projections: Annotated[list[str] | None, typer.Argument(help="read models to rebuild (default: all)")] = None,
    check: Annotated[bool, typer.Option("--check", help="rebuild and compare checksums, but keep the live tables")] = False,
    page: Annotated[int, typer.Option(min=1, help="events per transaction")] = 10_000,
) -> None:
    """Rebuild read models from the event store into fresh tables, compare them with the live ones
    (checksums) and swap them in without stopping readers. Run it again to resume after a crash."""
    from herald.replay.rebuild import Rebuild, RebuildRunning
    from projections import catalogue

    logging.basicConfig(level=logging.WARNING)
    known = {p.name: p for p in catalogue.PROJECTIONS}
    unknown = sorted(set(projections or ()) - set(known))
    if unknown:
        raise typer.BadParameter(f"unknown read models {unknown}; they are {', '.join(known)}")
    settings = Settings()
    herald = tool_herald(settings)
    try:
        with _progress() as bar:
            task = bar.add_task("rebuilding", total=None)

            def show(p) -> None:
                bar.update(task, description=p.phase, completed=p.scanned, total=p.total or None)

            chosen = [known[n] for n in projections] if projections else None
            try:
                outcome = Rebuild(herald.app, herald.database_url, projections=chosen, topic=settings.events_topic,
                                  partitions=settings.topic_partitions, page=page, on_progress=show).run(swap=not check)
            except RebuildRunning as error:
                console.print(f"error: {error}")
                raise typer.Exit(1) from None
        added = [n for n in outcome.projections if n not in (projections or outcome.projections)]
        if added:
            console.print(f"also rebuilt, as the chosen read models read or write their tables: {', '.join(added)}")
        table = Table("table", "live rows", "rebuilt rows", "checksum")
        for c in outcome.checksums:
            table.add_row(c.table, "missing" if c.live is None else f"{c.live[0]:,}", f"{c.rebuilt[0]:,}",
                          "equal" if c.equal else "[red]differs[/red]")
        console.print(table)
        rate = outcome.applied / outcome.seconds if outcome.seconds else 0
        console.print(f"{outcome.applied:,} events in {outcome.seconds:.1f} s ({rate:,.0f} events/s); "
                      + ("swapped in" if outcome.swapped else "live tables kept (--check)"))
        if not outcome.equal:
            console.print("[yellow]the rebuilt tables differ from the live ones (expected after a projection "
                          "fix; otherwise look for a projection bug)[/yellow]")
    finally:
        herald.close()


@cli.command()
def replay(
    start: Annotated[int, typer.Option("--from", min=1, help="first event-store position")] = 1,
    stop: Annotated[int | None, typer.Option("--to", min=1, help="last position (default: the latest)")] = None,
) -> None:
    """Republish events to the events topic (for a consumer that lost its data). Herald's own
    consumers skip what they already applied. Run it again to resume after a crash."""
    from herald.messaging import kafka_io
    from herald.replay.republish import replay as republish

    settings = Settings()
    herald = tool_herald(settings, need_kafka=True)
    try:
        with _progress() as bar:
            task = bar.add_task("replaying", total=None)

            def show(p) -> None:
                bar.update(task, completed=p.position - p.first + 1, total=p.last - p.first + 1)

            producer = kafka_io.make_producer(settings.kafka_bootstrap, idempotent=herald.idempotent)
            try:
                done = republish(herald.app, herald.database_url, producer, settings.events_topic, start=start,
                                 stop=stop, on_progress=show)
            finally:
                producer.close(timeout=5)
        console.print(f"republished {done.sent:,} events ({done.first}..{done.last}) to {settings.events_topic}")
    finally:
        herald.close()
