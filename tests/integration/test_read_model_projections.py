"""Read models fed CloudEvents built here, read back through their read functions, on a real
PostgreSQL: wallet, posts, accounts, workspaces, queue (filters and keyset pages) and positions."""

from __future__ import annotations

import base64
import itertools
import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from herald.storage import db
from projections import accounts, catalogue, positions, posts, queue, wallet, workspaces
from schemas import api
from schemas import events as ev
from schemas.events import CloudEvent

T0 = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
_positions = itertools.count(1)


class Stream:
    """Events of one workspace, numbered by a global position as the event store would."""

    def __init__(self, workspace_id: str | None = None) -> None:
        self.ws = workspace_id or f"ws-{secrets.token_hex(4)}"
        self.versions: dict[str, int] = {}
        self.clock = T0
        self.events: list[CloudEvent] = []

    def __call__(self, data: ev.EventData, aggregate: str | None = None, *, tick: float = 1.0) -> CloudEvent:
        aggregate = aggregate or self.ws
        version = self.versions[aggregate] = self.versions.get(aggregate, 0) + 1
        self.clock += timedelta(seconds=tick)
        event = CloudEvent(
            id=f"{aggregate}/{version}", source="/herald/test", type=data.type, subject=aggregate, time=self.clock,
            data=data.model_dump(mode="json"), workspaceid=self.ws, aggregateid=aggregate, aggregatetype="test",
            aggregateversion=version, position=next(_positions), causationid="cmd", correlationid="corr",
        )
        self.events.append(event)
        return event

    def opened(self, tier: str = "pro", queue_size: int = 50) -> list[CloudEvent]:
        return [
            self(ev.WorkspaceOpened(name="Acme", tier=tier, timezone="Europe/Berlin",
                                    limit_overrides={"queue_size": queue_size}, limits={"queue_size": queue_size, "accounts": 5})),
            self(ev.WalletOpened(wallet_id=self.ws)),
        ]

    def scheduled(self, post_id: str, accounts_: list[str], publish_at: datetime, text: str = "hello") -> CloudEvent:
        return self(ev.PostScheduled(
            post_id=post_id, text=text, media_urls=["https://example.org/a.png"], publish_at=publish_at,
            destinations=[
                ev.Destination(destination_id=a, social_account_id=a, platform="sandbox", handle=f"@{a}",
                               text=f"{text} on {a}", hold_id=f"hold-{post_id}-{a}")
                for a in accounts_
            ],
        ), post_id)


def apply(conn: psycopg.Connection, events: list[CloudEvent]) -> None:
    with conn.transaction():
        for event in events:
            catalogue.apply_all(conn, event)
        positions.record(conn, events)


def _connect(url: str) -> psycopg.Connection:
    conn = psycopg.connect(url, autocommit=True)
    db.apply_ddl(url, *catalogue.DDL)
    return conn


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    with _connect(database_url) as connection:
        yield connection


def test_ddl_is_idempotent(database_url, conn):
    db.apply_ddl(database_url, *catalogue.DDL)
    db.apply_ddl(database_url, queue.DDL)
    assert {p.name for p in catalogue.PROJECTIONS} == {"queue", "wallet", "posts", "accounts", "workspaces", "audit",
                                                       "credit_clock", "notifications", "usage", "tiers", "generations",
                                                       "notification_deliveries", "calendar", "automation_rules",
                                                       "brand_voices"}
    assert "read_model_positions" in catalogue.TABLES, "the positions table comes with the read models"
    for table in catalogue.TABLES:
        conn.execute(f"SELECT * FROM {table} LIMIT 0")


# Wallet ----------------------------------------------------------------------------------


