"""Every read model's rebuild path: a page of events applied with a handful of set-based
statements instead of one or more statements per event.

For each table a page touches: load the rows it touches (one query), fold the page's events into
them in order in Python (exactly what the projection's ``apply`` does row by row), and write the
changed rows back (one DELETE, one COPY). The live path stays ``apply`` (one event at a time, for
latency); this is for ``herald rebuild`` and ``make bench``'s replay, where it is several times
faster. The two paths must agree: the rebuild's checksum against the live tables and
``tests/integration/test_rebuild.py`` (random workloads applied both ways) say when they do not.

A read model without a usable entry in ``_FOLDS`` (``usable``) is rebuilt through its ``apply``, one
event at a time.
Events here are ``Raw``: the stored event's fields, data as plain JSON (upcast), not validated
again (the store holds only what the domain validated).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
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


def raw(position: int, type_name: str, data: dict[str, Any], workspace_id: str, time: datetime, causation_id: str,
        correlation_id: str, aggregate_version: int, aggregate_id: str) -> Raw:
    while type_name in ev.UPCASTERS:
        type_name, upcast = ev.UPCASTERS[type_name]
        data = upcast(data)
    return Raw(position, type_name, data, workspace_id, time, causation_id, correlation_id, aggregate_version,
               aggregate_id)


class Rows:
    """One table's rows touched by a page, by primary key: loaded once, changed in memory, written
    back once (DELETE of the old versions, COPY of the new)."""

    def __init__(self, table: str, key: Sequence[str], columns: Sequence[str], jsonb: Iterable[str] = (),
                 bigint_keys: Iterable[str] = ()) -> None:
        self.table, self.key, self.columns = table, tuple(key), tuple(columns)
        self.jsonb = frozenset(jsonb)
        bigints = frozenset(bigint_keys)
        self._params = sql.SQL(", ").join(sql.SQL("%s::bigint[]" if c in bigints else "%s::text[]") for c in self.key)
        self.rows: dict[tuple, dict[str, Any]] = {}
        self.existed: set[tuple] = set()
        self.dirty: set[tuple] = set()

    def load(self, conn: Connection, keys: Iterable[tuple]) -> None:
        wanted = list({k for k in keys if k not in self.rows})
        if not wanted:
            return
        arrays = [list(col) for col in zip(*wanted)]
        on = sql.SQL(" AND ").join(sql.SQL("t.{0} = k.{0}").format(sql.Identifier(c)) for c in self.key)
        query = sql.SQL("SELECT {cols} FROM {table} t JOIN unnest({params}) AS k({names}) ON {on}").format(
            cols=sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in self.columns),
            table=sql.Identifier(self.table), params=self._params,
            names=sql.SQL(", ").join(map(sql.Identifier, self.key)), on=on)
        for values in conn.execute(query, arrays).fetchall():
            row = dict(zip(self.columns, values))
            k = tuple(row[c] for c in self.key)
            self.rows[k] = row
            self.existed.add(k)

    def get(self, key: tuple) -> dict[str, Any] | None:
        return self.rows.get(key)

    def insert(self, row: dict[str, Any]) -> bool:
        """Insert unless a row with this key exists (ON CONFLICT DO NOTHING); True when inserted."""
        k = tuple(row[c] for c in self.key)
        if k in self.rows:
            return False
        self.rows[k] = row
        self.dirty.add(k)
        return True

    def changed(self, key: tuple) -> None:
        self.dirty.add(key)

    def store(self, conn: Connection) -> None:
        stale = [k for k in self.dirty if k in self.existed]
        if stale:
            on = sql.SQL(" AND ").join(sql.SQL("t.{0} = k.{0}").format(sql.Identifier(c)) for c in self.key)
            conn.execute(sql.SQL("DELETE FROM {table} t USING unnest({params}) AS k({names}) WHERE {on}").format(
                table=sql.Identifier(self.table), params=self._params,
                names=sql.SQL(", ").join(map(sql.Identifier, self.key)), on=on), [list(c) for c in zip(*stale)])
        if self.dirty:
            copy = sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier(self.table), sql.SQL(", ").join(map(sql.Identifier, self.columns)))
            with conn.cursor() as cur, cur.copy(copy) as out:
                for k in self.dirty:
                    row = self.rows[k]
                    out.write_row([Jsonb(row[c]) if c in self.jsonb and row[c] is not None else row[c]
                                   for c in self.columns])
        self.existed |= self.dirty
        self.dirty.clear()


def _only(events: list[Raw], *models: type[ev.EventData]) -> list[Raw]:
    types = {m.type for m in models}
    return [e for e in events if e.type in types]


# queue ------------------------------------------------------------------------------------

_QUEUE_EVENTS = (ev.WorkspaceOpened, ev.PostScheduled, ev.AttemptStarted, ev.DestinationPublished, ev.RetryScheduled,
                 ev.DestinationThrottled, ev.DestinationFailed, ev.DestinationSkipped, ev.OutcomeUnknown,
                 ev.PostCancelled)
_QUEUE_COLUMNS = ("post_id", "destination_id", "workspace_id", "social_account_id", "platform", "handle", "due_at",
                  "status", "attempt", "platform_post_id", "url", "reason", "updated_at", "text", "ordinal",
                  "throttled_until")


def queue(conn: Connection, events: list[Raw]) -> None:
    events = _only(events, *_QUEUE_EVENTS)
    workspaces = Rows("queue_workspaces", ["workspace_id"], ["workspace_id", "tier", "queue_size"])
    dests = Rows("queue_destinations", ["post_id", "destination_id"], _QUEUE_COLUMNS)
    workspaces.load(conn, [(e.workspace_id,) for e in events if e.type == ev.WorkspaceOpened.type])
    keys = []
    for e in events:
        d = e.data
        if e.type == ev.PostScheduled.type:
            keys += [(d["post_id"], x["destination_id"]) for x in d["destinations"]]
        elif e.type == ev.PostCancelled.type:
            keys += [(d["post_id"], x) for x in d["cancelled_destinations"]]
        elif e.type != ev.WorkspaceOpened.type:
            keys.append((d["post_id"], d["destination_id"]))
    dests.load(conn, keys)

    def set_status(post_id: str, destination_id: str, status: str, at: datetime, reason: str = "",
                   attempt: int = 0) -> None:
        row = dests.get((post_id, destination_id))
        if row is not None:
            row.update(status=status, attempt=max(row["attempt"], attempt), reason=reason, updated_at=at)
            dests.changed((post_id, destination_id))

    for e in events:
        d, at, t = e.data, e.time, e.type
        if t == ev.WorkspaceOpened.type:
            key = (e.workspace_id,)
            row = {"workspace_id": e.workspace_id, "tier": d["tier"], "queue_size": d["limits"]["queue_size"]}
            if not workspaces.insert(row):
                workspaces.get(key).update(row)
                workspaces.changed(key)
        elif t == ev.PostScheduled.type:
            for i, x in enumerate(d["destinations"]):
                row = {"post_id": d["post_id"], "destination_id": x["destination_id"], "workspace_id": e.workspace_id,
                       "social_account_id": x["social_account_id"], "platform": x["platform"], "handle": x["handle"],
                       "due_at": d["publish_at"], "status": "pending", "attempt": 0, "platform_post_id": None,
                       "url": None, "reason": "", "updated_at": at, "text": x["text"], "ordinal": i,
                       "throttled_until": None}
                if not dests.insert(row):
                    old = dests.get((d["post_id"], x["destination_id"]))
                    if old["text"] is None or old["ordinal"] is None:
                        old.update(text=x["text"], ordinal=i)
                        dests.changed((d["post_id"], x["destination_id"]))
        elif t == ev.AttemptStarted.type:
            set_status(d["post_id"], d["destination_id"], "attempting", at, attempt=d["attempt"])
        elif t == ev.DestinationPublished.type:
            row = dests.get((d["post_id"], d["destination_id"]))
            if row is not None:
                row.update(status="published", platform_post_id=d["platform_post_id"], url=d["url"],
                           attempt=d["attempt"], reason="", updated_at=at)
                dests.changed((d["post_id"], d["destination_id"]))
        elif t == ev.RetryScheduled.type:
            row = dests.get((d["post_id"], d["destination_id"]))
            if row is not None:
                row.update(status="retry_scheduled", due_at=d["retry_at"], reason=d["detail"], throttled_until=None,
                           updated_at=at)
                dests.changed((d["post_id"], d["destination_id"]))
        elif t == ev.DestinationThrottled.type:
            row = dests.get((d["post_id"], d["destination_id"]))
            if row is not None:
                row.update(status="retry_scheduled", due_at=d["until"], throttled_until=d["until"], reason=d["detail"],
                           updated_at=at)
                dests.changed((d["post_id"], d["destination_id"]))
        elif t == ev.DestinationFailed.type:
            set_status(d["post_id"], d["destination_id"], "failed", at, reason=d["detail"], attempt=d["attempt"])
        elif t == ev.DestinationSkipped.type:
            set_status(d["post_id"], d["destination_id"], "skipped", at, reason=d["reason"])
        elif t == ev.OutcomeUnknown.type:
            set_status(d["post_id"], d["destination_id"], "outcome_unknown", at, reason=d["detail"])
        elif t == ev.PostCancelled.type:
            for x in d["cancelled_destinations"]:
                set_status(d["post_id"], x, "cancelled", at, reason=d["reason"])
    workspaces.store(conn)
    dests.store(conn)


# wallet -----------------------------------------------------------------------------------


_WALLET_EVENTS = (ev.WorkspaceOpened, ev.WalletOpened, ev.CreditsGranted, ev.HoldPlaced, ev.HoldConsumed,
                  ev.HoldReleased)


def wallet(conn: Connection, events: list[Raw]) -> None:
    events = _only(events, *_WALLET_EVENTS)
    wallets = Rows("wallets", ["workspace_id"], ["workspace_id", "opened_at"])
    grants = Rows("wallet_grants", ["workspace_id", "grant_id"],
                  ["workspace_id", "grant_id", "amount", "remaining", "source", "expires_at", "granted_at", "position"])
    holds = Rows("wallet_holds", ["workspace_id", "hold_id"],
                 ["workspace_id", "hold_id", "post_id", "destination_id", "amount", "status", "placed_at",
                  "settled_at", "reason", "position"])
    wallets.load(conn, [(e.workspace_id,) for e in events if e.type in (ev.WorkspaceOpened.type, ev.WalletOpened.type)])
    grants.load(conn, [(e.workspace_id, e.data["grant_id"]) for e in events if e.type == ev.CreditsGranted.type]
                + [(e.workspace_id, b["grant_id"]) for e in events if e.type == ev.HoldConsumed.type
                   for b in e.data["burned"]])
    holds.load(conn, [(e.workspace_id, e.data["hold_id"]) for e in events
                      if e.type in (ev.HoldPlaced.type, ev.HoldConsumed.type, ev.HoldReleased.type)])
    for e in events:
        d, ws, at, t = e.data, e.workspace_id, e.time, e.type
        if t in (ev.WorkspaceOpened.type, ev.WalletOpened.type):
            wallets.insert({"workspace_id": ws, "opened_at": at})
        elif t == ev.CreditsGranted.type:
            grants.insert({"workspace_id": ws, "grant_id": d["grant_id"], "amount": d["amount"],
                           "remaining": d["amount"], "source": d["source"], "expires_at": d["expires_at"],
                           "granted_at": at, "position": e.position})
        elif t == ev.HoldPlaced.type:
            holds.insert({"workspace_id": ws, "hold_id": d["hold_id"], "post_id": d["post_id"],
                          "destination_id": d["destination_id"], "amount": d["amount"], "status": "pending",
                          "placed_at": at, "settled_at": None, "reason": "", "position": e.position})
        elif t in (ev.HoldConsumed.type, ev.HoldReleased.type):
            hold = holds.get((ws, d["hold_id"]))
            if hold is None or hold["status"] != "pending":
                continue  # only the event that ends the hold counts (a redelivery burns nothing)
            holds.changed((ws, d["hold_id"]))
            if t == ev.HoldReleased.type:
                hold.update(status="released", settled_at=at, reason=d["reason"])
                continue
            hold.update(status="consumed", settled_at=at)
            for burn in d["burned"]:
                grant = grants.get((ws, burn["grant_id"]))
                if grant is not None:
                    grant["remaining"] -= burn["amount"]
                    grants.changed((ws, burn["grant_id"]))
    wallets.store(conn)
    grants.store(conn)
    holds.store(conn)


# posts, accounts, workspaces ----------------------------------------------------------------

_POST_TOUCHES = (ev.AttemptStarted, ev.DestinationPublished, ev.RetryScheduled, ev.DestinationThrottled,
                 ev.DestinationFailed, ev.DestinationSkipped, ev.OutcomeUnknown, ev.PostCancelled)


def posts(conn: Connection, events: list[Raw]) -> None:
    events = _only(events, ev.PostScheduled, *_POST_TOUCHES)
    rows = Rows("posts", ["post_id"], ["post_id", "workspace_id", "text", "media_urls", "publish_at", "created_at",
                                       "updated_at"], jsonb=["media_urls"])
    rows.load(conn, [(e.data["post_id"],) for e in events])
    for e in events:
        d = e.data
        if e.type == ev.PostScheduled.type:
            rows.insert({"post_id": d["post_id"], "workspace_id": e.workspace_id, "text": d["text"],
                         "media_urls": list(d["media_urls"]), "publish_at": d["publish_at"], "created_at": e.time,
                         "updated_at": e.time})
        else:
            row = rows.get((d["post_id"],))
            if row is not None and row["updated_at"] < e.time:
                row["updated_at"] = e.time
                rows.changed((d["post_id"],))
    rows.store(conn)


def accounts(conn: Connection, events: list[Raw]) -> None:
    events = _only(events, ev.SocialAccountConnected)
    rows = Rows("social_accounts", ["social_account_id"],
                ["social_account_id", "workspace_id", "platform", "handle", "instance_url", "connected_at", "settings"],
                jsonb=["settings"])
    rows.load(conn, [(e.data["social_account_id"],) for e in events])
    for e in events:
        d = e.data  # never the sealed token
        rows.insert({"social_account_id": d["social_account_id"], "workspace_id": e.workspace_id,
                     "platform": d["platform"], "handle": d["handle"], "instance_url": d["instance_url"],
                     "connected_at": e.time, "settings": d.get("settings") or {}})
    rows.store(conn)


def workspaces(conn: Connection, events: list[Raw]) -> None:
    events = _only(events, ev.WorkspaceOpened)
    rows = Rows("workspaces", ["workspace_id"], ["workspace_id", "name", "tier", "timezone", "limit_overrides",
                                                 "limits", "opened_at"], jsonb=["limit_overrides", "limits"])
    rows.load(conn, [(e.workspace_id,) for e in events])
    for e in events:
        d = e.data
        rows.insert({"workspace_id": e.workspace_id, "name": d["name"], "tier": d["tier"], "timezone": d["timezone"],
                     "limit_overrides": dict(d["limit_overrides"]), "limits": dict(d["limits"]), "opened_at": e.time})
    rows.store(conn)


# audit ------------------------------------------------------------------------------------

_ACCOUNT_EVENTS = (ev.PostScheduled, ev.PostCancelled, ev.AttemptStarted, ev.DestinationPublished, ev.RetryScheduled,
                   ev.DestinationThrottled, ev.DestinationFailed, ev.DestinationSkipped, ev.OutcomeUnknown)


def audit(conn: Connection, events: list[Raw]) -> None:
    events = _only(events, ev.CommandRejected, *_ACCOUNT_EVENTS)
    rejections = Rows("command_rejections", ["workspace_id", "command_id"],
                      ["workspace_id", "command_id", "command_type", "reason_code", "detail", "issued_by", "subjects",
                       "rejected_at", "position"])
    subjects = Rows("command_rejection_subjects", ["workspace_id", "subject", "position", "command_id"],
                    ["workspace_id", "subject", "position", "command_id"], bigint_keys=["position"])
    destinations = Rows("audit_destinations", ["post_id", "destination_id"],
                        ["post_id", "destination_id", "social_account_id"])
    account_events = Rows("audit_account_events", ["workspace_id", "social_account_id", "position"],
                          ["workspace_id", "social_account_id", "position", "post_id", "type", "time", "causation_id",
                           "correlation_id", "aggregate_version", "data"], jsonb=["data"], bigint_keys=["position"])
    rejected = [e for e in events if e.type == ev.CommandRejected.type]
    rejections.load(conn, [(e.workspace_id, e.data["command_id"]) for e in rejected])
    subjects.load(conn, [(e.workspace_id, s, e.position, e.data["command_id"]) for e in rejected
                         for s in e.data.get("subjects", [])])
    publishing = [e for e in events if e.type != ev.CommandRejected.type]
    # The destinations of every post the page touches, as far as the table knows them.
    known = conn.execute("SELECT post_id, destination_id FROM audit_destinations WHERE post_id = ANY(%s)",
                         ([e.data["post_id"] for e in publishing],)).fetchall() if publishing else []
    destinations.load(conn, known)
    by_post: dict[str, list[dict[str, Any]]] = {}
    for row in destinations.rows.values():
        by_post.setdefault(row["post_id"], []).append(row)
    account_events.load(conn, [(e.workspace_id, r["social_account_id"], e.position) for e in publishing
                               for r in by_post.get(e.data["post_id"], [])])
    for e in events:
        d = e.data
        if e.type == ev.CommandRejected.type:
            rejections.insert({"workspace_id": e.workspace_id, "command_id": d["command_id"],
                               "command_type": d["command_type"], "reason_code": d["reason_code"],
                               "detail": d["detail"], "issued_by": d.get("issued_by"),
                               "subjects": list(d.get("subjects", [])), "rejected_at": e.time, "position": e.position})
            for s in d.get("subjects", []):
                subjects.insert({"workspace_id": e.workspace_id, "subject": s, "position": e.position,
                                 "command_id": d["command_id"]})
            continue
        if e.type == ev.PostScheduled.type:
            for x in d["destinations"]:
                row = {"post_id": d["post_id"], "destination_id": x["destination_id"],
                       "social_account_id": x["social_account_id"]}
                if destinations.insert(row):
                    by_post.setdefault(d["post_id"], []).append(row)
            wanted = None
        elif e.type == ev.PostCancelled.type:
            wanted = set(d["cancelled_destinations"])
        else:
            wanted = {d["destination_id"]}
        data = {k: v for k, v in d.items() if k != "sealed_token"}
        for r in by_post.get(d["post_id"], []):
            if wanted is None or r["destination_id"] in wanted:
                account_events.insert({"workspace_id": e.workspace_id, "social_account_id": r["social_account_id"],
                                       "position": e.position, "post_id": d["post_id"], "type": e.type,
                                       "time": e.time, "causation_id": e.causation_id,
                                       "correlation_id": e.correlation_id, "aggregate_version": e.aggregate_version,
                                       "data": data})
    for rows in (rejections, subjects, destinations, account_events):
        rows.store(conn)


# Each set-based path with the event types it folds. It is a second writing of its read model's
# rules, so it is used only while it folds exactly what the live projection applies (``usable``):
# a projection that learns a new event falls back to its own apply until its bulk path follows.
_FOLDS: dict[str, tuple[Callable[[Connection, list[Raw]], None], tuple[type[ev.EventData], ...]]] = {
    "queue": (queue, _QUEUE_EVENTS),
    "wallet": (wallet, _WALLET_EVENTS),
    "posts": (posts, (ev.PostScheduled, *_POST_TOUCHES)),
    "accounts": (accounts, (ev.SocialAccountConnected,)),
    "workspaces": (workspaces, (ev.WorkspaceOpened,)),
    "audit": (audit, (ev.CommandRejected, *_ACCOUNT_EVENTS)),
}


def usable(projections: list[Any]) -> dict[str, Callable[[Connection, list[Raw]], None]]:
    """The bulk paths of ``projections`` that fold exactly the event types each applies."""
    found = {}
    for projection in projections:
        fold = _FOLDS.get(projection.name)
        if fold is not None and {m.type for m in fold[1]} == set(projection.handles):
            found[projection.name] = fold[0]
    return found
