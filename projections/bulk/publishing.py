"""The bulk paths of the publishing read models: queue, posts, social accounts, workspaces, audit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import Connection

from projections.bulk.rows import Raw, Rows, only
from projections import posts as posts_projection
from projections.queue import ADDED_ORDINAL
from schemas import events as ev


# queue ------------------------------------------------------------------------------------

_QUEUE_EVENTS = (ev.WorkspaceOpened, ev.PostScheduled, ev.AttemptStarted, ev.DestinationPublished, ev.RetryScheduled,
                 ev.DestinationThrottled, ev.DestinationFailed, ev.DestinationSkipped, ev.OutcomeUnknown,
                 ev.PostCancelled, ev.PostRevised, ev.DestinationsOnHold)
_QUEUE_COLUMNS = ("post_id", "destination_id", "workspace_id", "social_account_id", "platform", "handle", "due_at",
                  "status", "attempt", "platform_post_id", "url", "reason", "updated_at", "text", "ordinal",
                  "throttled_until")


def queue(conn: Connection, events: list[Raw]) -> None:
    events = only(events, *_QUEUE_EVENTS)
    workspaces = Rows("queue_workspaces", ["workspace_id"], ["workspace_id", "tier", "queue_size"])
    dests = Rows("queue_destinations", ["post_id", "destination_id"], _QUEUE_COLUMNS)
    workspaces.load(conn, [(e.workspace_id,) for e in events if e.type == ev.WorkspaceOpened.type])
    keys = []
    for e in events:
        d = e.data
        if e.type in (ev.PostScheduled.type, ev.PostRevised.type):
            keys += [(d["post_id"], x["destination_id"]) for x in d["destinations"]]
        elif e.type == ev.PostCancelled.type:
            keys += [(d["post_id"], x) for x in d["cancelled_destinations"]]
        elif e.type == ev.DestinationsOnHold.type:
            keys += [(d["post_id"], x) for x in d["destination_ids"]]
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
        elif t == ev.DestinationsOnHold.type:
            for x in d["destination_ids"]:
                set_status(d["post_id"], x, "on_hold", at, reason=d["reason"])
        elif t == ev.PostRevised.type:
            for i, x in enumerate(d["destinations"]):
                key = (d["post_id"], x["destination_id"])
                row = {"post_id": d["post_id"], "destination_id": x["destination_id"], "workspace_id": e.workspace_id,
                       "social_account_id": x["social_account_id"], "platform": x["platform"], "handle": x["handle"],
                       "due_at": x.get("due_at") or d["publish_at"], "status": "pending", "attempt": 0,
                       "platform_post_id": None, "url": None, "reason": "", "updated_at": at, "text": x["text"],
                       "ordinal": ADDED_ORDINAL + i, "throttled_until": None}
                if not dests.insert(row):
                    old = dests.get(key)
                    if old["status"] in ("pending", "cancelled", "on_hold") and old["updated_at"] <= at:
                        old.update(due_at=row["due_at"], status="pending", reason="", throttled_until=None,
                                   text=x["text"], updated_at=at)
                        dests.changed(key)
    workspaces.store(conn)
    dests.store(conn)


# posts, accounts, workspaces ----------------------------------------------------------------

_POST_TOUCHES = (ev.AttemptStarted, ev.DestinationPublished, ev.RetryScheduled, ev.DestinationThrottled,
                 ev.DestinationFailed, ev.DestinationSkipped, ev.OutcomeUnknown, ev.DestinationsOnHold)
_POSTS_EVENTS = (ev.PostScheduled, *_POST_TOUCHES, *posts_projection.WORKFLOW_EVENTS)
_STAGE_AFTER = {ev.PostSubmitted.type: "needs_approval", ev.PostRejected.type: "draft"}


def posts(conn: Connection, events: list[Raw]) -> None:
    events = only(events, *_POSTS_EVENTS)
    rows = Rows("posts", ["post_id"], posts_projection.COLUMNS, jsonb=["media_urls", "draft_destinations"])
    policies = Rows("content_policies", ["workspace_id"], ["workspace_id", "requires_approval", "disconnect_waiting"])
    rows.load(conn, [(e.data["post_id"],) for e in events if e.type != ev.ContentPolicySet.type])
    policies.load(conn, [(e.workspace_id,) for e in events if e.type == ev.ContentPolicySet.type])
    for e in events:
        d, t, at = e.data, e.type, e.time
        if t == ev.ContentPolicySet.type:
            fields = {"requires_approval": d["requires_approval"],
                      "disconnect_waiting": d.get("disconnect_waiting", "cancel")}
            if not policies.insert({"workspace_id": e.workspace_id, **fields}):
                policies.get((e.workspace_id,)).update(fields)
                policies.changed((e.workspace_id,))
            continue
        key = (d["post_id"],)
        row = rows.get(key)
        if t in (ev.PostScheduled.type, ev.PostDrafted.type):
            drafted = t == ev.PostDrafted.type
            fields = {"text": d["text"], "media_urls": list(d["media_urls"]), "publish_at": d["publish_at"],
                      "stage": d["stage"] if drafted else None,
                      "draft_destinations": list(d["destinations"]) if drafted else None,
                      "actor": d.get("actor"), "reason": d.get("reason"), "updated_at": at,
                      "version": e.aggregate_version}
            if row is None:
                rows.insert({"post_id": d["post_id"], "workspace_id": e.workspace_id, "created_at": at, **fields})
            elif (drafted or row["stage"] is not None) and row["version"] < e.aggregate_version:
                row.update(fields)
                rows.changed(key)
            continue
        if row is None:
            continue
        workflow = t in (ev.PostSubmitted.type, ev.PostApproved.type, ev.PostRejected.type, ev.PostRevised.type,
                         ev.PostCancelled.type)
        if workflow:
            if row["version"] >= e.aggregate_version:
                continue
            row["version"] = e.aggregate_version
        if t in (ev.PostSubmitted.type, ev.PostApproved.type, ev.PostRejected.type):
            row.update(stage=_STAGE_AFTER.get(t, row["stage"]), actor=d["actor"], reason=d["reason"], updated_at=at)
        elif t == ev.PostRevised.type:
            row.update(text=d["text"], media_urls=list(d["media_urls"]), publish_at=d["publish_at"], actor=d["actor"],
                       reason=d["reason"], updated_at=at)
        elif t == ev.PostCancelled.type:
            row.update(stage=None if row["stage"] is None else "cancelled",
                       actor=d.get("actor") if d.get("actor") is not None else row["actor"], reason=d["reason"],
                       updated_at=max(row["updated_at"], at))
        elif row["updated_at"] < at:
            row["updated_at"] = at
        else:
            continue
        rows.changed(key)
    rows.store(conn)
    policies.store(conn)


_ACCOUNTS_EVENTS = (ev.SocialAccountConnected, ev.SocialAccountReconnected, ev.SocialAccountNeedsReconnect,
                    ev.SocialAccountDisconnected)


def accounts(conn: Connection, events: list[Raw]) -> None:
    events = only(events, *_ACCOUNTS_EVENTS)
    rows = Rows("social_accounts", ["social_account_id"],
                ["social_account_id", "workspace_id", "platform", "handle", "instance_url", "connected_at", "status",
                 "needs_reconnect_reason", "settings"], jsonb=["settings"])
    rows.load(conn, [(e.data["social_account_id"],) for e in events])
    for e in events:
        d = e.data  # never a token (older events' sealed_token is not read)
        key = (d["social_account_id"],)
        if e.type == ev.SocialAccountConnected.type:
            rows.insert({"social_account_id": d["social_account_id"], "workspace_id": e.workspace_id,
                         "platform": d["platform"], "handle": d["handle"], "instance_url": d["instance_url"],
                         "connected_at": e.time, "status": "active", "needs_reconnect_reason": None,
                         "settings": d.get("settings") or {}})
            continue
        row = rows.get(key)
        if row is None:
            continue
        if e.type == ev.SocialAccountReconnected.type:
            row.update(handle=d["handle"], instance_url=d["instance_url"], status="active",
                       needs_reconnect_reason=None)
            if d.get("settings") is not None:  # a reconnect without settings keeps the account's
                row.update(settings=d["settings"])
        elif e.type == ev.SocialAccountDisconnected.type:
            row.update(status="disconnected", needs_reconnect_reason=None)
        elif row["status"] != "disconnected":
            row.update(status="needs_reconnect", needs_reconnect_reason=d["reason"])
        rows.changed(key)
    rows.store(conn)


def workspaces(conn: Connection, events: list[Raw]) -> None:
    events = only(events, ev.WorkspaceOpened, ev.PublishingPolicySet)
    rows = Rows("workspaces", ["workspace_id"], ["workspace_id", "name", "tier", "timezone", "limit_overrides",
                                                 "limits", "opened_at", "missed_window_s"],
                jsonb=["limit_overrides", "limits"])
    rows.load(conn, [(e.workspace_id,) for e in events])
    for e in events:
        d = e.data
        if e.type == ev.WorkspaceOpened.type:
            rows.insert({"workspace_id": e.workspace_id, "name": d["name"], "tier": d["tier"],
                         "timezone": d["timezone"], "limit_overrides": dict(d["limit_overrides"]),
                         "limits": dict(d["limits"]), "opened_at": e.time, "missed_window_s": None})
            continue
        row = rows.get((e.workspace_id,))
        if row is not None:
            row.update(missed_window_s=d["missed_window_s"])
            rows.changed((e.workspace_id,))
    rows.store(conn)


# audit ------------------------------------------------------------------------------------

_ACCOUNT_EVENTS = (ev.PostScheduled, ev.PostCancelled, ev.AttemptStarted, ev.DestinationPublished, ev.RetryScheduled,
                   ev.DestinationThrottled, ev.DestinationFailed, ev.DestinationSkipped, ev.OutcomeUnknown)


def audit(conn: Connection, events: list[Raw]) -> None:
    events = only(events, ev.CommandRejected, *_ACCOUNT_EVENTS)
    rejections = Rows("command_rejections", ["workspace_id", "command_id"],
                      ["workspace_id", "command_id", "command_type", "reason_code", "detail", "issued_by", "subjects",
                       "rejected_at", "position"])
    subjects = Rows("command_rejection_subjects", ["workspace_id", "subject", "position", "command_id"],
                    ["workspace_id", "subject", "position", "command_id"], types={"position": "bigint"})
    destinations = Rows("audit_destinations", ["post_id", "destination_id"],
                        ["post_id", "destination_id", "social_account_id"])
    account_events = Rows("audit_account_events", ["workspace_id", "social_account_id", "position"],
                          ["workspace_id", "social_account_id", "position", "post_id", "type", "time", "causation_id",
                           "correlation_id", "aggregate_version", "data"], jsonb=["data"], types={"position": "bigint"})
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


FOLDS = {
    "queue": (queue, _QUEUE_EVENTS),
    "posts": (posts, _POSTS_EVENTS),
    "accounts": (accounts, _ACCOUNTS_EVENTS),
    "workspaces": (workspaces, (ev.WorkspaceOpened, ev.PublishingPolicySet)),
    "audit": (audit, (ev.CommandRejected, *_ACCOUNT_EVENTS)),
}
