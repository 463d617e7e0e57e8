"""What every route shares: the caller's key, workspace scoping, deciding a command, reading a
read model no older than the caller's own last write."""

# No `from __future__ import annotations`: FastAPI must see the Annotated aliases.
import contextlib
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Callable, Iterator, Protocol

from fastapi import Depends, Header, Path, Query, Request, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from psycopg import Connection
from psycopg_pool import ConnectionPool
from pydantic import ValidationError

from domain.application import ConflictsPersisted, Decision, HeraldApplication
from domain.base import derived_id
from gateway import auth, idempotency
from processors.accounts.credentials import Credentials
from processors.generation.providers import Generator
from processors.platforms.base import AdapterRegistry
from gateway.problems import ProblemError, field_errors, rejection
from gateway.rate_limits import RateLimits, TokenBuckets, Verdict, client_bucket
from herald.net.safe_fetch import static_refusal
from herald.storage.tolerant_time import tolerate_out_of_range
from projections import positions
from schemas import api
from schemas import commands as cmd

POSITION_HEADER = "Herald-Position"


class DeadLetterStore(Protocol):
    """Lists and replays the DLQ (herald.messaging.dead_letters.DeadLetterStore). ``replay`` raises KeyError for
    an unknown id; both return objects with ``to_dict()``."""

    def list(self, limit: int) -> list[Any]: ...

    def replay(self, dead_letter_id: str) -> Any: ...


@dataclass
class GatewayDeps:
    app: HeraldApplication  # decides commands; never read for queries
    pool: ConnectionPool  # API keys and the read models
    submit_command: Callable[[cmd.CommandEnvelope], None]  # durably queues for the commands topic; raises on failure
    admin_api_key: str
    ready_checks: dict[str, Callable[[], None]] = field(default_factory=dict)  # name → raises if not ready
    dead_letters: DeadLetterStore | None = None  # admin dead-letter endpoints; None → they answer 503
    read_wait_s: float = 10.0  # longest a GET waits for the read models to reach `min_position`
    credentials: Credentials | None = None  # the private store connect seals tokens into; None → tokens refused
    max_body_bytes: int = 1024 * 1024  # larger request bodies answer 413
    rate_limits: RateLimits | None = None  # None → no rate limits
    failed_auth: TokenBuckets | None = None  # failed authentications per client address; None → not limited
    outbound_allowed_networks: tuple[str, ...] = ()  # non-public networks a client's URLs may name (tests: 127/8)
    # The platform adapters (GET /v1/platforms, per-platform settings at connect); None → the
    # credentials store's, if it has any; neither → platforms answer 503 and settings go unchecked.
    adapters: Callable[[], AdapterRegistry] | None = None
    # The AI provider POST …/generations calls (processors/generation/configured.py); None → the
    # offline templates. Built once, at the first generation; if it raises, generations fail
    # with reason not_configured.
    generator: Callable[[], Generator] | None = None


