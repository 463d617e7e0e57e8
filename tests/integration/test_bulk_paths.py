"""Every read model's bulk path (``projections.bulk``) against its ``apply``, on random event
streams built here (hypothesis), on a real PostgreSQL: one schema gets the events one by one as
the live consumer applies them, the other gets them in pages through the bulk paths as
``herald rebuild`` does; every table must be equal.

The streams go beyond what commands make today: events no command makes yet
(``GenerationCounted``), repeats of an event's content at a later position, holds settled twice,
grants expired in several steps, a notice raised again after it was read, pages of any size.
Shapes the domain never records are left out (a burn listing a grant twice, a carryover drawing
from anything but the period's monthly and carried-over grants)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from projections import bulk, catalogue, positions
from schemas import events as ev
from schemas.events import CloudEvent

pytestmark = pytest.mark.integration

T0 = datetime(2030, 3, 30, 20, 0, tzinfo=UTC)  # Europe/Berlin moves to summer time that night
WORKSPACES = ("ws-a", "ws-b")
GRANTS = ("g0", "g1")
MONTHLY = ("m0", "m1")
HOLDS = ("h0", "h1")
POSTS = ("p0", "p1")
ACCOUNTS = ("acc0", "acc1")
LIMITS = {"queue_size": 5, "accounts_per_platform": 2, "daily_posts_per_platform": 3}
_positions = itertools.count(1)


@pytest.fixture
def schemas(database_url: str) -> Iterator[tuple[psycopg.Connection, psycopg.Connection]]:
    """A connection to a ``live`` and one to a ``rebuilt`` schema, each with every read model's tables."""
    conns = []
    for schema in ("live", "rebuilt"):
        conn = psycopg.connect(database_url, autocommit=True)
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"SET search_path = {schema}")
        for ddl in (*(p.ddl for p in catalogue.PROJECTIONS), positions.DDL):
            conn.execute(ddl)
        conns.append(conn)
    yield conns[0], conns[1]
    for conn in conns:
        conn.close()


