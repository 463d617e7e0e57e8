"""The sealing key ring: the active key seals, every key of the ring unseals what it sealed,
values sealed before key ids still open, reseal moves a value to the active key, and rotating
the data directory's ring keeps the old key for unsealing."""

from __future__ import annotations

import base64
import os
import stat

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from typer.testing import CliRunner

from herald.cli import cli
from herald.crypto import TokenCipher, key_id, load_or_create_key


def _key() -> bytes:
    return os.urandom(32)


def _legacy_seal(key: bytes, plaintext: str) -> str:
    """What the single-key cipher of the previous version produced."""
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), b"herald.social_account.token.v1")
    return base64.b64encode(nonce + sealed).decode()


def test_the_active_key_seals_and_every_key_unseals():
    old, new = _key(), _key()
    before = TokenCipher(old)
    sealed_old = before.seal("tok-1")
    assert sealed_old.startswith(f"{key_id(old)}:") and "tok-1" not in sealed_old
    ring = TokenCipher(new, old)
    assert ring.active == key_id(new) and ring.unseal(sealed_old) == "tok-1"
    sealed_new = ring.seal("tok-2")
    assert ring.sealed_with(sealed_new) == key_id(new)
    with pytest.raises(ValueError, match="not in the key ring"):
        before.unseal(sealed_new)
    assert ring.seal("") == "" and ring.unseal("") == ""


def test_values_sealed_before_key_ids_still_open_and_reseal_moves_them():
    old, new = _key(), _key()
    legacy = _legacy_seal(old, "tok-legacy")
    ring = TokenCipher(new, old)
    assert ring.unseal(legacy) == "tok-legacy" and ring.sealed_with(legacy) is None
    moved = ring.reseal(legacy)
    assert ring.sealed_with(moved) == key_id(new) and TokenCipher(new).unseal(moved) == "tok-legacy"
    assert ring.reseal(moved) == moved, "already under the active key"
    with pytest.raises(ValueError, match="no key"):
        TokenCipher(new).unseal(legacy)


def test_rotating_the_data_directory_ring_keeps_the_old_key(tmp_path, monkeypatch):
    monkeypatch.delenv("HERALD_TOKEN_KEY", raising=False)
    monkeypatch.setenv("HERALD_DATA_DIR", str(tmp_path))
    first = load_or_create_key("", tmp_path)
    sealed = first.seal("tok-3")
    result = CliRunner().invoke(cli, ["rotate-sealing-key"])
    assert result.exit_code == 0, result.output
    rotated = load_or_create_key("", tmp_path)
    assert rotated.active != first.active and first.active in rotated.key_ids
    assert rotated.unseal(sealed) == "tok-3" and rotated.sealed_with(rotated.seal("x")) == rotated.active
    for name in ("token.key", "token.keys.retired"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600


def test_with_a_configured_key_the_command_prints_what_to_deploy(monkeypatch, tmp_path):
    current = base64.b64encode(_key()).decode()
    monkeypatch.setenv("HERALD_TOKEN_KEY", current)
    monkeypatch.setenv("HERALD_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(cli, ["rotate-sealing-key"])
    assert result.exit_code == 0, result.output
    assert f'HERALD_TOKEN_KEYS_RETIRED=\'["{current}"]\'' in result.output
    new = result.output.split("HERALD_TOKEN_KEY=", 1)[1].split()[0]
    assert TokenCipher.from_base64(new, current).unseal(TokenCipher.from_base64(current).seal("t")) == "t"
