"""Rotating the sealing key re-seals webhook signing secrets too (current and overlapping previous)."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest

from herald.crypto import TokenCipher
from processors.accounts.reseal import reseal_credentials
from processors.notifications import webhooks

pytestmark = pytest.mark.integration


def test_reseal_moves_webhook_secrets_to_the_active_key(herald):
    old, new = os.urandom(32), os.urandom(32)
    before = TokenCipher(old)
    with herald.pool.connection() as conn:
        _, first = webhooks.create(conn, before, endpoint_id="whep_1", workspace_id="ws",
                                   url="https://hooks.example.com/a", description=None)
        _, second = webhooks.rotate(conn, before, "ws", "whep_1", datetime.now(UTC), 3600)
    ring = TokenCipher(new, old)
    done = reseal_credentials(herald.pool, ring)
    assert (done.rewritten, done.still_on_retired_keys(ring)) == (1, 2)
    with herald.pool.connection() as conn:
        endpoint = webhooks.find(conn, "ws", "whep_1")
    assert endpoint.secrets(TokenCipher(new), datetime.now(UTC)) == [second, first]
    assert reseal_credentials(herald.pool, ring).still_on_retired_keys(ring) == 0
