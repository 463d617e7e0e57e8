"""Herald instances on the test's database and broker, closed when the test ends."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from herald.settings import Settings
from herald.storage.embedded import EmbeddedBroker

if TYPE_CHECKING:
    from herald.runtime.wiring import Herald


def close_herald(herald: Herald) -> None:
    """Close what the Herald opened, and its domain application if it made one. Safe to repeat."""
    herald.close()
    app = herald.__dict__.pop("app", None)  # a cached_property: made on first use only
    if app is not None:
        app.close()


class Heralds:
    """Starts prepared Heralds, and brokers of a test's own; closes them all, newest first."""

    def __init__(self, settings: Settings, tmp_path: Path) -> None:
        self.settings = settings
        self._tmp_path = tmp_path
        self._stack = contextlib.ExitStack()

    def own_broker(self, **options: Any) -> EmbeddedBroker:
        """A broker for this test alone, which it may stop and restart (closed after the Heralds on it)."""
        return self._stack.enter_context(EmbeddedBroker(self._tmp_path / "broker", **options))

    def start(self, *, broker: EmbeddedBroker | None = None, resume_relays: bool = True, **settings: Any) -> Herald:
        """A Herald with tables and topics created (and the relays resumed, as a role starts), on
        the test's settings with ``settings`` changed and, given ``broker``, on that broker."""
        from herald.runtime.wiring import Herald  # here: loading the fixtures stays cheap for unit tests

        if broker is not None:
            settings["kafka_bootstrap"] = broker.bootstrap
        config = self.settings.model_copy(update=settings) if settings else self.settings
        herald = Herald(config, config.database_url, config.kafka_bootstrap)
        self._stack.callback(close_herald, herald)
        new_topics = herald.prepare()
        if resume_relays:
            herald.resume_relays(new_topics)
        return herald

    def close(self) -> None:
        self._stack.close()


def relay_everything(relay: Any) -> Any:
    """Relay what is stored until nothing is left (no loop needed); returns the relay."""
    while relay.relay_once():
        pass
    return relay
