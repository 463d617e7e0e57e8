"""Social-account credentials at the moment of use: sealed into the store when an account is
connected, read fresh for each platform call, refreshed just in time or when the platform
refuses them, and an account marked ``needs_reconnect`` when they cannot be refreshed.

Token lifecycle (issue 9, item 4):

- **just in time**: a call whose access token expires within ``margin_s`` refreshes it first;
- **on 401**: the engine asks ``for_call(..., refused=token)`` once, which refreshes unless
  another caller already did, and retries the call once;
- **ahead of time**: the ``token-refresher`` ticker (refresher.py) refreshes what expires soon;
- **rotation**: a refresh runs with the store row locked (``SELECT … FOR UPDATE``: one refresh of
  an account at a time, in every process, so a rotated refresh token is never presented twice)
  and writes compare-and-set on the row's revision;
- **refused for good** (RFC 6749 §5.2: ``invalid_grant`` and friends, or a 401 on a token that
  has no refresh token): the row becomes ``needs_reconnect`` and a ``MarkAccountNeedsReconnect``
  command goes to the domain (id derived from account, version and revision: repeats are one).
  The domain then skips the account's destinations (reason ``account_needs_reconnect``) until
  the account is connected again.
"""

from __future__ import annotations

import logging
import threading
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Callable, Mapping, Protocol

import httpx
from psycopg_pool import ConnectionPool

from processors.accounts import vault
from processors.accounts.vault import StoredCredential
from processors.commands import command_for
from processors.platforms import oauth
from processors.platforms.base import (AccountCredentials, AdapterRegistry, PlatformAdapter, UnknownPlatform,
                                       missing_settings)
from processors.platforms.oauth import OAuthClient, RefreshRefused, RefreshUnavailable
from domain.account.handlers import account_id_for
from domain.base import derived_id
from schemas.commands import CommandEnvelope, ConnectSocialAccount, MarkAccountNeedsReconnect, Outcome

if TYPE_CHECKING:
    from domain.application import Decision, HeraldApplication

log = logging.getLogger(__name__)

NEEDS_RECONNECT = "account_needs_reconnect"  # the reason a destination is skipped with


class Cipher(Protocol):
    def seal(self, plaintext: str) -> str: ...

    def unseal(self, sealed: str) -> str: ...


class CredentialsError(Exception):
    """No usable token for this call: ``outcome`` is what the attempt records (skipped when the
    account needs reconnecting, retry when the token endpoint was unavailable)."""

    def __init__(self, outcome: Outcome, detail: str, error_kind: str) -> None:
        super().__init__(detail)
        self.outcome, self.detail, self.error_kind = outcome, detail, error_kind


@dataclass(frozen=True)
class RefreshSettings:
    margin_s: float = 300.0  # just in time: refresh before a call when the token expires within this
    timeout_s: float = 10.0
    attempts: int = 3  # token endpoint tries per refresh (tenacity, jittered)
    wait_initial_s: float = 0.2


