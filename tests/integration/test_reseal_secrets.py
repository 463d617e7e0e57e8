"""Rotating the sealing key: every stored secret (account tokens, pending PKCE verifiers) is sealed
again with the new key, the values still open, and a second run finds nothing left on the old key."""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from herald.cli import cli
from herald.crypto import TokenCipher
from processors.accounts.reseal import reseal_credentials

pytestmark = pytest.mark.integration


def _b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def test_reseal_moves_every_stored_secret_to_the_active_key(herald, monkeypatch):
    old, new = os.urandom(32), os.urandom(32)
    before = TokenCipher(old)
    with herald.pool.connection() as conn:
        for n in range(3):
            conn.execute(
                "INSERT INTO account_credentials (social_account_id, version, workspace_id, platform,"
                " sealed_access_token, sealed_refresh_token) VALUES (%s, 'v1', 'ws', 'mastodon', %s, %s)",
                (f"acct-{n}", before.seal(f"access-{n}"), before.seal(f"refresh-{n}") if n else None))
        conn.execute(
            "INSERT INTO oauth_authorizations (state_sha256, workspace_id, platform, redirect_uri,"
            " sealed_code_verifier, expires_at) VALUES ('s', 'ws', 'mastodon', 'https://x/cb', %s, %s)",
            (before.seal("verifier"), datetime.now(UTC) + timedelta(minutes=10)))

    ring = TokenCipher(new, old)
    done = reseal_credentials(herald.pool, ring, batch=2)  # several batches
    assert (done.rewritten, done.skipped, done.still_on_retired_keys(ring)) == (4, 0, 6)
    only_new = TokenCipher(new)
    with herald.pool.connection() as conn:
        rows = conn.execute("SELECT social_account_id, sealed_access_token, sealed_refresh_token"
                            " FROM account_credentials ORDER BY 1").fetchall()
        verifier = conn.execute("SELECT sealed_code_verifier FROM oauth_authorizations").fetchone()[0]
    assert [(only_new.unseal(a), only_new.unseal(r) if r else None) for _, a, r in rows] == [
        ("access-0", None), ("access-1", "refresh-1"), ("access-2", "refresh-2")]
    assert only_new.unseal(verifier) == "verifier"

    again = reseal_credentials(herald.pool, ring)
    assert (again.rewritten, again.still_on_retired_keys(ring)) == (0, 0)

    # The command says when the retired key may go.
    monkeypatch.setenv("HERALD_DATABASE_URL", herald.settings.database_url)
    monkeypatch.setenv("HERALD_TOKEN_KEY", _b64(new))
    monkeypatch.setenv("HERALD_TOKEN_KEYS_RETIRED", json.dumps([_b64(old)]))
    result = CliRunner().invoke(cli, ["reseal-secrets"])
    assert result.exit_code == 0, result.output
    assert "re-sealed 0" in result.output and "can be dropped" in result.output
