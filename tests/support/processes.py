"""Roles run as ``herald <role>`` subprocesses on a test's database and topics."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from herald.settings import Settings


# What the `herald` console script runs (pyproject's herald = "herald.cli:main"); herald.cli is a
# package without a __main__ module, so `python -m herald.cli` would not start it.
HERALD_COMMAND = [sys.executable, "-c", "from herald.cli import main; main()"]


def role_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment that makes a `herald <role>` subprocess use this test's database and topics
    (``extra``: more HERALD_* variables)."""
    return {**os.environ, **settings.environment(), "HERALD_METRICS_PORT": "0", **extra}


@dataclass
class RoleProcess:
    role: str
    log: Path
    process: subprocess.Popen

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM (unless it already ended) and wait; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    def log_tail(self, chars: int = 2000) -> str:
        return self.log.read_text()[-chars:]


@contextlib.contextmanager
def role_processes(roles: list[str], settings: Settings, log_dir: Path, **extra_env: str) -> Iterator[list[RoleProcess]]:
    """Start one ``herald <role>`` process per entry of ``roles`` (stderr to ``log_dir/<n>-<role>.log``);
    on leaving, SIGTERM every one still running and wait for all of them."""
    env = role_env(settings, **extra_env)
    started = []
    for n, role in enumerate(roles):
        log = log_dir / f"{n}-{role}.log"
        process = subprocess.Popen([*HERALD_COMMAND, role], env=env,
                                   stdout=subprocess.DEVNULL, stderr=log.open("wb"))  # a file: a pipe could fill up
        started.append(RoleProcess(role, log, process))
    try:
        yield started
    finally:
        for role_process in started:
            if role_process.process.poll() is None:
                role_process.process.send_signal(signal.SIGTERM)
        for role_process in started:
            role_process.process.wait(timeout=30)
