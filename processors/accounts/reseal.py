"""Re-sealing every stored secret with the key ring's active key, so a retired key can be dropped.

Stored secrets: the tokens in ``account_credentials`` (vault.py), the PKCE verifiers of pending
OAuth authorizations (authorizations.py) and the webhook signing secrets
(processors/notifications/webhooks.py). Rows are walked by primary key in batches and each
row is rewritten only if it still holds the values that were read (a refresh that rotated the
tokens meanwhile wins; the next run re-seals its values if it sealed them with an old key).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from psycopg_pool import ConnectionPool

from herald.crypto import TokenCipher

BATCH = 500


@dataclass
class Resealed:
    rewritten: int = 0
    skipped: int = 0  # changed by someone else between the read and the write
    by_key: Counter = field(default_factory=Counter)  # key id (None: sealed before key ids) → values found

    def still_on_retired_keys(self, cipher: TokenCipher) -> int:
        return sum(n for kid, n in self.by_key.items() if kid != cipher.active)


def reseal_credentials(pool: ConnectionPool, cipher: TokenCipher, batch: int = BATCH) -> Resealed:
    done = Resealed()
    after: tuple[str, str] = ("", "")
    while True:
        with pool.connection() as conn:
            rows = conn.execute(
                "SELECT social_account_id, version, sealed_access_token, sealed_refresh_token FROM account_credentials"
                " WHERE (social_account_id, version) > (%s, %s) ORDER BY social_account_id, version LIMIT %s",
                (*after, batch)).fetchall()
            for account, version, access, refresh in rows:
                for sealed in (access, refresh):
                    if sealed:
                        done.by_key[cipher.sealed_with(sealed)] += 1
                new_access, new_refresh = cipher.reseal(access), cipher.reseal(refresh) if refresh else refresh
                if (new_access, new_refresh) == (access, refresh):
                    continue
                changed = conn.execute(
                    "UPDATE account_credentials SET sealed_access_token = %s, sealed_refresh_token = %s"
                    " WHERE social_account_id = %s AND version = %s AND sealed_access_token = %s"
                    " AND sealed_refresh_token IS NOT DISTINCT FROM %s",
                    (new_access, new_refresh, account, version, access, refresh)).rowcount
                if changed:
                    done.rewritten += 1
                else:
                    done.skipped += 1
        if len(rows) < batch:
            break
        after = (rows[-1][0], rows[-1][1])
    _reseal_authorizations(pool, cipher, done)
    _reseal_webhook_secrets(pool, cipher, done)
    return done


def _reseal_webhook_secrets(pool: ConnectionPool, cipher: TokenCipher, done: Resealed) -> None:
    with pool.connection() as conn:
        if conn.execute("SELECT to_regclass('webhook_endpoints')").fetchone()[0] is None:
            return
        rows = conn.execute("SELECT endpoint_id, sealed_secret, sealed_previous_secret FROM webhook_endpoints"
                            ).fetchall()
        for endpoint, current, previous in rows:
            for sealed in (current, previous):
                if sealed:
                    done.by_key[cipher.sealed_with(sealed)] += 1
            new_current, new_previous = cipher.reseal(current), cipher.reseal(previous) if previous else previous
            if (new_current, new_previous) == (current, previous):
                continue
            changed = conn.execute(
                "UPDATE webhook_endpoints SET sealed_secret = %s, sealed_previous_secret = %s WHERE endpoint_id = %s"
                " AND sealed_secret = %s AND sealed_previous_secret IS NOT DISTINCT FROM %s",
                (new_current, new_previous, endpoint, current, previous)).rowcount
            if changed:
                done.rewritten += 1
            else:
                done.skipped += 1


def _reseal_authorizations(pool: ConnectionPool, cipher: TokenCipher, done: Resealed) -> None:
    with pool.connection() as conn:
        rows = conn.execute("SELECT state_sha256, sealed_code_verifier FROM oauth_authorizations"
                            " WHERE sealed_code_verifier IS NOT NULL AND used_at IS NULL AND expires_at > now()"
                            ).fetchall()  # a used or expired authorization is never unsealed again
        for state, sealed in rows:
            done.by_key[cipher.sealed_with(sealed)] += 1
            resealed = cipher.reseal(sealed)
            if resealed != sealed:
                conn.execute("UPDATE oauth_authorizations SET sealed_code_verifier = %s"
                             " WHERE state_sha256 = %s AND sealed_code_verifier = %s", (resealed, state, sealed))
                done.rewritten += 1
