"""A notification delivery's lifecycle under any sequence of commands (hypothesis state machine):
queued notices fold in only before the first attempt; each attempt's outcome is recorded once,
in order (the attempt number fences it: a repeated, stale or skipped attempt is rejected); nothing
is recorded after sent or gave_up; a command repeated under its id has one effect. The recorded
events are exactly the accepted decisions, and the aggregate's state stays a few fields."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from domain.application import HeraldApplication
from domain.notification import NotificationDelivery
from schemas import commands as cmd

WS = "ws-notify"
DELIVERY = "msg_1"
T0 = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
COMMON = {"delivery_id": DELIVERY, "channel": "webhook", "target_id": "whep_1", "cause": "post_failed"}


def _outcome(attempt: int, outcome: str, disables: bool = False) -> cmd.RecordNotificationDelivery:
    return cmd.RecordNotificationDelivery(
        notice_event_id="n0", attempt=attempt, outcome=outcome, status_code=500 if outcome == "failed" else None,
        error="" if outcome == "sent" else "HTTP 500", notice_event_ids=["n0"],
        next_attempt_at=T0 + timedelta(minutes=1) if outcome == "failed" else None,
        endpoint_disabled="HTTP 410" if disables and outcome == "gave_up" else None, **COMMON)


class DeliveryLifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.app = HeraldApplication({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=lambda: T0)
        self.ids = itertools.count()
        self.sent: dict[str, cmd.CommandEnvelope] = {}
        # The model: what a correct delivery would have recorded.
        self.exists, self.status, self.attempts, self.notices, self.disabled = False, "queued", 0, 0, 0
        self.accepted_events: list[str] = []

    def _send(self, payload: cmd.Payload) -> bool:
        envelope = cmd.CommandEnvelope.wrap(payload, command_id=f"c{next(self.ids)}", workspace_id=WS,
                                            issued_by="tests", issued_at=T0)
        self.sent[envelope.command_id] = envelope
        return self.app.handle(envelope).accepted

    @rule(n=st.integers(0, 3))
    def queue(self, n: int) -> None:
        accepted = self._send(cmd.QueueNotificationDelivery(notice_event_id=f"n{n}", **COMMON))
        expected = not self.exists or (self.status == "queued" and self.attempts == 0)
        assert accepted == expected
        if accepted:
            self.exists, self.notices = True, self.notices + 1
            self.accepted_events.append("queued")

    @rule(attempt=st.integers(0, 5), outcome=st.sampled_from(["sent", "failed", "gave_up"]), disables=st.booleans())
    def record(self, attempt: int, outcome: str, disables: bool) -> None:
        accepted = self._send(_outcome(attempt, outcome, disables))
        fresh = not self.exists
        if self.status in ("sent", "gave_up"):
            expected = False
        elif outcome == "gave_up":
            expected = attempt in (self.attempts, self.attempts + 1)
        else:
            expected = attempt == self.attempts + 1
        assert accepted == expected, (attempt, outcome, self.status, self.attempts)
        if accepted:
            if fresh:  # an outcome whose queue command never came starts the delivery itself
                self.exists, self.notices = True, 1
                self.accepted_events.append("queued")
            self.status, self.attempts = outcome, attempt
            self.accepted_events.append(outcome)
            if disables and outcome == "gave_up":
                self.disabled += 1
                self.accepted_events.append("endpoint_disabled")

    @precondition(lambda self: self.sent)
    @rule(data=st.data())
    def repeat(self, data: st.DataObject) -> None:
        """A command redelivered under its id: the first decision stands, nothing more is recorded."""
        command_id = data.draw(st.sampled_from(sorted(self.sent)))
        before = len(self._events())
        first = self.app.handle(self.sent[command_id])
        assert self.app.handle(self.sent[command_id]) == first
        assert len(self._events()) == before

    def _events(self) -> list[str]:
        if not self.exists:
            return []
        delivery = self.app.find(NotificationDelivery, NotificationDelivery.key(WS, DELIVERY))
        return [e.type.split(".")[2] for e in self.app.events.get(delivery.id)]

    @invariant()
    def state_matches_the_model(self) -> None:
        assert self._events() == self.accepted_events
        assert self.accepted_events.count("sent") <= 1 and self.disabled <= 1 + self.accepted_events.count("gave_up")
        if self.exists:
            delivery = self.app.find(NotificationDelivery, NotificationDelivery.key(WS, DELIVERY))
            assert (str(delivery.status), delivery.attempts, delivery.notices) == \
                (self.status, self.attempts, self.notices)
            assert set(vars(delivery)) <= {"_id", "_version", "_created_on", "_modified_on", "_pending_events",
                                           "workspace_id", "delivery_id", "channel", "target_id", "cause", "status",
                                           "attempts", "notices"}


DeliveryLifecycle.TestCase.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)
TestDeliveryLifecycle = DeliveryLifecycle.TestCase
