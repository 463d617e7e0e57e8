"""Deciding commands in batches gives exactly what deciding them one at a time gives:
the same decisions, the same events, the same state — whatever the batch boundaries."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.application import HeraldApplication
from domain.post import hold_id_for
from schemas import commands as cmd

T0 = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
WORKSPACES = ("ws-a", "ws-b")
ACCOUNTS = ("acc-1", "acc-2")


def _app() -> HeraldApplication:
    return HeraldApplication({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=lambda: T0)


def _envelope(command_id: str, ws: str, payload: cmd.Payload) -> cmd.CommandEnvelope:
    return cmd.CommandEnvelope.wrap(payload, command_id=command_id, workspace_id=ws, issued_by="t", issued_at=T0)


def _setup() -> list[cmd.CommandEnvelope]:
    commands = []
    for ws in WORKSPACES:
        commands.append(_envelope(f"open-{ws}", ws, cmd.OpenWorkspace(name=ws, limit_overrides={"queue_size": 4,
                                                                                              "accounts_per_platform": 2})))
        for account in ACCOUNTS:
            commands.append(_envelope(f"connect-{ws}-{account}", ws, cmd.ConnectSocialAccount(
                social_account_id=f"{ws}-{account}", platform="sandbox", handle=account)))
    return commands


step = st.one_of(
    st.tuples(st.just("grant"), st.sampled_from(WORKSPACES), st.integers(1, 3)),
    st.tuples(st.just("schedule"), st.sampled_from(WORKSPACES), st.integers(0, 5), st.integers(1, 2)),
    st.tuples(st.just("consume"), st.sampled_from(WORKSPACES), st.integers(0, 5), st.sampled_from(ACCOUNTS)),
    st.tuples(st.just("release"), st.sampled_from(WORKSPACES), st.integers(0, 5), st.sampled_from(ACCOUNTS)),
    st.tuples(st.just("cancel"), st.sampled_from(WORKSPACES), st.integers(0, 5)),
)


def _command(n: int, s: tuple) -> cmd.CommandEnvelope:
    kind, ws = s[0], s[1]
    if kind == "grant":
        return _envelope(f"grant-{n}", ws, cmd.GrantCredits(amount=s[2]))
    post_id = f"{ws}-post-{s[2]}"
    if kind == "schedule":
        destinations = [f"{ws}-{a}" for a in ACCOUNTS[: s[3]]]
        return _envelope(f"schedule-{post_id}", ws, cmd.SchedulePost(post_id=post_id, text="hi", destinations=destinations))
    if kind == "cancel":
        return _envelope(f"cancel-{n}", ws, cmd.CancelPost(post_id=post_id))
    hold = hold_id_for(post_id, f"{ws}-{s[3]}")
    payload = cmd.ConsumeHold(hold_id=hold) if kind == "consume" else cmd.ReleaseHold(hold_id=hold)
    return _envelope(f"{kind}-{n}", ws, payload)


def _history(app: HeraldApplication) -> list[tuple]:
    notifications = app.recorder.select_notifications(start=1, limit=100_000)
    return sorted((n.originator_id, n.originator_version, app.mapper.to_domain_event(n).type,
                   str(app.mapper.to_domain_event(n).data)) for n in notifications)


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(step, max_size=40), replays=st.lists(st.integers(0, 39), max_size=5),
       cuts=st.lists(st.integers(1, 12), min_size=1, max_size=10))
def test_batches_decide_exactly_as_one_at_a_time(steps, replays, cuts):
    commands = _setup() + [_command(n, s) for n, s in enumerate(steps)]
    commands += [commands[i] for i in replays if i < len(commands)]  # repeats of known command ids

    one_by_one = _app()
    expected = [one_by_one.handle(c) for c in commands]

    batched = _app()
    # As in production: one question to the store per batch (which aggregates exist, at which
    # version), so aggregates saved by earlier batches are used warm when still current.
    def versions(ids):
        latest = {i: batched.recorder.select_events(i, desc=True, limit=1) for i in ids}
        return {i: events[0].originator_version for i, events in latest.items() if events}

    batched.versions = versions
    decisions, start, i = [], 0, 0
    while start < len(commands):
        size = cuts[i % len(cuts)]
        decisions += batched.handle_batch(commands[start : start + size])
        start, i = start + size, i + 1

    assert decisions == expected
    assert _history(batched) == _history(one_by_one)