_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <key>`: the admin key or a service key")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="the same key, in `X-API-Key`")

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=api.IDEMPOTENCY_KEY_PATTERN,
        description="Makes the request safe to retry: a repeat returns the first outcome (accepted or rejected) "
        "and changes nothing. Scoped to the workspace and the kind of command. After a rejection, send a new "
        "key to try again. Omitted → every request is a new command.",
    ),
]

# Ids in a path: the same alphabet as ids in a body, checked before anything is decided.
WorkspaceId = Annotated[str, Path(min_length=1, max_length=200, pattern=cmd.ID_PATTERN)]
ResourceId = Annotated[str, Path(min_length=1, max_length=200, pattern=cmd.ID_PATTERN)]

MinPosition = Annotated[
    int | None,
    Query(ge=0, le=2**63 - 1, description="read your own write: wait (up to a few seconds) until the read models "
          "have applied the workspace's events up to this position, the `position` a command answered with; 422 "
          "`unknown_position` when no decision of this workspace is at that position"),
]


class Shared:
    """The route helpers bound to one gateway's dependencies."""

    def __init__(self, deps: GatewayDeps) -> None:
        self.deps = deps
        self._registry: AdapterRegistry | None = None

        def principal(
            bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
            api_key: Annotated[str | None, Depends(_api_key)],
            request: Request,
            response: Response,
        ) -> auth.Principal:
            presented = bearer.credentials if bearer else api_key
            client = client_bucket(request.client.host if request.client else None)
            if deps.failed_auth is not None:  # refused before the key is looked up: a flood costs no lookups
                _refuse_failed_auth(deps.failed_auth.peek(client))
            found = auth.authenticate(deps.pool, deps.admin_api_key, presented) if presented else None
            if found is None:
                headers = {"WWW-Authenticate": "Bearer"}
                if deps.failed_auth is not None:
                    failed = deps.failed_auth.take(client)
                    _refuse_failed_auth(failed)
                    headers.update(failed.headers())
                raise ProblemError(401, "unauthenticated", "a valid API key is required: Authorization: Bearer <key>",
                                   headers)
            request.state.api_key_id = found.key_id  # the access log names the key (gateway.app)
            if deps.rate_limits is not None:
                verdict = deps.rate_limits.per_key.take(found.key_id)
                _refuse_over_rate(verdict, "this key")
                response.headers.update(verdict.headers())
            return found

        self.principal = principal

    def registry(self) -> AdapterRegistry | None:
        if self._registry is None:
            if self.deps.adapters is not None:
                self._registry = self.deps.adapters()
            elif self.deps.credentials is not None:
                self._registry = self.deps.credentials.registry()
        return self._registry

    def outbound_url(self, url: str | None, field: str) -> None:
        """Refuses (422) a client-supplied URL Herald would call that can never be public."""
        if url is None:
            return
        reason = static_refusal(url, self.deps.outbound_allowed_networks)
        if reason is not None:
            raise ProblemError(422, f"{field}_not_allowed", f"{field}: {reason}")

    def within(self, caller: auth.Principal, workspace_id: str, scope: str = auth.WORKSPACE_READ) -> str:
        # Another workspace answers exactly like a workspace that does not exist, whatever the
        # key's scopes: only then is a missing scope told (403).
        if not caller.may_access(workspace_id):
            raise ProblemError(404, "unknown_workspace", f"no workspace {workspace_id}")
        Shared.require(caller, scope)
        if self.deps.rate_limits is not None:
            _refuse_over_rate(self.deps.rate_limits.per_workspace.take(workspace_id), "this workspace")
        return workspace_id

    @staticmethod
    def require(caller: auth.Principal, scope: str) -> None:
        if not caller.holds(scope):
            raise ProblemError(403, "forbidden", f"this key lacks the {scope} scope", required_scope=scope)

    def decide(self, caller: auth.Principal, workspace_id: str, payload: cmd.Payload, idempotency_key: str | None,
               response: Response | None = None, command_id: str | None = None) -> Decision:
        command_type = cmd.COMMAND_TYPE_OF[type(payload)]
        command_id = command_id or command_id_for(workspace_id, command_type, idempotency_key)
        try:
            envelope = cmd.CommandEnvelope.wrap(
                payload, command_id=command_id, workspace_id=workspace_id,
                issued_by=caller.issued_by, issued_at=datetime.now(UTC),
            )
        except ValidationError as error:  # e.g. a workspace id outside the id alphabet
            raise ProblemError(422, "invalid_payload", "the command could not be built from this request",
                               errors=field_errors(list(error.errors()))) from None
        if idempotency_key is not None and not idempotency.same_body(
                self.deps.pool, command_id, idempotency.body_digest(payload)):
            raise ProblemError(422, "idempotency_key_reused", "this Idempotency-Key was used with a different "
                               "request; send a new key for a new request", command_id=command_id)
        try:
            decision = self.deps.app.handle(envelope)
        except ConflictsPersisted:  # not expected with workspace locks; kept as a clear answer, not a 500
            raise ProblemError(503, "conflict_persisted", "concurrent writers kept changing this workspace; retry "
                               "with the same Idempotency-Key", {"Retry-After": "1"}) from None
        if decision.command_type != command_type:
            raise ProblemError(422, "idempotency_key_reused", f"command {command_id} was a {decision.command_type}")
        if response is not None and decision.position is not None:
            response.headers[POSITION_HEADER] = str(decision.position)
        if not decision.accepted:
            raise rejection(decision.reason_code or "rejected", decision.detail, command_id, decision.limit)
        return decision

    def _decided_for(self, workspace_id: str, position: int) -> bool:
        """Whether the event at ``position`` in the store is one of the workspace's."""
        app = self.deps.app
        found = app.recorder.select_notifications(start=position, limit=1, stop=position)
        if not found or found[0].id != position:
            return False
        return getattr(app.mapper.to_domain_event(found[0]), "workspace_id", None) == workspace_id

    @contextlib.contextmanager
    def read(self, workspace_id: str, min_position: int | None, response: Response) -> Iterator[Connection]:
        """A connection to read the workspace's read models once they have applied ``min_position``;
        the position they are at goes back in the ``Herald-Position`` header."""
        deadline = time.monotonic() + self.deps.read_wait_s
        waited_for = False
        with self.deps.pool.connection() as conn:
            tolerate_out_of_range(conn.adapters)  # one stored row out of Python's range must not fail the read
            while True:
                at = positions.read_position(conn, workspace_id)
                conn.commit()  # each look sees the latest committed position
                if min_position is None or at >= min_position:
                    break
                if not waited_for and not self._decided_for(workspace_id, min_position):
                    # Waiting could never end: no decision of this workspace is at that position.
                    raise ProblemError(422, "unknown_position", f"position {min_position} is not a decision of "
                                       f"workspace {workspace_id}; pass the `position` a command answered with",
                                       position=at)
                waited_for = True
                if time.monotonic() >= deadline:
                    raise ProblemError(503, "read_model_behind", f"the read models are at position {at}, not yet "
                                       f"at {min_position}; retry shortly", {"Retry-After": "1"}, position=at)
                time.sleep(0.01)
            response.headers[POSITION_HEADER] = str(at)
            yield conn


def _refuse_over_rate(verdict: Verdict, whose: str) -> None:
    if not verdict.allowed:
        raise ProblemError(429, "rate_limited", f"{whose} is over its rate of requests; retry after "
                           f"{verdict.retry_after_s} s", verdict.headers())


def _refuse_failed_auth(verdict: Verdict) -> None:
    if not verdict.allowed:
        raise ProblemError(429, "rate_limited", "too many requests from this address failed authentication; retry "
                           f"after {verdict.retry_after_s} s", verdict.headers())


def command_id_for(workspace_id: str, command_type: str, idempotency_key: str | None) -> str:
    """The command id of a synchronous request.

    A client's Idempotency-Key is scoped to its workspace and the command type, so two
    workspaces (or two endpoints) using the same key never share an outcome.
    """
    if idempotency_key is None:
        return str(uuid.uuid4())
    return derived_id("http", workspace_id, command_type, idempotency_key)
