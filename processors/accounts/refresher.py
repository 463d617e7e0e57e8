"""The proactive token refresher: a tick refreshes the accounts whose access token expires
within ``ahead_s``, soonest first, found by the store's expiry index (never a scan of every
account). A refresh that fails for the moment is tried again at the next tick; one refused for
good marks the account ``needs_reconnect`` (credentials.py), which takes it out of the index."""

from __future__ import annotations

import logging

from psycopg_pool import ConnectionPool

from herald.runtime.ticker import Ticker
from processors.accounts import vault
from processors.accounts.credentials import Credentials, CredentialsError

log = logging.getLogger(__name__)


def refresh_expiring(pool: ConnectionPool, credentials: Credentials, *, ahead_s: float, limit: int) -> int:
    """One tick: returns how many it refreshed (``limit``: there may be more, tick again at once;
    rows that failed for the moment are not counted, so they never make the ticker spin)."""
    with pool.connection() as conn:
        rows = vault.expiring(conn, ahead_s, limit)
    refreshed = 0
    for row in rows:
        try:
            if credentials.refresh(row, because="ahead").revision != row.revision:
                refreshed += 1
        except CredentialsError as error:
            log.info("account %s: not refreshed ahead of expiry (%s)", row.social_account_id, error.detail)
    return refreshed


def refresher_ticker(pool: ConnectionPool, credentials: Credentials, *, interval_s: float, ahead_s: float,
                     limit: int) -> Ticker:
    return Ticker("token-refresher", interval_s,
                  lambda: refresh_expiring(pool, credentials, ahead_s=ahead_s, limit=limit), full=limit)
