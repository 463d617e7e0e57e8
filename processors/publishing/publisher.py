"""Publisher: the events consumer that hands every attempt the domain started to the publishing
engine, by journaling it as ``scheduled`` in the consumer's own transaction (exactly once, like
every consumer's effects). The engine (engine.py) makes the platform call at the due time."""

from __future__ import annotations

from typing import Iterable

from psycopg import Connection

from processors.publishing import journal
from schemas import events as ev
from schemas.commands import CommandEnvelope
from schemas.events import CloudEvent

DDL = journal.DDL


def journal_attempts(conn: Connection, event: CloudEvent) -> Iterable[CommandEnvelope]:
    if event.type == ev.AttemptStarted.type:
        attempt = event.parsed_data()
        assert isinstance(attempt, ev.AttemptStarted)
        journal.schedule(conn, event, attempt)
    return []
