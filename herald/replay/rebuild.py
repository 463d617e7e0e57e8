"""Rebuilding read models from the event store into fresh tables, swapped in without downtime.

``Rebuild.run()``:

1. **Fresh tables.** The chosen projections' DDL runs in a schema of its own (``herald_rebuild``),
   so the new tables have the live ones' names there.
2. **Catch up, in rounds, to the live consumer.** The live read-models consumer records per Kafka
   partition the highest event position it applied (``consumer_positions``); all of a
   workspace's events are in one partition (key = workspace id). A round applies, from the event
   store, every event of each partition up to that partition's live position, in pages of
   ``page`` events, one transaction each, the progress stored in the same transaction, so a
   crash resumes where it stopped. Only events some chosen read model applies are read (the
   others are filtered out in the database); the next page is read while one is applied.
   Without a live consumer (no positions) the target is the store's head.
3. **Swap.** One transaction: the live tables are locked in SHARE mode (the live consumer waits;
   readers do not), a last round applies what the consumer applied meanwhile, so the fresh
   tables hold exactly the events the live ones do, both are checksummed, and then, for a few
   milliseconds under an ACCESS EXCLUSIVE lock, the live tables move to ``herald_retired``, the
   fresh ones take their place, every read-model view is made again over them, and the retired
   tables are dropped. The live consumer then goes on from its own positions on the new tables.

Only read models are rebuilt; the consumers' positions are left as they are.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import psycopg
from kafka.partitioner.default import murmur2
from psycopg import Connection, sql

from domain.application import HeraldApplication
from herald.replay import store
from projections import bulk, catalogue
from projections.base import Projection, current_type
from schemas import events as ev

log = logging.getLogger(__name__)

SCHEMA = "herald_rebuild"
RETIRED = "herald_retired"
ALL = "*"  # the one "partition" when there is no live consumer to follow

DDL = """
CREATE TABLE IF NOT EXISTS rebuild_progress (
    name        text        PRIMARY KEY,
    projections text[]      NOT NULL,
    done        jsonb       NOT NULL,   -- partition → every event up to this position is applied
    target      jsonb,                  -- the round under way: partition → up to where
    cursor      bigint      NOT NULL,   -- the round's scan reached this position
    applied     bigint      NOT NULL DEFAULT 0,
    started_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
"""


LOCK_KEY = 0x4845524C_52424C44 & 0x7FFFFFFFFFFFFFFF  # "HERL" "RBLD"


class RebuildRunning(RuntimeError):
    pass


def partition_of(workspace_id: str, partitions: int) -> int:
    """The partition kafka-python's default partitioner (murmur2, as Java's) gives this key."""
    return (murmur2(workspace_id.encode()) & 0x7FFFFFFF) % partitions


@dataclass
class Progress:
    applied: int = 0  # events applied so far (this run and before a crash)
    scanned: int = 0  # store positions read in the current round
    total: int = 0  # store positions to read in the current round
    phase: str = "rebuilding"


@dataclass
class Checksum:
    table: str
    live: tuple[int, int] | None  # (rows, sum of row hashes); None: the live table is missing
    rebuilt: tuple[int, int]

    @property
    def equal(self) -> bool:
        return self.live == self.rebuilt


@dataclass
class Outcome:
    projections: list[str]
    applied: int
    checksums: list[Checksum] = field(default_factory=list)
    swapped: bool = False
    seconds: float = 0.0

    @property
    def equal(self) -> bool:
        return all(c.equal for c in self.checksums)


class Rebuild:
    def __init__(self, app: HeraldApplication, database_url: str, *, projections: Sequence[Projection] | None = None,
                 consumer: str = "read-models", topic: str = "herald.events", partitions: int = 1,
                 page: int = 10_000, on_progress: Callable[[Progress], None] = lambda p: None,
                 name: str = "read-models") -> None:
        self.app, self.url = app, database_url
        self.projections = catalogue.with_needs(projections or catalogue.PROJECTIONS)
        self.consumer, self.topic, self.partitions = consumer, topic, partitions
        self.page, self.on_progress, self.name = page, on_progress, name
        self.progress = Progress()
        self.tables = [t for p in self.projections for t in p.tables]
        handled = set().union(*(p.handles for p in self.projections))
        # Stored type names (older versions too) of the events some chosen read model applies.
        self.types = sorted(t for t in {*ev.EVENT_TYPES, *ev.UPCASTERS} if current_type(t) in handled)
        with psycopg.connect(self.url) as conn:
            self.live = conn.execute("SELECT current_schema()").fetchone()[0]
        self._partition_cache: dict[str, str] = {}

    # Steps ------------------------------------------------------------------------------

    def run(self, *, swap: bool = True, max_rounds: int = 20) -> Outcome:
        started = time.monotonic()
        with self.exclusive():
            self.prepare()
            for _ in range(max_rounds):  # each round is shorter: it only covers what came meanwhile
                if self.round() < self.page:
                    break
            outcome = self.finish(swap=swap)
        outcome.seconds = time.monotonic() - started
        return outcome

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """One rebuild at a time per database (they share the fresh-tables schema): a session
        advisory lock, held on a connection of its own for the whole run."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            if not conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()[0]:
                raise RebuildRunning("another herald rebuild is running on this database")
            yield

    def prepare(self) -> None:
        """Resume the rebuild under way for the same projections, or start afresh."""
        names = sorted(p.name for p in self.projections)
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(DDL)
            row = conn.execute("SELECT projections, applied FROM rebuild_progress WHERE name = %s",
                               (self.name,)).fetchone()
            fresh_schema = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (SCHEMA,)).fetchone()
            if row is not None and sorted(row[0]) == names and fresh_schema:
                self.progress.applied = row[1]
                log.info("rebuild %s: resuming (%s events applied before)", self.name, row[1])
                return
            with conn.transaction():
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(SCHEMA)))
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(SCHEMA)))
                conn.execute(sql.SQL("SET LOCAL search_path = {}").format(sql.Identifier(SCHEMA)))
                for projection in self.projections:
                    conn.execute(projection.ddl)
                conn.execute("DELETE FROM {}.rebuild_progress WHERE name = %s".format(self.live), (self.name,))
                conn.execute(
                    "INSERT INTO {}.rebuild_progress (name, projections, done, cursor) VALUES (%s, %s, '{{}}', 0)"
                    .format(self.live), (self.name, names))

    def round(self, conn: Connection | None = None) -> int:
        """Apply, per partition, the events up to the live consumer's position (or the head); returns
        how many events it applied. Given ``conn`` (the swap's transaction), all in it."""
        if conn is None:
            with psycopg.connect(self.url) as own:
                return self._round(own, commit=True)
        return self._round(conn, commit=False)

    def _round(self, conn: Connection, commit: bool) -> int:
        done, target, cursor = self._load_progress(conn)
        if target is None:  # a new round: follow the live consumer from now
            target = self._targets(conn)
            cursor = min((done.get(p, 0) for p in target), default=0)
        upto = max(target.values(), default=0)
        self.progress.total, self.progress.scanned = max(upto - cursor, 0), 0
        start, applied = cursor, 0
        for last, events in store.raw_pages(self.url, self.app, cursor, upto, self.page, self.types):
            wanted = [e for e in events
                      if done.get(p := self._partition(e.workspace_id), 0) < e.position <= target.get(p, 0)]
            self._apply(conn, wanted)
            applied += len(wanted)
            cursor = last
            self.progress.applied += len(wanted)
            self.progress.scanned = cursor - start
            self._save_progress(conn, done, target, cursor, len(wanted))
            if commit:
                conn.commit()
            self.on_progress(self.progress)
        done = {p: max(done.get(p, 0), target[p]) for p in {*done, *target}}
        self._save_progress(conn, done, None, cursor, 0)
        if commit:
            conn.commit()
        return applied

    def finish(self, *, swap: bool = True, attempts: int = 5) -> Outcome:
        """The last round, the checksums and (with ``swap``) the swap, atomically. A deadlock with
        the live consumer aborts our transaction only; then it is tried again."""
        for attempt in range(attempts):
            try:
                return self._finish(swap)
            except psycopg.errors.DeadlockDetected:
                if attempt == attempts - 1:
                    raise
                log.warning("rebuild %s: deadlock with a live writer; trying the swap again", self.name)
                time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")

    def _finish(self, swap: bool) -> Outcome:
        self.progress.phase = "swapping" if swap else "comparing"
        with psycopg.connect(self.url) as conn:
            live = [t for t in self.tables if self._exists(conn, self.live, t)]
            if live:
                conn.execute(sql.SQL("LOCK TABLE {} IN SHARE MODE").format(
                    sql.SQL(", ").join(sql.Identifier(self.live, t) for t in live)))
            while True:  # a round a crash interrupted first, then one up to where the consumer is now
                resumed = self._load_progress(conn)[1] is not None
                self.round(conn)
                if not resumed:
                    break
            checksums = [Checksum(t, self._checksum(conn, self.live, t) if t in live else None,
                                  self._checksum(conn, SCHEMA, t)) for t in self.tables]
            outcome = Outcome([p.name for p in self.projections], self.progress.applied, checksums)
            if not swap:
                conn.rollback()
                return outcome
            self._swap(conn, live)
            conn.execute(sql.SQL("DELETE FROM {}.rebuild_progress WHERE name = %s").format(sql.Identifier(self.live)),
                         (self.name,))
            conn.commit()
            outcome.swapped = True
            return outcome

    def _swap(self, conn: Connection, live: list[str]) -> None:
        i = sql.Identifier
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(i(RETIRED)))
        for table in live:
            conn.execute(sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(i(self.live, table), i(RETIRED)))
        for table in self.tables:
            conn.execute(sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(i(SCHEMA, table), i(self.live)))
        # Views follow a table that moves: make every read-model view again over the new tables.
        conn.execute(sql.SQL("SET LOCAL search_path = {}").format(i(self.live)))
        for ddl in catalogue.DDL:
            conn.execute(ddl)
        if live:  # RESTRICT: a view someone else made over an old table stops the swap rather than vanish
            conn.execute(sql.SQL("DROP TABLE {}").format(sql.SQL(", ").join(i(RETIRED, t) for t in live)))
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(i(SCHEMA)))

    # Helpers ----------------------------------------------------------------------------

    def _apply(self, conn: Connection, events: list[bulk.Raw]) -> None:
        """A page of events into the fresh tables: set-based for the read models that have a bulk
        path (``projections.bulk``), event by event (pipelined) through ``apply`` for the others."""
        conn.execute(sql.SQL("SET LOCAL search_path = {}").format(sql.Identifier(SCHEMA)))
        fast = bulk.usable(self.projections)
        slow = [p for p in self.projections if p.name not in fast]
        for fold in fast.values():
            fold(conn, events)
        if slow:
            with conn.pipeline():
                for raw in events:
                    event = store.event_of(raw)
                    wanting = [p for p in slow if p.wants(event.type)]
                    if wanting:
                        data = event.parsed_data()
                        for projection in wanting:
                            projection.apply(conn, event, data)
        conn.execute(sql.SQL("SET LOCAL search_path = {}").format(sql.Identifier(self.live)))

    def _partition(self, workspace_id: str) -> str:
        if self.partitions == 0:
            return ALL
        found = self._partition_cache.get(workspace_id)
        if found is None:
            found = self._partition_cache[workspace_id] = str(partition_of(workspace_id, self.partitions))
        return found

    def _targets(self, conn: Connection) -> dict[str, int]:
        """Per partition, the position the live consumer has applied; without one, the head (and
        so for the rest of this rebuild: a consumer that appears midway is not followed)."""
        if self.partitions == 0:
            return {ALL: store.head(conn, self.app)}
        rows = conn.execute("SELECT partition, global_position FROM consumer_positions WHERE consumer = %s"
                            " AND topic = %s", (self.consumer, self.topic)).fetchall() \
            if self._exists(conn, self.live, "consumer_positions") else []
        if not rows:
            self.partitions = 0
            return {ALL: store.head(conn, self.app)}
        return {str(p): position for p, position in rows}

    def _load_progress(self, conn: Connection) -> tuple[dict[str, int], dict[str, int] | None, int]:
        done, target, cursor = conn.execute(
            sql.SQL("SELECT done, target, cursor FROM {}.rebuild_progress WHERE name = %s").format(
                sql.Identifier(self.live)), (self.name,)).fetchone()
        if ALL in done or (target and ALL in target):
            self.partitions = 0
        return done, target, cursor

    def _save_progress(self, conn: Connection, done: dict[str, int], target: dict[str, int] | None, cursor: int,
                       applied: int) -> None:
        conn.execute(
            sql.SQL("UPDATE {}.rebuild_progress SET done = %s, target = %s, cursor = %s, applied = applied + %s,"
                    " updated_at = now() WHERE name = %s").format(sql.Identifier(self.live)),
            (json.dumps(done), json.dumps(target) if target is not None else None, cursor, applied, self.name))

    @staticmethod
    def _exists(conn: Connection, schema: str, table: str) -> bool:
        return conn.execute("SELECT 1 FROM pg_tables WHERE schemaname = %s AND tablename = %s",
                            (schema, table)).fetchone() is not None

    @staticmethod
    def _checksum(conn: Connection, schema: str, table: str) -> tuple[int, int]:
        """(rows, sum of a 60-bit hash of each row): equal tables give equal sums whatever their
        physical order or column order (columns are taken by name)."""
        columns = [r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s"
            " ORDER BY column_name", (schema, table))]
        row = sql.SQL("ROW({})").format(sql.SQL(", ").join(sql.Identifier(c) for c in columns))
        count, total = conn.execute(sql.SQL(
            "SELECT count(*), COALESCE(sum(('x' || left(md5({}::text), 15))::bit(60)::bigint), 0) FROM {}"
        ).format(row, sql.Identifier(schema, table))).fetchone()
        return count, int(total)
