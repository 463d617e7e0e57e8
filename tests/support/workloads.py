"""A random workload decided through the domain, the live read models applied as the
projections consumer applies them, and a snapshot of every read model: for rebuild tests."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

import psycopg
from hypothesis import strategies as st

from domain.post.aggregate import hold_id_for
from herald.messaging.relay import to_cloud_event
from herald.replay import store
from projections import catalogue, positions
from schemas import commands as cmd
from tests.support.commands import envelope

ACCOUNTS = ("a", "b")


def snapshot(url: str) -> dict[str, list[str]]:
    with psycopg.connect(url) as conn:
        return {t: sorted(json.dumps(r[0], sort_keys=True, default=str)
                          for r in conn.execute(f"SELECT to_jsonb(t) FROM {t} t"))
                for p in catalogue.PROJECTIONS for t in p.tables}


def apply_live(herald, after: int) -> int:
    """What the live consumer does: every stored event after ``after``, applied to the live tables."""
    with herald.pool.connection() as conn:
        for page in store.notifications(conn, herald.app, after, store.head(conn, herald.app)):
            events = [to_cloud_event(herald.app, n) for n in page]  # validated, as the consumer reads them
            for event in events:
                catalogue.apply_all(conn, event)
            positions.record(conn, events)
            after = page[-1].id
    return after


# A workload: per workspace, steps on its posts; every command is decided (accepted or rejected).
steps = st.lists(st.tuples(
    st.sampled_from(["schedule", "start", "outcome", "cancel", "grant", "settle"]),
    st.integers(0, 3),  # post
    st.sampled_from(ACCOUNTS),
    st.sampled_from([o.value for o in cmd.Outcome]),
), min_size=1, max_size=25)

_ids = itertools.count()


def run_workload(app, ws: str, workload) -> None:
    attempts: dict[tuple[int, str], int] = {}
    commands = [cmd.OpenWorkspace(name=ws, tier="pro"), cmd.GrantCredits(amount=3),
                *[cmd.ConnectSocialAccount(social_account_id=f"{ws}-{a}", platform="sandbox", handle=a)
                  for a in ACCOUNTS]]
    for kind, post, account, outcome in workload:
        post_id, dest = f"{ws}-p{post}", f"{ws}-{account}"
        match kind:
            case "schedule":
                commands.append(cmd.SchedulePost(post_id=post_id, text=f"post {post}", destinations=[dest],
                                                 publish_at=datetime.now(UTC) + timedelta(hours=1)))
            case "start":
                attempts[post, account] = attempts.get((post, account), 0) + 1
                commands.append(cmd.StartPublishAttempt(post_id=post_id, destination_id=dest,
                                                        attempt=attempts[post, account]))
            case "outcome":
                commands.append(cmd.RecordPublishOutcome(
                    post_id=post_id, destination_id=dest, attempt=max(attempts.get((post, account), 1), 1),
                    outcome=outcome, platform_post_id="x" if outcome == "published" else None, detail="because"))
            case "cancel":
                commands.append(cmd.CancelPost(post_id=post_id))
            case "grant":
                commands.append(cmd.GrantCredits(amount=1))
            case "settle":
                hold = hold_id_for(post_id, dest)
                commands.append(cmd.ConsumeHold(hold_id=hold) if outcome == "published"
                                else cmd.ReleaseHold(hold_id=hold, reason="test"))
    commands.append(cmd.ChangeTier(tier="free"))  # a downgrade waits for the renewal: a scheduled tier change
    for payload in commands:
        app.handle(envelope(payload, workspace_id=ws, command_id=f"c{next(_ids)}"))
