"""A FastAPI app served by uvicorn on a free 127.0.0.1 port, on a background thread: what every
fake platform server is underneath (the fakes only add their routes, checks and faults)."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn
from fastapi import FastAPI


class LocalServer:
    name = "server"

    def __init__(self) -> None:
        """Binds the port first, so the routes may know ``base_url``; ``serve(app)`` then serves them."""
        self._socket = socket.socket()
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"

    def serve(self, app: FastAPI, graceful_s: float = 1) -> None:
        config = uvicorn.Config(app, log_level="warning", http="h11", lifespan="off",
                                timeout_graceful_shutdown=graceful_s)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]},
                                        name=f"fake-{self.name}-{self.port}", daemon=True)

    def start(self):  # noqa: ANN201 - returns the subclass
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"fake {self.name} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._socket.close()

    def __enter__(self):  # noqa: ANN204 - returns the subclass
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
