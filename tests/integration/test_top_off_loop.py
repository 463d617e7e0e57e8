"""The processors role's slot-top-off loop on a real PostgreSQL and broker: one pass sends a
top_off_slots per planning workspace (paging through them), with the same ids all day, and the
handler's decisions of those commands plan the slots once."""

from __future__ import annotations

import json

import pytest

from herald.runtime.top_off_loop import top_off_once
from schemas import commands as cmd
from tests.support.commands import envelope
from tests.support.topics import read_topic
from tests.support.workloads import apply_live

pytestmark = pytest.mark.integration


def test_one_pass_tops_off_every_planning_workspace_once_a_day(herald) -> None:
    for ws in ("w1", "w2", "w3"):
        payloads = [cmd.OpenWorkspace(name=ws, tier="pro", timezone="Asia/Kolkata"),
                    cmd.ConnectSocialAccount(social_account_id=f"{ws}-a", platform="sandbox", handle="a")]
        if ws != "w3":  # w3 plans nothing
            payloads.append(cmd.SetPostingSchedule(social_account_id=f"{ws}-a", posts_per_week=7, times=["09:30"]))
        for n, payload in enumerate(payloads):
            assert herald.app.handle(envelope(payload, workspace_id=ws, command_id=f"{ws}-{n}")).accepted
    apply_live(herald, 0)
    topic = herald.settings.commands_topic
    assert top_off_once(herald.pool, herald.producer, topic, page=1) == 2  # a page of one: three pages read
    assert top_off_once(herald.pool, herald.producer, topic, page=500) == 2
    herald.producer.flush()
    records = read_topic(herald.kafka_bootstrap, topic, until=lambda got: len(got) >= 4)
    commands = [cmd.CommandEnvelope.model_validate(json.loads(r.value)) for r in records]
    assert sorted(c.workspace_id for c in commands) == ["w1", "w1", "w2", "w2"]
    assert len({c.command_id for c in commands}) == 2  # the second pass sent the same ids
    assert {c.type for c in commands} == {"top_off_slots.v1"} and {c.issued_by for c in commands} == {
        "processor:slot-top-off"}
    decisions = [herald.app.handle(c) for c in commands]
    created = {d.command_id: d.result["slots_created"] for d in decisions}
    assert all(d.accepted for d in decisions) and sorted(created.values()) == [28, 28]
