"""Publisher: turns an attempt the domain started into one call to the platform.

It writes the attempt journal BEFORE calling the platform. If the same attempt comes back
(redelivery after a crash) and the journal says it is still in flight, the outcome is
unknown: the adapter reconciles it with the platform, and if that cannot tell, the
destination is flagged for review instead of being posted again.
"""

from __future__ import annotations

import json
import logging
from typing import Callable, Iterable

from psycopg import Connection
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from domain.base import derived_id
from processors.commands import command_for
from processors.platforms.base import (
    AccountCredentials,
    AdapterRegistry,
    ErrorKind,
    PlatformAdapter,
    PublishError,
    PublishRequest,
    PublishResult,
)
from schemas import events as ev
from schemas.commands import CommandEnvelope, Outcome, RecordPublishOutcome
from schemas.events import CloudEvent

log = logging.getLogger(__name__)

DDL = """
CREATE TABLE IF NOT EXISTS publish_journal (
    attempt_key    text        PRIMARY KEY,
    post_id        text        NOT NULL,
    destination_id text        NOT NULL,
    attempt        integer     NOT NULL,
    platform       text        NOT NULL,
    state          text        NOT NULL CHECK (state IN ('in_flight', 'done')),
    outcome        jsonb,
    started_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz
);
"""

RETRYABLE = frozenset({ErrorKind.rate_limited, ErrorKind.transient})


class Publisher:
    def __init__(self, *, pool: ConnectionPool, adapters: AdapterRegistry, unseal: Callable[[str], str]) -> None:
        self.pool, self.adapters, self.unseal = pool, adapters, unseal

    def __call__(self, _conn: Connection, event: CloudEvent) -> Iterable[CommandEnvelope]:
        if event.type != ev.AttemptStarted.type:
            return []
        attempt = event.parsed_data()
        assert isinstance(attempt, ev.AttemptStarted)
        outcome = self._journaled_outcome(attempt)
        return [
            command_for(
                outcome,
                workspace_id=event.workspaceid,
                id_parts=("outcome", attempt.attempt_key),
                issued_by="publisher",
                caused_by=event,
            )
        ]

    def _journaled_outcome(self, attempt: ev.AttemptStarted) -> RecordPublishOutcome:
        # The journal commits on its own connection: "in flight" must be durable before the call.
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT state, outcome FROM publish_journal WHERE attempt_key = %s", (attempt.attempt_key,)
            ).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO publish_journal (attempt_key, post_id, destination_id, attempt, platform, state)"
                    " VALUES (%s, %s, %s, %s, %s, 'in_flight')",
                    (attempt.attempt_key, attempt.post_id, attempt.destination_id, attempt.attempt, attempt.platform),
                )
        if row is not None and row[0] == "done":
            return RecordPublishOutcome.model_validate(row[1])
        outcome = self._publish(attempt) if row is None else self._reconcile(attempt)
        with self.pool.connection() as conn:
            conn.execute(
                "UPDATE publish_journal SET state = 'done', outcome = %s, finished_at = now() WHERE attempt_key = %s",
                (Jsonb(json.loads(outcome.model_dump_json())), attempt.attempt_key),
            )
        return outcome

    def _publish(self, attempt: ev.AttemptStarted) -> RecordPublishOutcome:
        try:
            adapter, request = self._request(attempt)
            return _published(attempt, adapter.publish(request))
        except PublishError as error:
            return _failed(attempt, error)

    def _reconcile(self, attempt: ev.AttemptStarted) -> RecordPublishOutcome:
        try:
            adapter, request = self._request(attempt)
            found = adapter.reconcile(request)
            if found is not None:
                return _published(attempt, found)
            log.info("attempt %s: platform provably has no post; publishing", attempt.attempt_key)
            return _published(attempt, adapter.publish(request))
        except PublishError as error:
            if error.kind in RETRYABLE:
                return _outcome(attempt, Outcome.unknown, detail=f"could not reconcile: {error.detail}")
            return _failed(attempt, error)

    def _request(self, attempt: ev.AttemptStarted) -> tuple[PlatformAdapter, PublishRequest]:
        try:
            adapter = self.adapters.get(attempt.platform)
        except KeyError:
            raise PublishError(ErrorKind.permanent, f"no adapter for platform {attempt.platform!r}", None) from None
        account = AccountCredentials(
            account_id=attempt.social_account_id,
            platform=attempt.platform,
            handle=attempt.handle,
            access_token=self.unseal(attempt.sealed_token) if attempt.sealed_token else "",
            instance_url=attempt.instance_url,
        )
        # The platform's idempotency key is per destination, not per attempt: a retry after a
        # timeout (the platform may have posted) then returns the earlier post instead of a second one.
        request = PublishRequest(
            attempt_key=derived_id("publish", attempt.post_id, attempt.destination_id),
            account=account,
            text=attempt.text,
            media_urls=tuple(attempt.media_urls),
        )
        return adapter, request


def _outcome(attempt: ev.AttemptStarted, outcome: Outcome, **fields: object) -> RecordPublishOutcome:
    return RecordPublishOutcome(
        post_id=attempt.post_id, destination_id=attempt.destination_id, attempt=attempt.attempt, outcome=outcome, **fields
    )


def _published(attempt: ev.AttemptStarted, result: PublishResult) -> RecordPublishOutcome:
    return _outcome(attempt, Outcome.published, platform_post_id=result.platform_post_id, url=result.url)


def _failed(attempt: ev.AttemptStarted, error: PublishError) -> RecordPublishOutcome:
    kind = Outcome.retry if error.kind in RETRYABLE else Outcome.failed
    return _outcome(
        attempt, kind, error_kind=str(error.kind), detail=error.detail[:2000], retry_after_s=error.retry_after_s
    )