def test_wallet_read_model(conn):
    s = Stream()
    assert wallet.read_wallet(conn, s.ws) is None
    apply(conn, s.opened())
    assert wallet.read_wallet(conn, s.ws) == {"workspace_id": s.ws, "available": 0, "granted": 0, "held": 0,
                                              "grants": [], "holds": []}
    expires = T0 + timedelta(days=30)
    apply(conn, [
        s(ev.CreditsGranted(grant_id="g-late", amount=3, source="invoice-1", expires_at=None)),
        s(ev.CreditsGranted(grant_id="g-soon", amount=2, source="promo", expires_at=expires)),
        s(ev.HoldPlaced(hold_id="h1", post_id="p1", destination_id="a", amount=1)),
        s(ev.HoldPlaced(hold_id="h2", post_id="p1", destination_id="b", amount=1)),
        s(ev.HoldPlaced(hold_id="h3", post_id="p2", destination_id="a", amount=2)),
        s(ev.HoldConsumed(hold_id="h1", amount=1, burned=[ev.Burn(grant_id="g-soon", amount=1)])),
        s(ev.HoldConsumed(hold_id="h3", amount=2, burned=[ev.Burn(grant_id="g-soon", amount=1),
                                                          ev.Burn(grant_id="g-late", amount=1)])),
        s(ev.HoldReleased(hold_id="h2", amount=1, reason="cancelled")),
        s(ev.HoldPlaced(hold_id="h4", post_id="p3", destination_id="a", amount=1)),
    ])
    view = wallet.read_wallet(conn, s.ws)
    assert view == {
        "workspace_id": s.ws, "available": 1, "granted": 2, "held": 1,
        "grants": [{"grant_id": "g-late", "amount": 3, "remaining": 2, "source": "invoice-1", "expires_at": None,
                    "expired": 0}],
        "holds": [{"hold_id": "h4", "post_id": "p3", "destination_id": "a", "amount": 1, "status": "pending"}],
    }
    api.WalletView(**view)
    settled = dict(conn.execute("SELECT hold_id, status || ':' || reason FROM wallet_holds WHERE workspace_id = %s",
                                (s.ws,)).fetchall())
    assert settled == {"h1": "consumed:", "h2": "released:cancelled", "h3": "consumed:", "h4": "pending:"}
    assert conn.execute("SELECT granted, held, available FROM wallet_balances WHERE workspace_id = %s",
                        (s.ws,)).fetchone() == (2, 1, 1)
    # Redelivering everything (a consumption included) changes nothing.
    apply(conn, s.events)
    assert wallet.read_wallet(conn, s.ws) == view


def test_wallet_expiry_is_returned_as_a_time(conn):
    s = Stream()
    expires = datetime(2031, 2, 3, 4, 5, 6, 789000, tzinfo=UTC)
    apply(conn, [*s.opened(), s(ev.CreditsGranted(grant_id="g", amount=1, source="x", expires_at=expires))])
    (grant,) = wallet.read_wallet(conn, s.ws)["grants"]
    assert grant["expires_at"] == expires