def _data(draw, kind: str, seen_days: list[str], scheduled: list[str]) -> ev.EventData:
    """One event's data of the kind, from a small alphabet of ids so that events meet. A
    destination's outcome comes after its post was scheduled, as in every stream the domain records."""
    grant, hold, post, account = (draw(st.sampled_from(x)) for x in (GRANTS, HOLDS, POSTS, ACCOUNTS))
    if kind in ("published", "skipped", "failed"):
        if not scheduled:
            kind = "schedule"
        else:
            post = draw(st.sampled_from(scheduled))
    amount = draw(st.integers(0, 4))
    at = T0 + timedelta(hours=draw(st.integers(1, 200)))
    match kind:
        case "grant":
            source = draw(st.sampled_from(["purchase", "promotion", "monthly", "manual"]))
            grant = draw(st.sampled_from(MONTHLY)) if source == "monthly" else grant
            return ev.CreditsGranted(grant_id=grant, amount=amount + 1, source=source,
                                     expires_at=draw(st.sampled_from([None, at])))
        case "hold":
            return ev.HoldPlaced(hold_id=hold, post_id=post, destination_id=account, amount=1,
                                 expires_at=draw(st.sampled_from([None, at])))
        case "consume":
            burned = draw(st.lists(st.sampled_from(GRANTS + MONTHLY), unique=True, max_size=2))
            return ev.HoldConsumed(hold_id=hold, amount=len(burned), burned=[ev.Burn(grant_id=g, amount=1)
                                                                             for g in burned])
        case "release":
            return ev.HoldReleased(hold_id=hold, amount=1, reason="cancelled")
        case "expire":
            return ev.GrantExpired(grant_id=draw(st.sampled_from(GRANTS + MONTHLY)), amount=amount, reserved=0,
                                   reason=draw(st.sampled_from(["expired", "period_reset", "hold_ended"])))
        case "carry":
            drawn = draw(st.lists(st.sampled_from(MONTHLY), unique=True, min_size=1))
            return ev.CreditsCarriedOver(grant_id=f"carry-{draw(st.integers(0, 1))}", amount=len(drawn),
                                         expires_at=at, drawn=[ev.Burn(grant_id=g, amount=1) for g in drawn])
        case "warned":
            return ev.CreditsExpiringSoon(grant_id=grant, amount=amount, expires_at=at)
        case "period":
            start = T0 + timedelta(days=draw(st.integers(0, 2)))
            return ev.CreditPeriodStarted(period_start=start, renews_at=start + timedelta(days=1),
                                          timezone="Europe/Berlin", renewal_day=1, tier="pro",
                                          monthly_credits=amount, carryover_cap=1, low_credit_threshold=1)
        case "allowance":
            return ev.AllowanceChanged(tier=draw(st.sampled_from(["pro", "free"])), monthly_credits=amount,
                                       carryover_cap=0, low_credit_threshold=0)
        case "low":
            return ev.CreditsLow(available=amount, threshold=1,
                                 period_start=draw(st.sampled_from([None, T0, T0 + timedelta(days=1)])))
        case "schedule":
            scheduled.append(post)
            return ev.PostScheduled(post_id=post, text="t", media_urls=[], publish_at=at, destinations=[
                ev.Destination(destination_id=a, social_account_id=a, platform=f"platform-{a}", handle=a, text="t",
                               hold_id=f"{post}-{a}") for a in ACCOUNTS])
        case "queued":
            day = at.date().isoformat()
            return ev.PostQueued(post_id=post, due_day=draw(st.sampled_from([None, day])),
                                 platforms=draw(st.lists(st.sampled_from(["sandbox", "mastodon"]), max_size=3)))
        case "published":
            return ev.DestinationPublished(post_id=post, destination_id=account, attempt=1, hold_id="h",
                                           platform_post_id="x", url=None)
        case "skipped":
            return ev.DestinationSkipped(post_id=post, destination_id=account, hold_id="h", reason="missed")
        case "failed":
            return ev.DestinationFailed(post_id=post, destination_id=account, attempt=1, hold_id="h",
                                        error_kind="transient", detail="503")
        case "generation":
            seen_days.append(at.date().isoformat())
            return ev.GenerationCounted(day=seen_days[-1], count=1)
        case "limit":
            return ev.CommandRejected(command_id=f"c{draw(st.integers(0, 3))}", command_type="schedule_post.v1",
                                      reason_code="queue_full", detail="full",
                                      limit=ev.LimitBreach(limit="queue_size", tier="pro", current=5, allowed=5))
        case "read":
            days = [d.isoformat() for d in (T0.date(), (T0 + timedelta(days=1)).date())]
            return ev.NoticesRead(notice_ids=draw(st.lists(st.sampled_from(
                [f"post_skipped:{d}" for d in days] + [f"tier_limit_reached:queue_size:{d}" for d in days]
                + [f"credits_expiring:{g}" for g in GRANTS] + ["low_credits:", f"low_credits:{T0.isoformat()}"]),
                min_size=1, max_size=3)))
        case "tier":
            return ev.TierDefined(tier=draw(st.sampled_from(["starter", "pro"])), version=draw(st.integers(1, 3)),
                                  limits=LIMITS)
        case "tier_changed":
            return ev.TierChanged(from_tier="pro", to_tier=draw(st.sampled_from(["free", "business"])), version=1,
                                  limits={**LIMITS, "queue_size": amount}, tier_limits=LIMITS, reason="upgrade")
        case "tier_scheduled":
            return ev.TierChangeScheduled(from_tier="pro", to_tier="free", effective_at=at)
        case "overridden":
            return ev.LimitsOverridden(limit_overrides={"queue_size": amount}, limits={**LIMITS, "queue_size": amount})
        case "connected":
            return ev.SocialAccountConnected(social_account_id=account, platform="sandbox", handle=account,
                                             instance_url=None)
        case "needs_reconnect":
            return ev.SocialAccountNeedsReconnect(social_account_id=account, reason="invalid_grant",
                                                  credential_version=None)
        case "reconnected":
            return ev.SocialAccountReconnected(social_account_id=account, handle=f"{account}-2", instance_url=None,
                                               credential_version="v2")
        case "disconnected":
            return ev.SocialAccountDisconnected(social_account_id=account, actor="tests", reason="gone",
                                                cancelled_destinations=0)
    raise AssertionError(kind)


