"""The bulk paths of the credit read models: wallet, credit clock, usage, notifications.

Each follows its projection's ``apply`` rule by rule (``projections/wallet.py``,
``credit_clock.py``, ``usage.py``, ``notifications.py``). Where a projection reads another read
model (the time zone in ``workspaces``, a destination's platform in ``queue_destinations``, a
grant's ``remaining`` in ``wallet_grants``), the bulk path reads it after that read model's bulk
path has applied the whole page (they run in ``catalogue`` order): the values read never change
(time zone, platform) or only fall (``remaining``: see ``credit_clock``), so the result is the same.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from psycopg import Connection

from projections.bulk.rows import Raw, Rows, local_days, only
from projections.credit_clock import MONTHLY_SOURCES, WARN_AHEAD, item_id
from schemas import events as ev

# wallet -----------------------------------------------------------------------------------

_WALLET_EVENTS = (ev.WorkspaceOpened, ev.WalletOpened, ev.CreditsGranted, ev.HoldPlaced, ev.HoldConsumed,
                  ev.HoldReleased, ev.GrantExpired, ev.CreditsCarriedOver)
_GRANT_COLUMNS = ("workspace_id", "grant_id", "amount", "remaining", "source", "expires_at", "granted_at", "position",
                  "expired", "expiry_position")


def _grants_touched(e: Raw) -> list[str]:
    d = e.data
    if e.type in (ev.CreditsGranted.type, ev.GrantExpired.type):
        return [d["grant_id"]]
    if e.type == ev.HoldConsumed.type:
        return [b["grant_id"] for b in d["burned"]]
    if e.type == ev.CreditsCarriedOver.type:
        return [b["grant_id"] for b in d["drawn"]] + [d["grant_id"]]
    return []


def wallet(conn: Connection, events: list[Raw]) -> None:
    events = only(events, *_WALLET_EVENTS)
    wallets = Rows("wallets", ["workspace_id"], ["workspace_id", "opened_at"])
    grants = Rows("wallet_grants", ["workspace_id", "grant_id"], _GRANT_COLUMNS)
    holds = Rows("wallet_holds", ["workspace_id", "hold_id"],
                 ["workspace_id", "hold_id", "post_id", "destination_id", "amount", "status", "placed_at",
                  "settled_at", "reason", "position"])
    wallets.load(conn, [(e.workspace_id,) for e in events if e.type in (ev.WorkspaceOpened.type, ev.WalletOpened.type)])
    grants.load(conn, [(e.workspace_id, g) for e in events for g in _grants_touched(e)])
    expiries = Rows("wallet_expiries", ["workspace_id", "position"],
                    ["workspace_id", "position", "grant_id", "amount", "reason", "expired_at"],
                    types={"position": "bigint"})
    expiries.load(conn, [(e.workspace_id, e.position) for e in events if e.type == ev.GrantExpired.type])
    holds.load(conn, [(e.workspace_id, e.data["hold_id"]) for e in events
                      if e.type in (ev.HoldPlaced.type, ev.HoldConsumed.type, ev.HoldReleased.type)])

    def new_grant(ws: str, grant_id: str, amount: int, source: str, expires_at: Any, e: Raw) -> None:
        grants.insert({"workspace_id": ws, "grant_id": grant_id, "amount": amount, "remaining": amount,
                       "source": source, "expires_at": expires_at, "granted_at": e.time, "position": e.position,
                       "expired": 0, "expiry_position": 0})

    def take(ws: str, position: int, taken: Iterable[tuple[str, int, int]]) -> None:
        """An expiry or a carryover: moves each grant once (an event at or below the grant's last
        applied expiry position is a redelivery)."""
        for grant_id, amount, expired in taken:
            grant = grants.get((ws, grant_id))
            if grant is not None and grant["expiry_position"] < position:
                grant.update(remaining=grant["remaining"] - amount, expired=grant["expired"] + expired,
                             expiry_position=position)
                grants.changed((ws, grant_id))

    for e in events:
        d, ws, at, t = e.data, e.workspace_id, e.time, e.type
        if t in (ev.WorkspaceOpened.type, ev.WalletOpened.type):
            wallets.insert({"workspace_id": ws, "opened_at": at})
        elif t == ev.CreditsGranted.type:
            new_grant(ws, d["grant_id"], d["amount"], d["source"], d["expires_at"], e)
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
        elif t == ev.GrantExpired.type:
            take(ws, e.position, [(d["grant_id"], d["amount"], d["amount"])])
            expiries.insert({"workspace_id": ws, "position": e.position, "grant_id": d["grant_id"],
                             "amount": d["amount"], "reason": d["reason"], "expired_at": at})
        elif t == ev.CreditsCarriedOver.type:
            take(ws, e.position, [(b["grant_id"], b["amount"], 0) for b in d["drawn"]])
            new_grant(ws, d["grant_id"], d["amount"], "carryover", d["expires_at"], e)
    for rows in (wallets, grants, holds, expiries):
        rows.store(conn)


# credit clock -----------------------------------------------------------------------------

_CLOCK_EVENTS = (ev.CreditsGranted, ev.HoldPlaced, ev.HoldConsumed, ev.HoldReleased, ev.GrantExpired,
                 ev.CreditsExpiringSoon, ev.CreditPeriodStarted)
_GRANT_ITEMS = ("expire_grant", "warn_expiring")


def _clock_refs(e: Raw) -> list[tuple[str, str]]:
    """The (kind, ref) of every item the event may add or drop."""
    d, t = e.data, e.type
    if t == ev.CreditsGranted.type:
        return [(k, d["grant_id"]) for k in _GRANT_ITEMS]
    if t in (ev.HoldPlaced.type, ev.HoldReleased.type):
        return [("expire_hold", d["hold_id"])]
    if t == ev.HoldConsumed.type:
        return [("expire_hold", d["hold_id"])] + [(k, b["grant_id"]) for b in d["burned"] for k in _GRANT_ITEMS]
    if t == ev.GrantExpired.type:
        return [(k, d["grant_id"]) for k in _GRANT_ITEMS]
    if t == ev.CreditsExpiringSoon.type:
        return [("warn_expiring", d["grant_id"])]
    period = e.model()  # CreditPeriodStarted: refs are the datetimes' isoformat, as the projection makes them
    return [("renew", period.period_start.isoformat()), ("renew", period.renews_at.isoformat())]


def credit_clock(conn: Connection, events: list[Raw]) -> None:
    """The clock's due items. A consumption drops the items of the grants it used up: the live
    projection reads ``remaining`` at that event, this reads it at the end of the page (applied by
    the wallet's bulk path first). ``remaining`` only falls, and every later event that brings a
    grant with items to 0 (a consumption, an expiry) drops them too, so both end with the same items."""
    events = only(events, *_CLOCK_EVENTS)
    items = Rows("credit_clock", ["item_id"], ["item_id", "workspace_id", "kind", "ref", "due_at", "sent_at",
                                               "attempts"])
    refs = {e.position: _clock_refs(e) for e in events}
    items.load(conn, [(item_id(k, e.workspace_id, r),) for e in events for k, r in refs[e.position]])
    burned = {(e.workspace_id, b["grant_id"]) for e in events if e.type == ev.HoldConsumed.type
              for b in e.data["burned"]}
    used_up = set(conn.execute(
        "SELECT g.workspace_id, g.grant_id FROM wallet_grants g"
        " JOIN unnest(%s::text[], %s::text[]) AS k(workspace_id, grant_id) USING (workspace_id, grant_id)"
        " WHERE g.remaining <= 0 AND g.expires_at IS NOT NULL",
        ([w for w, _ in burned], [g for _, g in burned])).fetchall()) if burned else set()

    def add(ws: str, kind: str, ref: str, due_at: Any) -> None:
        items.insert({"item_id": item_id(kind, ws, ref), "workspace_id": ws, "kind": kind, "ref": ref,
                      "due_at": due_at, "sent_at": None, "attempts": 0})

    def drop(ws: str, *kinds: str, ref: str) -> None:
        for kind in kinds:
            items.delete((item_id(kind, ws, ref),))

    for e in events:
        d, ws, t = e.data, e.workspace_id, e.type
        if t == ev.CreditsGranted.type:
            if d["expires_at"] is not None and d["source"] not in MONTHLY_SOURCES:
                expires_at = datetime.fromisoformat(d["expires_at"])
                add(ws, "expire_grant", d["grant_id"], expires_at)
                add(ws, "warn_expiring", d["grant_id"], max(e.time, expires_at - WARN_AHEAD))
        elif t == ev.HoldPlaced.type:
            if d.get("expires_at") is not None:
                add(ws, "expire_hold", d["hold_id"], d["expires_at"])
        elif t == ev.HoldConsumed.type:
            drop(ws, "expire_hold", ref=d["hold_id"])
            for b in d["burned"]:
                if (ws, b["grant_id"]) in used_up:
                    drop(ws, *_GRANT_ITEMS, ref=b["grant_id"])
        elif t == ev.HoldReleased.type:
            drop(ws, "expire_hold", ref=d["hold_id"])
        elif t == ev.GrantExpired.type:
            drop(ws, *_GRANT_ITEMS, ref=d["grant_id"])
        elif t == ev.CreditsExpiringSoon.type:
            drop(ws, "warn_expiring", ref=d["grant_id"])
        else:  # CreditPeriodStarted
            (_, ended), (_, renews) = refs[e.position]
            drop(ws, "renew", ref=ended)
            add(ws, "renew", renews, d["renews_at"])
    items.store(conn)


# usage ------------------------------------------------------------------------------------

_USAGE_EVENTS = (ev.PostQueued, ev.DestinationPublished, ev.DestinationSkipped, ev.DestinationFailed,
                 ev.GenerationCounted, ev.CreditsGranted, ev.HoldConsumed, ev.HoldReleased, ev.GrantExpired,
                 ev.CreditPeriodStarted, ev.AllowanceChanged)
_DESTINATION_METRICS = {ev.DestinationPublished.type: "posts_published", ev.DestinationSkipped.type: "posts_skipped",
                        ev.DestinationFailed.type: "posts_failed"}
_CREDIT_METRICS = {ev.CreditsGranted.type: "credits_granted", ev.HoldConsumed.type: "credits_consumed",
                   ev.HoldReleased.type: "credits_released", ev.GrantExpired.type: "credits_expired"}
_PERIOD_COLUMNS = ("workspace_id", "period_start", "renews_at", "tier", "monthly_credits", "last_position")


def _counts(e: Raw, days: dict[int, date], platforms: dict[tuple[str, str], str]) -> list[tuple[date, str, str, int]]:
    """The (day, metric, key, amount) the event counts (none for a zero amount, as ``usage.apply``)."""
    d, t = e.data, e.type
    if t == ev.PostQueued.type:
        if d.get("due_day") is None:
            return []
        listed = d.get("platforms", [])
        return [(date.fromisoformat(d["due_day"]), "posts_scheduled", p, listed.count(p)) for p in sorted(set(listed))]
    if t in _DESTINATION_METRICS:
        return [(days[e.position], _DESTINATION_METRICS[t], platforms.get((d["post_id"], d["destination_id"]), ""), 1)]
    if t == ev.GenerationCounted.type:
        return [(date.fromisoformat(d["day"]), "generations", "", 1)]
    if t in _CREDIT_METRICS and d["amount"]:
        return [(days[e.position], _CREDIT_METRICS[t], "", d["amount"])]
    return []


def usage(conn: Connection, events: list[Raw]) -> None:
    """A destination's outcome is counted under its platform from ``queue_destinations`` (applied
    for the page first), which has the row from the event scheduling the post: that event always
    comes before the destination's outcomes (same stream, earlier version)."""
    events = only(events, *_USAGE_EVENTS)
    daily = Rows("usage_daily", ["workspace_id", "day", "metric", "key"],
                 ["workspace_id", "day", "metric", "key", "amount", "last_position"], types={"day": "date"})
    periods = Rows("usage_periods", ["workspace_id"], _PERIOD_COLUMNS)
    destinations = [(e.data["post_id"], e.data["destination_id"]) for e in events if e.type in _DESTINATION_METRICS]
    platforms = dict(((p, dst), platform) for p, dst, platform in conn.execute(
        "SELECT q.post_id, q.destination_id, q.platform FROM queue_destinations q"
        " JOIN unnest(%s::text[], %s::text[]) AS k(post_id, destination_id) USING (post_id, destination_id)",
        ([p for p, _ in destinations], [dst for _, dst in destinations])).fetchall()) if destinations else {}
    days = local_days(conn, [e for e in events if e.type in _DESTINATION_METRICS or e.type in _CREDIT_METRICS])
    counted = [(e, _counts(e, days, platforms)) for e in events]
    daily.load(conn, [(e.workspace_id, day, metric, key) for e, counts in counted for day, metric, key, _ in counts])
    periods.load(conn, [(e.workspace_id,) for e in events
                        if e.type in (ev.CreditPeriodStarted.type, ev.AllowanceChanged.type)])
    for e, counts in counted:
        ws, d = e.workspace_id, e.data
        for day, metric, key, amount in counts:
            row = daily.get((ws, day, metric, key))
            if row is None:
                daily.insert({"workspace_id": ws, "day": day, "metric": metric, "key": key, "amount": amount,
                              "last_position": e.position})
            elif row["last_position"] < e.position:
                row.update(amount=row["amount"] + amount, last_position=e.position)
                daily.changed((ws, day, metric, key))
        row = periods.get((ws,))
        if e.type == ev.CreditPeriodStarted.type:
            values = {"workspace_id": ws, "period_start": d["period_start"], "renews_at": d["renews_at"],
                      "tier": d["tier"], "monthly_credits": d["monthly_credits"], "last_position": e.position}
            if row is None:
                periods.insert(values)
            elif row["last_position"] < e.position:
                row.update(values)
                periods.changed((ws,))
        elif e.type == ev.AllowanceChanged.type and row is not None and row["last_position"] < e.position:
            row.update(tier=d["tier"], monthly_credits=d["monthly_credits"], last_position=e.position)
            periods.changed((ws,))
    daily.store(conn)
    periods.store(conn)


