"""`herald run` and `herald <role>`: run roles, all of them in one process or one at a time."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Annotated

import typer
import uvicorn

from herald.cli.app import cli
from herald.runtime import health
from herald.settings import Settings
from herald.runtime.wiring import ROLES, Herald, infrastructure, run_loops

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


