"""The handler keeps its position in each commands partition in the same transaction as the
decisions, and resumes from there: not from Kafka's committed offsets, and not from a topic
that was rebuilt (then it reads the new topic from the start)."""

from __future__ import annotations

import pytest

from domain.wallet import Wallet
from herald.messaging import kafka_io
from herald.messaging.command_handler import CommandHandler
from herald.messaging.consumer import produce_commands
from herald.storage.event_store import digest, load_command_positions
from herald.runtime.wiring import Herald
from schemas import commands as cmd
from tests.support import close_herald, envelope, running, wait_until

pytestmark = pytest.mark.integration


def _envelope(ws: str, command_id: str, payload: cmd.Payload) -> cmd.CommandEnvelope:
    return envelope(payload, workspace_id=ws, command_id=command_id)


def _handler(herald: Herald, group: str, decided: list[str]) -> CommandHandler:
    s = herald.settings
    return CommandHandler(
        app=herald.app,
        consumer=kafka_io.make_consumer(herald.kafka_bootstrap, group, []),
        producer=herald.producer,
        topic=s.commands_topic,
        dlq_topic=s.dlq_topic,
        pool=herald.pool,
        on_decided=lambda commands: decided.extend(c.command_id for c in commands),
    )


def _run_until(handler: CommandHandler, done, timeout_s: float = 60) -> None:
    with running([handler.run]):
        wait_until(done, "the handler got there", timeout=timeout_s)


def test_a_handler_resumes_from_the_position_saved_with_its_decisions(heralds, settings):
    herald = heralds.start(resume_relays=False)
    ws = "ws-positions"
    first = [
        _envelope(ws, "open", cmd.OpenWorkspace(name="P", tier="pro")),
        *[_envelope(ws, f"grant-{i}", cmd.GrantCredits(amount=1)) for i in range(3)],
    ]
    produce_commands(herald.producer, settings.commands_topic, first)
    decided_by_a: list[str] = []
    _run_until(_handler(herald, f"{settings.consumer_group_prefix}a", decided_by_a), lambda: len(decided_by_a) == 4)

    with herald.pool.connection() as conn:
        positions = load_command_positions(conn, "handler", settings.commands_topic)
    assert [(p.offset, p.digest) for p in positions.values()] == [(3, digest(first[-1].model_dump_json().encode()))]

    # A consumer group with no committed offsets at all: Kafka alone would start it at the beginning.
    later = [_envelope(ws, f"grant-{i}", cmd.GrantCredits(amount=1)) for i in range(3, 5)]
    produce_commands(herald.producer, settings.commands_topic, later)
    decided_by_b: list[str] = []
    _run_until(_handler(herald, f"{settings.consumer_group_prefix}b", decided_by_b), lambda: len(decided_by_b) >= 2)
    assert decided_by_b == ["grant-3", "grant-4"], "resumed after the last decided command, nothing read twice"


def test_a_rebuilt_commands_topic_is_read_from_the_start(heralds):
    """After broker loss the saved offset points into a different topic: the record there is
    not the last one decided, so the handler reads the new topic from its start."""
    broker = heralds.own_broker()
    herald = heralds.start(broker=broker, resume_relays=False)
    settings = herald.settings
    ws = "ws-rebuilt"
    before = [_envelope(ws, "open", cmd.OpenWorkspace(name="R", tier="pro")),
              *[_envelope(ws, f"grant-{i}", cmd.GrantCredits(amount=1)) for i in range(3)]]
    produce_commands(herald.producer, settings.commands_topic, before)
    decided: list[str] = []
    _run_until(_handler(herald, f"{settings.consumer_group_prefix}h", decided), lambda: len(decided) == 4)
    close_herald(herald)

    broker.restart()  # memory-only: the commands topic and the group's offsets are gone

    herald = heralds.start(broker=broker, resume_relays=False)
    after = [_envelope(ws, f"grant-{i}", cmd.GrantCredits(amount=1)) for i in range(3, 9)]
    produce_commands(herald.producer, settings.commands_topic, after)  # more records than the saved offset
    decided_after: list[str] = []
    _run_until(_handler(herald, f"{settings.consumer_group_prefix}h", decided_after),
               lambda: len(decided_after) >= 6)
    assert decided_after == [c.command_id for c in after], "none skipped by the old topic's offset"
    assert herald.app.find(Wallet, ws).available == 9