# notifications ----------------------------------------------------------------------------

_NOTICE_EVENTS = (ev.CreditsLow, ev.CreditsExpiringSoon, ev.DestinationSkipped, ev.DestinationFailed,
                  ev.CommandRejected, ev.NoticesRead, ev.WebhookEndpointDisabled, ev.SocialAccountNeedsReconnect)
_BY_DAY = {ev.DestinationSkipped.type, ev.DestinationFailed.type, ev.CommandRejected.type}


def _notice(e: Raw, day: date | None) -> tuple[str, str, str, dict[str, Any]]:
    """(notice id, cause, title, detail) as ``notifications.apply`` raises it."""
    data = e.model()
    match data:
        case ev.CreditsLow():
            cause, key, title = ("low_credits", data.period_start.isoformat() if data.period_start else "",
                                 f"Only {data.available} credit(s) left")
            detail = data.model_dump(mode="json")
        case ev.CreditsExpiringSoon():
            cause, key = "credits_expiring", data.grant_id
            title = f"{data.amount} credit(s) expire on {data.expires_at.date().isoformat()}"
            detail = data.model_dump(mode="json")
        case ev.DestinationSkipped():
            cause, key, title = "post_skipped", "", f"A post was skipped ({data.reason})"
            detail = data.model_dump(mode="json")
        case ev.DestinationFailed():
            cause, key, title = "post_failed", "", "A post failed to publish"
            detail = data.model_dump(mode="json")
        case ev.CommandRejected() if data.limit is not None:
            cause, key, title = "tier_limit_reached", f"{data.limit.limit}:", f"Tier limit reached: {data.limit.limit}"
            detail = {"command_type": data.command_type, "reason_code": data.reason_code, **data.limit.model_dump()}
        case ev.WebhookEndpointDisabled():
            cause, key, title = ("webhook_endpoint_disabled", f"{data.endpoint_id}:{data.delivery_id}",
                                 "A webhook endpoint was disabled")
            detail = data.model_dump(mode="json")
        case ev.SocialAccountNeedsReconnect():
            cause, key = "account_needs_reconnect", f"{data.social_account_id}:{data.credential_version or ''}"
            title, detail = "A social account must be reconnected", data.model_dump(mode="json")
        case _:
            raise ValueError(f"no notice for {e.type}")
    return f"{cause}:{key}{day.isoformat() if day is not None else ''}", cause, title, detail