KINDS = ("grant", "hold", "consume", "release", "expire", "carry", "warned", "period", "allowance", "low", "schedule",
         "queued", "published", "skipped", "failed", "generation", "limit", "read", "read", "tier", "tier_changed",
         "tier_scheduled", "overridden", "connected", "needs_reconnect", "reconnected", "disconnected")


@st.composite
def streams(draw) -> list[CloudEvent]:
    """Each workspace opened first (Europe/Berlin and UTC), then random events of both, in time order."""
    clock = T0
    events = []
    seen_days: list[str] = []
    scheduled: list[str] = []

    def event(ws: str, data: ev.EventData) -> CloudEvent:
        nonlocal clock
        clock += timedelta(minutes=draw(st.sampled_from([1, 90, 600])))
        position = next(_positions)
        return CloudEvent(id=f"e{position}", source="/herald/test", type=data.type, subject=ws, time=clock,
                          data=data.model_dump(mode="json"), workspaceid=ws, aggregateid=ws, aggregatetype="test",
                          aggregateversion=position, position=position, causationid="cmd", correlationid="corr")

    for ws, timezone in zip(WORKSPACES, ("Europe/Berlin", "UTC")):
        events.append(event(ws, ev.WorkspaceOpened(name=ws, tier="pro", timezone=timezone, limit_overrides={},
                                                   limits=LIMITS)))
        events.append(event(ws, ev.WalletOpened(wallet_id=ws)))
    # Rounds of every kind in a random order: every kind comes, and the same ids meet again.
    for kind in itertools.chain.from_iterable(draw(st.lists(st.permutations(KINDS), min_size=1, max_size=4))):
        events.append(event(draw(st.sampled_from(WORKSPACES)), _data(draw, kind, seen_days, scheduled)))
    return events


def _raw(event: CloudEvent):
    return bulk.raw(event.position, event.type, json.loads(json.dumps(event.data)), event.workspaceid, event.time,
                    event.causationid, event.correlationid, event.aggregateversion, event.aggregateid)


def _tables(conn: psycopg.Connection) -> dict[str, list[str]]:
    return {t: sorted(json.dumps(r[0], sort_keys=True, default=str) for r in conn.execute(f"SELECT to_jsonb(t) FROM {t} t"))
            for p in catalogue.PROJECTIONS for t in p.tables}


def test_every_bulk_path_equals_its_projection_on_random_streams(schemas):
    live, rebuilt = schemas
    folds = bulk.usable(list(catalogue.PROJECTIONS))
    assert list(folds) == [p.name for p in catalogue.PROJECTIONS]
    made: set[str] = set()

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(events=streams(), page=st.integers(1, 12))
    def check(events, page):
        for conn in schemas:
            for table in (t for p in catalogue.PROJECTIONS for t in p.tables):
                conn.execute(f"DELETE FROM {table}")
        with live.transaction():
            for event in events:
                catalogue.apply_all(live, event)
        raws = [_raw(e) for e in events]
        for i in range(0, len(raws), page):
            with rebuilt.transaction():
                for fold in folds.values():
                    fold(rebuilt, raws[i:i + page])
        assert _tables(rebuilt) == _tables(live)
        made.update(e.type for e in events)

    check()
    credits = {"wallet", "credit_clock", "usage", "notifications", "tiers", "accounts"}
    wanted = set().union(*(p.handles for p in catalogue.PROJECTIONS if p.name in credits))
    assert wanted <= made, f"event types the streams never made: {wanted - made}"
