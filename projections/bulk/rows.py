"""What every bulk path is made of: the stored events of a page (``Raw``) and the rows of one
table a page touches (``Rows``), loaded once, changed in memory in event order, written back once.

Events here are ``Raw``: the stored event's fields, data as plain JSON (upcast), not validated
again (the store holds only what the domain validated). A fold that needs a value exactly as the
projection computes it from the parsed model (a datetime's ``isoformat``, a ``model_dump``) parses
those few events with ``model`` rather than guess the model's rendering.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from datetime import date, datetime
from typing import Any

from psycopg import Connection, sql
from psycopg.types.json import Jsonb

from schemas import events as ev


@dataclass(frozen=True, slots=True)
class Raw:
    position: int
    type: str  # the current type (after upcasting)
    data: dict[str, Any]
    workspace_id: str
    time: datetime
    causation_id: str
    correlation_id: str
    aggregate_version: int
    aggregate_id: str

    def model(self) -> ev.EventData:
        """The event's data parsed as the live projection sees it."""
        return ev.EVENT_TYPES[self.type].model_validate(self.data)


def raw(position: int, type_name: str, data: dict[str, Any], workspace_id: str, time: datetime, causation_id: str,
        correlation_id: str, aggregate_version: int, aggregate_id: str) -> Raw:
    while type_name in ev.UPCASTERS:
        type_name, upcast = ev.UPCASTERS[type_name]
        data = upcast(data)
    return Raw(position, type_name, data, workspace_id, time, causation_id, correlation_id, aggregate_version,
               aggregate_id)


def only(events: list[Raw], *models: type[ev.EventData]) -> list[Raw]:
    types = {m.type for m in models}
    return [e for e in events if e.type in types]


class Rows:
    """One table's rows touched by a page, by primary key: loaded once, changed in memory, written
    back once (DELETE of the old versions and of the deleted rows, COPY of the new).

    ``types`` gives the SQL type of key columns that are not text (``bigint``, ``date``)."""

    def __init__(self, table: str, key: Sequence[str], columns: Sequence[str], jsonb: Iterable[str] = (),
                 types: dict[str, str] | None = None) -> None:
        self.table, self.key, self.columns = table, tuple(key), tuple(columns)
        # A row's key: one dict lookup per key column, no generator (this runs for every row a page writes).
        self._key = itemgetter(*self.key) if len(self.key) > 1 else (lambda row, c=self.key[0]: (row[c],))
        self.jsonb = frozenset(jsonb)
        types = types or {}
        self._params = sql.SQL(", ").join(sql.SQL(f"%s::{types.get(c, 'text')}[]") for c in self.key)
        self.rows: dict[tuple, dict[str, Any]] = {}
        self.existed: set[tuple] = set()  # keys whose row is in the table (as last stored)
        self.dirty: set[tuple] = set()
        self.loaded: set[tuple] = set()  # keys looked up (found or not)

    def load(self, conn: Connection, keys: Iterable[tuple]) -> None:
        wanted = list({k for k in keys if k not in self.loaded and k not in self.rows})
        if not wanted:
            return
        self.loaded.update(wanted)
        arrays = [list(col) for col in zip(*wanted)]
        on = sql.SQL(" AND ").join(sql.SQL("t.{0} = k.{0}").format(sql.Identifier(c)) for c in self.key)
        query = sql.SQL("SELECT {cols} FROM {table} t JOIN unnest({params}) AS k({names}) ON {on}").format(
            cols=sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in self.columns),
            table=sql.Identifier(self.table), params=self._params,
            names=sql.SQL(", ").join(map(sql.Identifier, self.key)), on=on)
        for values in conn.execute(query, arrays).fetchall():
            row = dict(zip(self.columns, values))
            k = self._key(row)
            self.rows[k] = row
            self.existed.add(k)

    def get(self, key: tuple) -> dict[str, Any] | None:
        return self.rows.get(key)

    def insert(self, row: dict[str, Any]) -> bool:
        """Insert unless a row with this key exists (ON CONFLICT DO NOTHING); True when inserted."""
        k = self._key(row)
        if k in self.rows:
            return False
        self.rows[k] = row
        self.dirty.add(k)
        return True

    def changed(self, key: tuple) -> None:
        self.dirty.add(key)

    def delete(self, key: tuple) -> None:
        if self.rows.pop(key, None) is not None:
            self.dirty.add(key)

    def store(self, conn: Connection) -> None:
        stale = [k for k in self.dirty if k in self.existed]
        if stale:
            on = sql.SQL(" AND ").join(sql.SQL("t.{0} = k.{0}").format(sql.Identifier(c)) for c in self.key)
            conn.execute(sql.SQL("DELETE FROM {table} t USING unnest({params}) AS k({names}) WHERE {on}").format(
                table=sql.Identifier(self.table), params=self._params,
                names=sql.SQL(", ").join(map(sql.Identifier, self.key)), on=on), [list(c) for c in zip(*stale)])
        written = [k for k in self.dirty if k in self.rows]
        if written:
            copy = sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier(self.table), sql.SQL(", ").join(map(sql.Identifier, self.columns)))
            with conn.cursor() as cur, cur.copy(copy) as out:
                for k in written:
                    row = self.rows[k]
                    out.write_row([Jsonb(row[c]) if c in self.jsonb and row[c] is not None else row[c]
                                   for c in self.columns])
        self.existed = (self.existed - self.dirty) | set(written)
        self.dirty.clear()


def local_days(conn: Connection, events: Sequence[Raw]) -> dict[int, date]:
    """Per event position, the local date of its time in its workspace's time zone (UTC for a
    workspace ``workspaces`` does not know), computed by PostgreSQL exactly as the projections'
    ``(time AT TIME ZONE COALESCE(w.timezone, 'UTC'))::date`` does. One query."""
    if not events:
        return {}
    rows = conn.execute(
        "SELECT k.position, (k.at AT TIME ZONE COALESCE(w.timezone, 'UTC'))::date"
        " FROM unnest(%s::bigint[], %s::timestamptz[], %s::text[]) AS k(position, at, workspace_id)"
        " LEFT JOIN workspaces w ON w.workspace_id = k.workspace_id",
        ([e.position for e in events], [e.time for e in events], [e.workspace_id for e in events])).fetchall()
    return dict(rows)