def notifications(conn: Connection, events: list[Raw]) -> None:
    events = [e for e in only(events, *_NOTICE_EVENTS)
              if e.type != ev.CommandRejected.type or e.data.get("limit") is not None]
    rows = Rows("notifications", ["workspace_id", "notice_id"],
                ["workspace_id", "notice_id", "cause", "title", "detail", "count", "first_at", "last_at", "read_at",
                 "last_position"], jsonb=["detail"])
    days = local_days(conn, [e for e in events if e.type in _BY_DAY])
    raised = {e.position: _notice(e, days.get(e.position)) for e in events if e.type != ev.NoticesRead.type}
    rows.load(conn, [(e.workspace_id, raised[e.position][0]) for e in events if e.position in raised]
              + [(e.workspace_id, n) for e in events if e.type == ev.NoticesRead.type for n in e.data["notice_ids"]])
    for e in events:
        ws, at = e.workspace_id, e.time
        if e.type == ev.NoticesRead.type:
            for notice_id in e.data["notice_ids"]:
                row = rows.get((ws, notice_id))
                if row is not None and row["read_at"] is None:
                    row["read_at"] = at
                    rows.changed((ws, notice_id))
            continue
        notice_id, cause, title, detail = raised[e.position]
        row = rows.get((ws, notice_id))
        if row is None:
            rows.insert({"workspace_id": ws, "notice_id": notice_id, "cause": cause, "title": title, "detail": detail,
                         "count": 1, "first_at": at, "last_at": at, "read_at": None, "last_position": e.position})
        elif row["last_position"] < e.position:
            row.update(count=row["count"] + 1, last_at=at, detail=detail, read_at=None, last_position=e.position)
            rows.changed((ws, notice_id))
    rows.store(conn)


FOLDS = {
    "wallet": (wallet, _WALLET_EVENTS),
    "credit_clock": (credit_clock, _CLOCK_EVENTS),
    "notifications": (notifications, _NOTICE_EVENTS),
    "usage": (usage, _USAGE_EVENTS),
}