class Credentials:
    def __init__(self, *, pool: ConnectionPool, cipher: Cipher, adapters: Callable[[], AdapterRegistry] | None = None,
                 clients: Mapping[str, OAuthClient] | None = None, http: httpx.Client | None = None,
                 send_commands: Callable[[list[CommandEnvelope]], object] | None = None,
                 settings: RefreshSettings = RefreshSettings(),
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.pool, self.cipher, self.clients, self.s, self.clock = pool, cipher, dict(clients or {}), settings, clock
        self._adapters, self._adapter_registry = adapters, None
        self.http = http
        self.send_commands = send_commands
        self._stripes = [threading.Lock() for _ in range(256)]  # one refresh per account in this process

    # Connecting (the gateway) ------------------------------------------------------------

    def store(self, *, social_account_id: str, version: str, workspace_id: str, platform: str,
              instance_url: str | None, access_token: str, refresh_token: str | None,
              access_expires_at: datetime | None) -> bool:
        """Seal and store one version (once; a repeat stores nothing). True when new."""
        with self.pool.connection() as conn:
            return vault.store(conn, social_account_id=social_account_id, version=version,
                               workspace_id=workspace_id, platform=platform, instance_url=instance_url,
                               sealed_access_token=self.cipher.seal(access_token),
                               sealed_refresh_token=self.cipher.seal(refresh_token) if refresh_token else None,
                               access_expires_at=access_expires_at)

    def discard(self, social_account_id: str, version: str, workspace_id: str) -> None:
        with self.pool.connection() as conn:
            vault.discard(conn, social_account_id, version, workspace_id)

    def supersede(self, social_account_id: str, version: str, workspace_id: str) -> None:
        with self.pool.connection() as conn:
            vault.supersede(conn, social_account_id, version, workspace_id)

    # Calling (the engine) ----------------------------------------------------------------

    def for_call(self, *, account_id: str, workspace_id: str, platform: str, handle: str, instance_url: str | None,
                 refused: str | None = None, settings: Mapping[str, str] | None = None) -> AccountCredentials:
        """The account's credentials for a platform call now: refreshed first if the token expires
        within the margin, or if the platform just refused ``refused`` (the token it was sent).
        Raises CredentialsError when there is no usable token."""
        with self.pool.connection() as conn:
            row = vault.current(conn, account_id, workspace_id)
        if row is None:
            if refused is not None:  # refused, and nothing stored that could be refreshed
                self._tell_domain(account_id, workspace_id, None, 0, "access_token_rejected",
                                  "the platform refused the token and the account has none stored")
                raise CredentialsError(Outcome.skipped, NEEDS_RECONNECT, "auth")
            return AccountCredentials(account_id=account_id, platform=platform, handle=handle, access_token="",
                                      instance_url=instance_url, settings=dict(settings or {}))
        if row.status == "needs_reconnect":
            self._tell_domain(row.social_account_id, row.workspace_id, row.version, row.revision - 1,
                              row.reason or "needs_reconnect", "")  # again, in case the first send was lost
            raise CredentialsError(Outcome.skipped, NEEDS_RECONNECT, "auth")
        if refused is not None and self.cipher.unseal(row.sealed_access_token) == refused:
            row = self.refresh(row, because="refused")
        elif self._expiring(row):
            row = self.refresh(row, because="expiring")
        return AccountCredentials(account_id=account_id, platform=platform, handle=handle,
                                  access_token=self.cipher.unseal(row.sealed_access_token), instance_url=instance_url,
                                  settings=dict(settings or {}))

    def _expiring(self, row: StoredCredential) -> bool:
        return (row.access_expires_at is not None and row.sealed_refresh_token is not None
                and row.access_expires_at <= self.clock() + timedelta(seconds=self.s.margin_s))

    # Refreshing -------------------------------------------------------------------------

    def refresh(self, seen: StoredCredential, *, because: str) -> StoredCredential:
        """Refresh the row ``seen`` (unless another refresher already moved it on: then its result).
        ``because`` is "refused" (the platform answered 401), "expiring" or "ahead" (the ticker)."""
        stripe = self._stripes[zlib.crc32(seen.social_account_id.encode()) % len(self._stripes)]
        with stripe, self.pool.connection() as conn:
            with conn.transaction():
                outcome = self._refresh_locked(conn, seen, because)
        if isinstance(outcome, CredentialsError):  # raised once the transaction committed what it marked
            raise outcome
        return outcome

    def _refresh_locked(self, conn: object, seen: StoredCredential, because: str) -> StoredCredential | CredentialsError:
        """In the refresh's transaction; a failure that marked the row is returned, not raised, so
        that the mark commits."""
        row = vault.lock(conn, seen.social_account_id, seen.version)
        if row is None:
            raise CredentialsError(Outcome.retry, "the account's credentials were replaced meanwhile", "auth")
        if row.revision != seen.revision:
            if row.status == "needs_reconnect":
                raise CredentialsError(Outcome.skipped, NEEDS_RECONNECT, "auth")
            return row  # refreshed by someone else while we waited for the lock
        refresh_token = self.cipher.unseal(row.sealed_refresh_token) if row.sealed_refresh_token else ""
        endpoint, client = self._endpoint(row)
        if not refresh_token or endpoint is None or client is None:
            if because != "refused":
                return row  # nothing to refresh with; the token still works until refused
            return self._give_up(conn, row, "access_token_rejected",
                                 "the platform refused the token and it cannot be refreshed")
        assert self.http is not None
        try:
            tokens = oauth.refresh(self.http, endpoint, client, refresh_token, timeout_s=self.s.timeout_s,
                                   attempts=self.s.attempts, now=self.clock, wait_initial_s=self.s.wait_initial_s)
        except RefreshRefused as refused:
            return self._give_up(conn, row, refused.error, refused.description)
        except RefreshUnavailable as error:
            log.warning("account %s: token refresh unavailable (%s)", row.social_account_id, error)
            raise CredentialsError(Outcome.retry, f"token refresh unavailable: {error}", "transient") from None
        # Persist the rotation before anyone uses the new access token (RFC 6749 §6: the old
        # refresh token is discarded); the row lock makes the compare-and-set succeed.
        new_refresh = tokens.refresh_token or refresh_token
        rotated = vault.rotate(conn, row, sealed_access_token=self.cipher.seal(tokens.access_token),
                               sealed_refresh_token=self.cipher.seal(new_refresh),
                               access_expires_at=tokens.expires_at)
        if rotated is None:  # not reachable while the row is locked; kept as the compare-and-set's guard
            raise CredentialsError(Outcome.retry, "the credentials changed during the refresh", "transient")
        log.info("account %s: token refreshed (%s), revision %d", row.social_account_id, because, rotated.revision)
        return rotated

    def _give_up(self, conn: object, row: StoredCredential, reason: str, detail: str) -> CredentialsError:
        vault.mark_needs_reconnect(conn, row, reason)  # type: ignore[arg-type]
        # Produced inside the transaction: if the send fails the row is not marked and the next
        # call tries again; if the commit fails the domain was told, and a repeat is one command.
        self._tell_domain(row.social_account_id, row.workspace_id, row.version, row.revision, reason, detail)
        log.warning("account %s: refresh refused (%s); it needs reconnecting", row.social_account_id, reason)
        return CredentialsError(Outcome.skipped, NEEDS_RECONNECT, "auth")

    def _tell_domain(self, account_id: str, workspace_id: str, version: str | None, revision: int, reason: str,
                     detail: str) -> None:
        if self.send_commands is None:
            return
        payload = MarkAccountNeedsReconnect(social_account_id=account_id, reason=reason[:200],
                                            credential_version=version, detail=detail[:500])
        self.send_commands([command_for(payload, workspace_id=workspace_id, issued_by="token-refresher",
                                        id_parts=("needs-reconnect", account_id, version, revision))])

    def registry(self) -> AdapterRegistry | None:
        """The adapters this store refreshes tokens with (built once, on first use); None: none given."""
        if self._adapters is None:
            return None
        if self._adapter_registry is None:
            self._adapter_registry = self._adapters()
        return self._adapter_registry

    def adapter(self, platform: str) -> PlatformAdapter | None:
        """The platform's adapter (None: no registry here, or no such platform)."""
        registry = self.registry()
        if registry is None:
            return None
        try:
            return registry.get(platform)
        except UnknownPlatform:
            return None

    def client_for(self, platform: str, instance_url: str | None) -> OAuthClient | None:
        """Herald's OAuth client at this instance (``"<platform>@<instance URL>"`` in the settings:
        Mastodon registers apps per instance), else the platform's (``"<platform>"``)."""
        if instance_url:
            found = self.clients.get(f"{platform}@{instance_url.rstrip('/')}")
            if found is not None:
                return found
        return self.clients.get(platform)

    def _endpoint(self, row: StoredCredential) -> tuple[str | None, OAuthClient | None]:
        adapter = self.adapter(row.platform)
        described = getattr(adapter, "token_refresh", None)
        if described is None:
            return None, None
        base = row.instance_url or getattr(adapter, "default_base_url", None)
        return described.token_endpoint(base), self.client_for(row.platform, base)


def credential_version_for(command_id: str) -> str:
    """The store version of the tokens a connect command brings: derived from its id, so a retry
    of the command stores nothing new."""
    return derived_id("credential", command_id)


def connect_with_tokens(app: HeraldApplication, credentials: Credentials, envelope: CommandEnvelope, *,
                        access_token: str, refresh_token: str | None = None,
                        access_expires_at: datetime | None = None) -> Decision:
    """What the gateway's connect endpoint does, for callers inside Herald (tools, tests, benches):
    store the sealed tokens under the command's version, then decide a connect that names only that
    version; a rejection removes them, an acceptance removes the versions they replace.
    ``envelope`` wraps a ``ConnectSocialAccount`` without a credential version."""
    payload = envelope.parsed_payload()
    assert isinstance(payload, ConnectSocialAccount) and payload.credential_version is None
    adapter = credentials.adapter(str(payload.platform))
    missing = missing_settings(adapter, payload.settings) if adapter is not None else []
    if missing:
        raise ValueError(f"a {payload.platform} account needs the settings {', '.join(missing)}")
    account_id = account_id_for(envelope.command_id, payload)
    version = credential_version_for(envelope.command_id)
    instance_url = str(payload.instance_url).rstrip("/") if payload.instance_url else None
    credentials.store(social_account_id=account_id, version=version, workspace_id=envelope.workspace_id,
                      platform=str(payload.platform), instance_url=instance_url, access_token=access_token,
                      refresh_token=refresh_token, access_expires_at=access_expires_at)
    named = payload.model_copy(update={"credential_version": version})
    decision = app.handle(envelope.model_copy(update={"payload": named.model_dump(mode="json", exclude_none=True)}))
    if decision.accepted:
        credentials.supersede(account_id, version, envelope.workspace_id)
    else:
        credentials.discard(account_id, version, envelope.workspace_id)
    return decision