_wallet_ops = st.lists(
    st.one_of(
        st.tuples(st.just("grant"), st.integers(1, 5), st.sampled_from([None, 1, 2, 3])),
        st.tuples(st.just("hold"), st.integers(1, 3), st.just(None)),
        st.tuples(st.just("consume"), st.integers(0, 20), st.just(None)),
        st.tuples(st.just("release"), st.integers(0, 20), st.just(None)),
        st.tuples(st.just("redeliver"), st.integers(0, 40), st.just(None)),
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=_wallet_ops)
def test_wallet_balances_follow_the_invariant_arithmetic(conn, ops):
    """A wallet as the domain would drive it (holds only when covered, consumption burning the
    earliest-expiring grant first), with events redelivered at random: the read model shows
    granted = Σ remaining, held = Σ pending, available = granted − held, live grants and pending holds."""
    s = Stream()
    apply(conn, s.opened())
    grants: dict[str, dict] = {}  # insertion order = grant order
    holds: dict[str, dict] = {}
    for n, (op, x, y) in enumerate(ops):
        granted = sum(g["remaining"] for g in grants.values())
        held = sum(h["amount"] for h in holds.values() if h["status"] == "pending")
        pending = [h_id for h_id, h in holds.items() if h["status"] == "pending"]
        if op == "grant":
            expires = None if y is None else T0 + timedelta(days=y)
            grants[f"g{n}"] = {"grant_id": f"g{n}", "amount": x, "remaining": x, "source": "s", "expires_at": expires,
                               "expired": 0}
            apply(conn, [s(ev.CreditsGranted(grant_id=f"g{n}", amount=x, source="s", expires_at=expires))])
        elif op == "hold" and granted - held >= x:
            holds[f"h{n}"] = {"hold_id": f"h{n}", "post_id": f"p{n}", "destination_id": "d", "amount": x,
                              "status": "pending"}
            apply(conn, [s(ev.HoldPlaced(hold_id=f"h{n}", post_id=f"p{n}", destination_id="d", amount=x))])
        elif op == "consume" and pending:
            hold = holds[pending[x % len(pending)]]
            hold["status"] = "consumed"
            burned, due = [], hold["amount"]
            for g in sorted(grants.values(), key=lambda g: (g["expires_at"] is None, g["expires_at"] or T0)):
                take = min(g["remaining"], due)
                if take:
                    g["remaining"] -= take
                    due -= take
                    burned.append(ev.Burn(grant_id=g["grant_id"], amount=take))
            assert due == 0
            apply(conn, [s(ev.HoldConsumed(hold_id=hold["hold_id"], amount=hold["amount"], burned=burned))])
        elif op == "release" and pending:
            hold = holds[pending[x % len(pending)]]
            hold["status"] = "released"
            apply(conn, [s(ev.HoldReleased(hold_id=hold["hold_id"], amount=hold["amount"], reason="r"))])
        elif op == "redeliver":
            apply(conn, [s.events[x % len(s.events)]])

    view = wallet.read_wallet(conn, s.ws)
    granted = sum(g["remaining"] for g in grants.values())
    held = sum(h["amount"] for h in holds.values() if h["status"] == "pending")
    assert (view["granted"], view["held"], view["available"]) == (granted, held, granted - held)
    assert view["available"] >= 0
    assert view["grants"] == [g for g in grants.values() if g["remaining"] > 0]
    assert view["holds"] == [h for h in holds.values() if h["status"] == "pending"]
    assert conn.execute("SELECT granted, held, available FROM wallet_balances WHERE workspace_id = %s",
                        (s.ws,)).fetchone() == (granted, held, granted - held)


# Posts -----------------------------------------------------------------------------------


def test_post_read_model_follows_each_destination(conn):
    s = Stream()
    publish_at = T0 + timedelta(hours=1)
    apply(conn, [*s.opened(), s.scheduled("p1", ["zed", "amy"], publish_at, text="launch")])
    assert posts.read_post(conn, s.ws, "missing") is None
    assert posts.read_post(conn, "another-workspace", "p1") is None

    view = posts.read_post(conn, s.ws, "p1")
    api.PostView(**view)
    assert (view["status"], view["text"], view["media_urls"], view["publish_at"]) == (
        "scheduled", "launch", ["https://example.org/a.png"], publish_at)
    assert [d["destination_id"] for d in view["destinations"]] == ["zed", "amy"], "in the order scheduled"
    assert view["destinations"][0] == {
        "destination_id": "zed", "social_account_id": "zed", "platform": "sandbox", "handle": "@zed",
        "text": "launch on zed", "status": "pending", "attempt": 0, "due_at": publish_at,
        "platform_post_id": None, "url": None, "reason": "",
    }

    def status() -> tuple[str, list[str]]:
        v = posts.read_post(conn, s.ws, "p1")
        return v["status"], [d["status"] for d in v["destinations"]]

    common = {"post_id": "p1", "destination_id": "zed"}
    apply(conn, [s(ev.AttemptStarted(**common, attempt=1, attempt_key="k1", social_account_id="zed",
                                     platform="sandbox", handle="@zed", instance_url=None, sealed_token="SEALED",
                                     text="launch on zed", media_urls=[]), "p1")])
    assert status() == ("publishing", ["attempting", "pending"])
    retry_at = publish_at + timedelta(minutes=1)
    apply(conn, [s(ev.RetryScheduled(**common, attempt=1, retry_at=retry_at, error_kind="timeout", detail="slow"), "p1")])
    assert status() == ("scheduled", ["retry_scheduled", "pending"])
    apply(conn, [
        s(ev.AttemptStarted(**common, attempt=2, attempt_key="k2", social_account_id="zed", platform="sandbox",
                            handle="@zed", instance_url=None, sealed_token="SEALED", text="launch on zed",
                            media_urls=[]), "p1"),
        s(ev.DestinationPublished(**common, attempt=2, hold_id="hold-p1-zed", platform_post_id="remote-1",
                                  url="https://sandbox/1"), "p1"),
    ])
    assert status() == ("scheduled", ["published", "pending"])
    last = s(ev.PostCancelled(post_id="p1", reason="user", cancelled_destinations=["amy"],
                              released_holds=["hold-p1-amy"]), "p1")
    apply(conn, [last])
    view = posts.read_post(conn, s.ws, "p1")
    assert (view["status"], [d["status"] for d in view["destinations"]]) == ("partially_published",
                                                                             ["published", "cancelled"])
    zed = view["destinations"][0]
    assert (zed["attempt"], zed["due_at"], zed["platform_post_id"], zed["url"]) == (2, retry_at, "remote-1",
                                                                                    "https://sandbox/1")
    assert conn.execute("SELECT created_at < updated_at, updated_at FROM posts WHERE post_id = 'p1'").fetchone() == (
        True, last.time)
    api.PostView(**view)


def test_queue_text_column_is_filled_on_upgraded_rows(conn):
    """Rows projected before the text column existed get it when their PostScheduled is applied
    again (a rebuild through the catalogue), without losing the state they reached since."""
    s = Stream()
    apply(conn, [*s.opened(), s.scheduled("p1", ["a"], T0)])
    apply(conn, [s(ev.DestinationSkipped(post_id="p1", destination_id="a", hold_id="h", reason="missed"), "p1")])
    conn.execute("UPDATE queue_destinations SET text = NULL, ordinal = NULL")
    apply(conn, s.events)
    assert conn.execute("SELECT text, ordinal, status, reason FROM queue_destinations").fetchall() == [
        ("hello on a", 0, "skipped", "missed")]


_QUEUE_DDL_BEFORE_TEXT = """
CREATE TABLE queue_destinations (
    post_id text NOT NULL, destination_id text NOT NULL, workspace_id text NOT NULL,
    social_account_id text NOT NULL, platform text NOT NULL, handle text NOT NULL, due_at timestamptz NOT NULL,
    status text NOT NULL, attempt integer NOT NULL DEFAULT 0, platform_post_id text, url text,
    reason text NOT NULL DEFAULT '', updated_at timestamptz NOT NULL, PRIMARY KEY (post_id, destination_id));
CREATE TABLE queue_workspaces (workspace_id text PRIMARY KEY, tier text NOT NULL, queue_size integer NOT NULL);
CREATE VIEW queue_workspace_summary AS
SELECT w.workspace_id, w.tier, w.queue_size,
       (SELECT count(DISTINCT d.post_id) FROM queue_destinations d
         WHERE d.workspace_id = w.workspace_id
           AND d.status NOT IN ('published', 'failed', 'skipped', 'cancelled')) AS waiting
  FROM queue_workspaces w;
"""


def test_a_database_from_before_the_text_column_upgrades(database_url):
    """The DDL upgrades tables made by the earlier queue projection; replaying the history
    through the catalogue then fills the new columns and builds the new read models."""
    db.apply_ddl(database_url, _QUEUE_DDL_BEFORE_TEXT)
    s = Stream()
    history = [*s.opened(), s.scheduled("p1", ["b", "a"], T0),
               s(ev.DestinationSkipped(post_id="p1", destination_id="a", hold_id="h", reason="missed"), "p1")]
    with psycopg.connect(database_url, autocommit=True) as old:
        old.execute("INSERT INTO queue_workspaces VALUES (%s, 'pro', 50)", (s.ws,))
        for d, status in (("b", "pending"), ("a", "skipped")):
            old.execute("INSERT INTO queue_destinations (post_id, destination_id, workspace_id, social_account_id,"
                        " platform, handle, due_at, status, updated_at) VALUES ('p1', %s, %s, %s, 'sandbox', %s, %s,"
                        " %s, %s)", (d, s.ws, d, f"@{d}", T0, status, T0))
    with _connect(database_url) as conn:
        db.apply_ddl(database_url, *catalogue.DDL)
        assert posts.read_post(conn, s.ws, "p1") is None, "the posts table starts empty"
        apply(conn, history)
        view = posts.read_post(conn, s.ws, "p1")
        assert [(d["destination_id"], d["text"], d["status"]) for d in view["destinations"]] == [
            ("b", "hello on b", "pending"), ("a", "hello on a", "skipped")]
        assert view["status"] == "scheduled"
        assert queue.read_queue(conn, s.ws)["waiting"] == 1


# Accounts and workspaces -----------------------------------------------------------------


def test_accounts_read_model_never_holds_the_token(conn):
    s, other = Stream(), Stream()
    token = f"SEALED-{secrets.token_hex(8)}"
    apply(conn, [
        *s.opened(),
        s(ev.SocialAccountConnected(social_account_id="acc-1", platform="mastodon", handle="@me",
                                    instance_url="https://mastodon.example", sealed_token=token), "acc-1"),
        s(ev.SocialAccountConnected(social_account_id="acc-2", platform="sandbox", handle="@you",
                                    instance_url=None, sealed_token=token), "acc-2"),
        other(ev.SocialAccountConnected(social_account_id="acc-3", platform="sandbox", handle="@them",
                                        instance_url=None, sealed_token=token), "acc-3"),
    ])
    one = accounts.read_account(conn, s.ws, "acc-1")
    assert one == {"social_account_id": "acc-1", "workspace_id": s.ws, "platform": "mastodon", "handle": "@me",
                   "instance_url": "https://mastodon.example", "connected_at": one["connected_at"],
                   "status": "active", "needs_reconnect_reason": None, "settings": {}}
    assert accounts.read_account(conn, s.ws, "acc-3") is None, "another workspace's account is invisible"
    assert accounts.read_account(conn, other.ws, "acc-3")["handle"] == "@them"
    assert [a["social_account_id"] for a in accounts.list_accounts(conn, s.ws)] == ["acc-1", "acc-2"]
    assert accounts.list_accounts(conn, "nobody") == []
    for table in catalogue.TABLES:
        rows = conn.execute(f"SELECT t::text FROM {table} t").fetchall()
        assert not [r for r in rows if token in r[0]], f"{table} holds the sealed token"
    columns = {r[0] for r in conn.execute("SELECT column_name FROM information_schema.columns"
                                          " WHERE table_name = 'social_accounts'")}
    assert not {c for c in columns if "token" in c}


def test_workspace_read_model(conn):
    s = Stream()
    assert workspaces.read_workspace(conn, s.ws) is None
    opened = s.opened(tier="starter", queue_size=7)
    apply(conn, opened)
    assert workspaces.read_workspace(conn, s.ws) == {
        "workspace_id": s.ws, "name": "Acme", "tier": "starter", "timezone": "Europe/Berlin",
        "limit_overrides": {"queue_size": 7}, "limits": {"queue_size": 7, "accounts": 5}, "opened_at": opened[0].time,
        "missed_window_s": None,
    }
    summary = queue.read_queue(conn, s.ws)
    assert (summary["tier"], summary["queue_size"], summary["waiting"]) == ("starter", 7, 0)


# Queue -----------------------------------------------------------------------------------


def _busy_queue(conn) -> tuple[Stream, list[tuple]]:
    """A workspace with posts in every destination state, several due at the same moment
    (so the tie-breakers matter); returns the active (due_at, post_id, destination_id) keys."""
    s = Stream()
    apply(conn, s.opened())
    events = []
    for n in range(30):
        due = T0 + timedelta(minutes=n // 3)  # three posts share each due time
        events.append(s.scheduled(f"p{n:02d}", ["b", "a"] if n % 2 else ["a"], due))
    apply(conn, events)
    changes = []
    for n in range(0, 30, 5):
        changes.append(s(ev.DestinationPublished(post_id=f"p{n:02d}", destination_id="a", attempt=1, hold_id="h",
                                                 platform_post_id="r", url=None), f"p{n:02d}"))
    for n in range(1, 30, 5):
        changes.append(s(ev.PostCancelled(post_id=f"p{n:02d}", reason="user", cancelled_destinations=["a", "b"],
                                          released_holds=[]), f"p{n:02d}"))
    for n in range(2, 30, 5):
        changes.append(s(ev.DestinationFailed(post_id=f"p{n:02d}", destination_id="a", attempt=4, hold_id="h",
                                              error_kind=None, detail="gone"), f"p{n:02d}"))
    for n in range(3, 30, 10):
        changes.append(s(ev.DestinationSkipped(post_id=f"p{n:02d}", destination_id="b", hold_id="h",
                                               reason="missed"), f"p{n:02d}"))
        changes.append(s(ev.OutcomeUnknown(post_id=f"p{n:02d}", destination_id="a", attempt=1, detail="?"),
                         f"p{n:02d}"))
    for n in range(4, 30, 10):
        changes.append(s(ev.RetryScheduled(post_id=f"p{n:02d}", destination_id="a", attempt=1,
                                           retry_at=T0 + timedelta(minutes=2), error_kind=None, detail="later"),
                         f"p{n:02d}"))
    for n in range(8, 30, 10):
        changes.append(s(ev.AttemptStarted(post_id=f"p{n:02d}", destination_id="a", attempt=1, attempt_key="k",
                                           social_account_id="a", platform="sandbox", handle="@a", instance_url=None,
                                           sealed_token="x", text="t", media_urls=[]), f"p{n:02d}"))
    apply(conn, changes)
    other = Stream()
    apply(conn, [*other.opened(), other.scheduled("elsewhere", ["a"], T0)])
    active = sorted(conn.execute(
        "SELECT due_at, post_id, destination_id FROM queue_destinations WHERE workspace_id = %s"
        " AND status NOT IN ('published', 'failed', 'skipped', 'cancelled')", (s.ws,)).fetchall())
    return s, active


def _pages(conn, ws: str, limit: int, **filters) -> list[list[dict]]:
    pages, cursor = [], None
    while True:
        page = queue.read_queue(conn, ws, cursor=cursor, limit=limit, **filters)
        pages.append(page["destinations"])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 100


def _keys(pages: list[list[dict]]) -> list[tuple]:
    return [(d["due_at"], d["post_id"], d["destination_id"]) for page in pages for d in page]


def test_queue_default_read_hides_settled_destinations(conn):
    s, active = _busy_queue(conn)
    view = queue.read_queue(conn, s.ws, limit=queue.MAX_LIMIT)
    statuses = {d["status"] for d in view["destinations"]}
    assert statuses == set(queue.ACTIVE), "every waiting and in-flight status is shown, no settled one"
    assert _keys([view["destinations"]]) == active
    assert view["next_cursor"] is None
    waiting_posts = {post for _, post, _ in active}
    assert (view["tier"], view["queue_size"], view["waiting"]) == ("pro", 50, len(waiting_posts))
    for entry in view["destinations"]:
        api.QueueEntry(**entry)
    assert set(view) == {"workspace_id", "tier", "queue_size", "waiting", "destinations", "next_cursor"}


@pytest.mark.parametrize("limit", [1, 4, 7, 50])
def test_queue_pages_return_every_active_row_once_in_order(conn, limit):
    s, active = _busy_queue(conn)
    pages = _pages(conn, s.ws, limit)
    assert _keys(pages) == active
    assert all(len(p) == limit for p in pages[:-1]) and 0 < len(pages[-1]) <= limit


def test_queue_filters(conn):
    s, active = _busy_queue(conn)
    everything = _keys(_pages(conn, s.ws, 6, statuses=sorted(queue.STATUSES)))
    assert everything == sorted(conn.execute("SELECT due_at, post_id, destination_id FROM queue_destinations"
                                             " WHERE workspace_id = %s", (s.ws,)).fetchall())
    published = _pages(conn, s.ws, 3, statuses=["published"])
    assert {d["status"] for p in published for d in p} == {"published"} and len(_keys(published)) == 6
    retrying = _pages(conn, s.ws, 2, statuses=["retry_scheduled", "pending"])
    assert {d["status"] for p in retrying for d in p} == {"retry_scheduled", "pending"}
    only_b = _keys(_pages(conn, s.ws, 5, social_account_id="b"))
    assert only_b == [k for k in active if k[2] == "b"]
    window = _keys(_pages(conn, s.ws, 5, due_from=T0 + timedelta(minutes=2), due_to=T0 + timedelta(minutes=5)))
    assert window == [k for k in active if T0 + timedelta(minutes=2) <= k[0] < T0 + timedelta(minutes=5)]
    assert queue.read_queue(conn, "nobody") == {"workspace_id": "nobody", "tier": None, "queue_size": None,
                                                "waiting": 0, "destinations": [], "next_cursor": None}


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


@pytest.mark.parametrize("cursor", [
    "", "not a cursor!", "%%%%", _b64(b"\xff\xfe"), _b64(b"{}"), _b64(b"[1, 2, 3]"), _b64(b'["x", "p", "d"]'),
    _b64(b'["2030-01-07T09:00:00", "p", "d"]'), _b64(json.dumps(["2030-01-07T09:00:00+00:00", "p"]).encode()),
])
def test_malformed_cursor_is_a_value_error(conn, cursor):
    with pytest.raises(ValueError, match="malformed queue cursor"):
        queue.read_queue(conn, "ws", cursor=cursor)


@pytest.mark.parametrize("arguments", [
    {"statuses": ["pending", "done"]}, {"statuses": []}, {"statuses": ["PENDING"]}, {"limit": 0},
    {"limit": queue.MAX_LIMIT + 1},
])
def test_bad_queue_arguments_are_value_errors(conn, arguments):
    with pytest.raises(ValueError):
        queue.read_queue(conn, "ws", **arguments)


def test_cursor_round_trips():
    due = datetime(2030, 1, 7, 9, 0, 0, 123456, tzinfo=UTC)
    assert queue.decode_cursor(queue.encode_cursor(due, "p/1", "dé")) == (due, "p/1", "dé")


# Positions and the catalogue -------------------------------------------------------------


def test_positions_record_the_highest_applied_per_workspace(conn):
    a, b = Stream(), Stream()
    assert positions.read_position(conn, a.ws) == 0
    first = [*a.opened(), *b.opened()]
    later = a(ev.CreditsGranted(grant_id="g", amount=1, source="s", expires_at=None))
    positions.record(conn, [later, *first])
    assert positions.read_position(conn, a.ws) == later.position
    assert positions.read_position(conn, b.ws) == first[3].position
    positions.record(conn, first)  # an older batch again never lowers a position
    assert positions.read_position(conn, a.ws) == later.position
    positions.record(conn, [])


def test_events_no_projection_handles_are_not_parsed(conn):
    s = Stream()
    unparseable = CloudEvent(
        id="x/1", source="/herald/test", type=ev.CommandAccepted.type, subject="x", time=T0, data={"junk": True},
        workspaceid=s.ws, aggregateid="x", aggregatetype="test", aggregateversion=1, position=next(_positions),
        causationid="c", correlationid="c",
    )
    catalogue.apply_all(conn, unparseable)
    for projection in catalogue.PROJECTIONS:
        projection.apply(conn, unparseable)


def _history() -> list[CloudEvent]:
    s = Stream()
    s.opened()
    s(ev.SocialAccountConnected(social_account_id="a", platform="sandbox", handle="@a", instance_url=None,
                                sealed_token="t"), "a")
    s(ev.CreditsGranted(grant_id="g", amount=5, source="s", expires_at=None))
    s.scheduled("p1", ["a"], T0)
    s(ev.HoldPlaced(hold_id="hold-p1-a", post_id="p1", destination_id="a", amount=1))
    s.scheduled("p2", ["a"], T0 + timedelta(minutes=1))
    s(ev.HoldPlaced(hold_id="hold-p2-a", post_id="p2", destination_id="a", amount=1))
    s(ev.AttemptStarted(post_id="p1", destination_id="a", attempt=1, attempt_key="k", social_account_id="a",
                        platform="sandbox", handle="@a", instance_url=None, sealed_token="t", text="x",
                        media_urls=[]), "p1")
    s(ev.DestinationPublished(post_id="p1", destination_id="a", attempt=1, hold_id="hold-p1-a",
                              platform_post_id="r", url=None), "p1")
    s(ev.HoldConsumed(hold_id="hold-p1-a", amount=1, burned=[ev.Burn(grant_id="g", amount=1)]))
    s(ev.PostCancelled(post_id="p2", reason="user", cancelled_destinations=["a"], released_holds=["hold-p2-a"]), "p2")
    s(ev.HoldReleased(hold_id="hold-p2-a", amount=1, reason="cancelled"))
    s(ev.CommandRejected(command_id="c9", command_type="cancel_post.v1", reason_code="post_not_cancellable",
                         detail="post is cancelled", issued_by="api-key:k", subjects=["post:p2"]), "c9")
    # The content workflow (docs/content-workflow.md): a draft rejected, approved, scheduled, revised.
    s(ev.ContentPolicySet(requires_approval=True, disconnect_waiting="hold", actor="api-key:k"))
    s(ev.PostDrafted(post_id="p3", stage="draft", text="plan", media_urls=[], publish_at=None, actor="api-key:k",
                     reason="drafted", destinations=[ev.DraftDestination(destination_id="a", social_account_id="a",
                                                                         platform="sandbox", handle="@a")]), "p3")
    s(ev.PostSubmitted(post_id="p3", actor="api-key:k", reason="ready"), "p3")
    s(ev.PostRejected(post_id="p3", actor="api-key:boss", reason="add a link"), "p3")
    s(ev.PostSubmitted(post_id="p3", actor="api-key:k", reason="ready now"), "p3")
    s(ev.PostApproved(post_id="p3", actor="api-key:boss", reason="ok"), "p3")
    s(ev.PostScheduled(post_id="p3", text="plan", media_urls=[], publish_at=T0 + timedelta(hours=2), actor="api-key:boss",
                       reason="approved", destinations=[ev.Destination(
                           destination_id="a", social_account_id="a", platform="sandbox", handle="@a", text="plan",
                           hold_id="hold-p3-a")]), "p3")
    s(ev.PostRevised(post_id="p3", change="reschedule", text="plan", media_urls=[], publish_at=T0 + timedelta(hours=3),
                     destinations=[ev.Destination(destination_id="a", social_account_id="a", platform="sandbox",
                                                  handle="@a", text="plan", hold_id="hold-p3-a-2")],
                     released_holds=["hold-p3-a"], actor="api-key:k", reason="later"), "p3")
    # Credits and tiers (docs/credits.md): due items, notices, usage, the period, tiers.
    s(ev.CreditPeriodStarted(period_start=T0, renews_at=T0 + timedelta(days=31), timezone="Europe/Berlin",
                             renewal_day=7, tier="pro", monthly_credits=500, carryover_cap=0, low_credit_threshold=100))
    s(ev.CreditsGranted(grant_id="g-promo", amount=2, source="promotion", expires_at=T0 + timedelta(days=10)))
    s(ev.CreditsGranted(grant_id="g-gone", amount=2, source="promotion", expires_at=T0 + timedelta(days=1)))
    s(ev.GrantExpired(grant_id="g-gone", amount=2, reserved=0, reason="expired"))
    s(ev.CreditsLow(available=4, threshold=100, period_start=T0))
    s(ev.TierDefined(tier="starter", version=1, limits={"queue_size": 7}), "tiers")
    s(ev.TierChangeScheduled(from_tier="pro", to_tier="free", effective_at=T0 + timedelta(days=31)))
    # AI generation (docs/generation.md): the log.
    s(ev.GenerationRequested(generation_id="gen-1", topic="rye", platforms=["x"], tone="", language="en", context="",
                             media_description="", brand_voice_version=0, day="2030-01-01"), "gen-1")
    s(ev.GenerationSucceeded(generation_id="gen-1", captions={"x": "Rye!"}, hashtags=["rye"], provider="offline",
                             model="template-v1", prompt_sha256="0" * 64, tokens_in=0, tokens_out=0, latency_ms=1),
      "gen-1")
    s(ev.BrandVoiceSet(version=1, tone="warm", audience="bakers", niche="bread", words_to_use=["crumb"],
                       words_to_avoid=[], example_posts=[], emoji_policy="none", hashtag_policy="few"))
    # Notifications (docs/notifications.md): the delivery log.
    s(ev.NotificationDeliveryQueued(delivery_id="msg_1", channel="webhook", target_id="whep_1", cause="post_failed",
                                    notice_event_id="n1"), "msg_1")
    s(ev.NotificationDeliverySent(delivery_id="msg_1", channel="webhook", target_id="whep_1", cause="post_failed",
                                  attempt=1, status_code=204, notice_event_ids=["n1"]), "msg_1")
    # Planning (docs/calendar.md): a schedule, its slots, a series.
    s(ev.PostingScheduleSet(social_account_id="a", timezone="Europe/Berlin", posts_per_week=1,
                            slots=[ev.WeeklySlotData(weekday="mon", time="09:00")], active=True), "a")
    s(ev.SlotsPlanned(social_account_id="a", window_start=T0, window_end=T0 + timedelta(days=28), slots=[
        ev.PlannedSlot(slot_id="slot-1", at=T0 + timedelta(days=6), local="2030-01-14T09:00",
                       wanted="2030-01-14T09:00")]), "a")
    s(ev.SeriesDefined(series_id="s1", kind="recurring", rrule="FREQ=WEEKLY", starts_at="2030-01-07T10:00",
                       timezone="Europe/Berlin", destinations=["a"],
                       items=[ev.SeriesItemData(item_id="i", text="weekly", media_urls=[])], skip_days=0, active=True),
      "s1")
    # Automation rules (docs/generation.md): a rule and its stats.
    s(ev.AutomationRuleCreated(rule_id="r1", definition=ev.RuleDefinition(
        name="weekly", schedule_kind="cron", schedule="0 9 * * 1", anchor="2030-01-07T09:00", timezone="Europe/Berlin",
        topic="rye", tone="", language="en", context="", platforms=["sandbox"], destinations=["a"],
        destination_platforms={"a": "sandbox"}, approval_mode="auto_schedule", catch_up_window_s=3600),
        next_run_at=T0 + timedelta(days=7)), "r1")
    return s.events


def _snapshot(conn) -> dict[str, list]:
    snapshot = {}
    for table in catalogue.TABLES:
        query = f"SELECT to_jsonb(t) - 'updated_at' FROM {table} t" if table == "read_model_positions" else \
            f"SELECT to_jsonb(t) FROM {table} t"
        snapshot[table] = sorted(json.dumps(r[0], sort_keys=True) for r in conn.execute(query))
    return snapshot


def test_a_rebuild_with_redeliveries_equals_a_clean_build(pg_url, conn):
    history = _history()
    apply(conn, history)
    clean = _snapshot(conn)
    assert all(clean[t] for t in catalogue.TABLES), "every table got rows"
    name = f"herald_t_{secrets.token_hex(6)}"
    db.create_database(pg_url, name)
    try:
        with _connect(db.with_database(pg_url, name)) as other:
            # Every event delivered twice, and the first half once more after the end, in small batches.
            redelivered = [e for e in history for _ in (0, 1)] + history[: len(history) // 2]
            for start in range(0, len(redelivered), 3):
                apply(other, redelivered[start:start + 3])
            assert _snapshot(other) == clean
    finally:
        db.drop_database(pg_url, name)
