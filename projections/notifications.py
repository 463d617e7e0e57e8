"""Notifications inbox read model: what a workspace should be told, one notice per cause per
period (no floods): a repeat of the same cause in the same period raises the notice's ``count``
and ``last_at`` instead of adding a row.

| cause                | from                                   | period (``key``)                  |
|----------------------|----------------------------------------|-----------------------------------|
| `low_credits`        | CreditsLow (the wallet says it once per credit period) | the credit period's start |
| `credits_expiring`   | CreditsExpiringSoon                    | the grant                         |
| `post_skipped`       | DestinationSkipped                     | the local day (workspace time zone) |
| `post_failed`        | DestinationFailed                      | the local day                     |
| `tier_limit_reached` | a command rejected by a tier limit     | the limit and the local day       |
| `webhook_endpoint_disabled` | WebhookEndpointDisabled (Herald disabled an endpoint) | the endpoint and the delivery that disabled it |
| `account_needs_reconnect` | SocialAccountNeedsReconnect (its token was refused and cannot be refreshed) | the account and its credential version |

Marking read is a command (``mark_notices_read``); its event sets ``read_at``.
"""

from __future__ import annotations

from typing import Any

from psycopg import Connection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from projections.base import Projection, applies
from schemas import events as ev
from schemas.events import CloudEvent, EventData

DDL = """
CREATE TABLE IF NOT EXISTS notifications (
    workspace_id  text        NOT NULL,
    notice_id     text        NOT NULL,
    cause         text        NOT NULL,
    title         text        NOT NULL,
    detail        jsonb       NOT NULL,
    count         integer     NOT NULL,
    first_at      timestamptz NOT NULL,
    last_at       timestamptz NOT NULL,
    read_at       timestamptz,
    last_position bigint      NOT NULL,
    PRIMARY KEY (workspace_id, notice_id)
);
CREATE INDEX IF NOT EXISTS notifications_latest ON notifications (workspace_id, last_at DESC);
CREATE INDEX IF NOT EXISTS notifications_unread ON notifications (workspace_id) WHERE read_at IS NULL;
"""
TABLES = ("notifications",)

_APPLIED = (ev.CreditsLow, ev.CreditsExpiringSoon, ev.DestinationSkipped, ev.DestinationFailed, ev.CommandRejected,
            ev.NoticesRead, ev.WebhookEndpointDisabled, ev.SocialAccountNeedsReconnect)

# The key is computed in SQL when it is the local day: the workspace's time zone is in `workspaces`.
# A repeat in the same period counts once more and turns the notice unread again.
_RAISE = """
INSERT INTO notifications AS n (workspace_id, notice_id, cause, title, detail, count, first_at, last_at, last_position)
SELECT %(ws)s,
       %(cause)s || ':' || COALESCE(%(key)s, '') || CASE WHEN %(by_day)s
            THEN (%(at)s::timestamptz AT TIME ZONE COALESCE(w.timezone, 'UTC'))::date::text ELSE '' END,
       %(cause)s, %(title)s, %(detail)s, 1, %(at)s, %(at)s, %(pos)s
  FROM (SELECT 1) AS one LEFT JOIN workspaces w ON w.workspace_id = %(ws)s
    ON CONFLICT (workspace_id, notice_id) DO UPDATE
   SET count = n.count + 1, last_at = EXCLUDED.last_at, detail = EXCLUDED.detail, read_at = NULL,
       last_position = EXCLUDED.last_position
 WHERE n.last_position < EXCLUDED.last_position
"""


@applies(*_APPLIED)
def apply(conn: Connection, event: CloudEvent, data: EventData) -> None:
    def raise_notice(cause: str, title: str, detail: dict[str, Any], key: str | None = None,
                     by_day: bool = False) -> None:
        conn.execute(_RAISE, {"ws": event.workspaceid, "cause": cause, "key": key, "by_day": by_day,
                              "title": title, "detail": Jsonb(detail), "at": event.time, "pos": event.position})

    match data:
        case ev.CreditsLow():
            raise_notice("low_credits", f"Only {data.available} credit(s) left",
                         data.model_dump(mode="json"), key=data.period_start.isoformat() if data.period_start else "")
        case ev.CreditsExpiringSoon():
            raise_notice("credits_expiring", f"{data.amount} credit(s) expire on {data.expires_at.date().isoformat()}",
                         data.model_dump(mode="json"), key=data.grant_id)
        case ev.DestinationSkipped():
            raise_notice("post_skipped", f"A post was skipped ({data.reason})", data.model_dump(mode="json"),
                         by_day=True)
        case ev.DestinationFailed():
            raise_notice("post_failed", "A post failed to publish", data.model_dump(mode="json"), by_day=True)
        case ev.CommandRejected() if data.limit is not None:
            raise_notice("tier_limit_reached", f"Tier limit reached: {data.limit.limit}",
                         {"command_type": data.command_type, "reason_code": data.reason_code,
                          **data.limit.model_dump()}, key=f"{data.limit.limit}:", by_day=True)
        case ev.WebhookEndpointDisabled():
            raise_notice("webhook_endpoint_disabled", "A webhook endpoint was disabled", data.model_dump(mode="json"),
                         key=f"{data.endpoint_id}:{data.delivery_id}")
        case ev.SocialAccountNeedsReconnect():
            raise_notice("account_needs_reconnect", "A social account must be reconnected",
                         data.model_dump(mode="json"), key=f"{data.social_account_id}:{data.credential_version or ''}")
        case ev.NoticesRead():
            conn.execute("UPDATE notifications SET read_at = %s WHERE workspace_id = %s AND notice_id = ANY(%s)"
                         " AND read_at IS NULL", (event.time, event.workspaceid, list(data.notice_ids)))


PROJECTION = Projection(name="notifications", ddl=DDL, tables=TABLES, handles=apply.handles, apply=apply,
                        needs=("workspaces",))  # the time zone


def read_notifications(conn: Connection, workspace_id: str, *, unread_only: bool = False,
                       limit: int = 50) -> dict[str, Any]:
    """The latest notices first (at most ``limit``) and the unread count."""
    with conn.cursor(row_factory=dict_row) as cur:
        notices = cur.execute(
            "SELECT notice_id, cause, title, detail, count, first_at, last_at, read_at FROM notifications"
            " WHERE workspace_id = %s AND (NOT %s OR read_at IS NULL) ORDER BY last_at DESC, notice_id LIMIT %s",
            (workspace_id, unread_only, limit),
        ).fetchall()
        unread = cur.execute("SELECT count(*) AS n FROM notifications WHERE workspace_id = %s AND read_at IS NULL",
                             (workspace_id,)).fetchone()["n"]
    return {"workspace_id": workspace_id, "unread": unread, "notices": notices}
