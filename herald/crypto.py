"""Social-account tokens sealed at rest with AES-256-GCM, under a key ring.

A ring holds several keys: one active, which seals, and retired ones, which still unseal what
they sealed. A sealed value names its key (``<key id>:<base64 nonce+ciphertext>``; the key id
is the first 8 bytes of the key's SHA-256, in hex), so unsealing never guesses and a key can
be retired once nothing is sealed with it. Values sealed before the ring existed carry no key
id (plain base64, which has no ``:``); they are tried against every key, the active first.
``reseal`` turns any sealed value into one sealed with the active key: rotating is adding a
new active key, re-sealing what is stored, then dropping the old key.
(AES-GCM: https://cryptography.io/en/latest/hazmat/primitives/aead/#cryptography.hazmat.primitives.ciphers.aead.AESGCM)
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_NONCE_BYTES = 12
_AAD = b"herald.social_account.token.v1"


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:16]


class TokenCipher:
    """The key ring: ``keys[0]`` is active."""

    def __init__(self, key: bytes, *retired: bytes) -> None:
        self._keys: dict[str, AESGCM] = {}
        for k in (key, *retired):
            if len(k) != 32:
                raise ValueError("the token key must be 32 bytes (AES-256)")
            self._keys.setdefault(key_id(k), AESGCM(k))
        self.active = key_id(key)

    @classmethod
    def from_base64(cls, key_b64: str, *retired_b64: str) -> TokenCipher:
        return cls(*(base64.b64decode(k, validate=True) for k in (key_b64, *retired_b64)))

    @property
    def key_ids(self) -> list[str]:
        return list(self._keys)

    def seal(self, plaintext: str) -> str:
        if not plaintext:
            return ""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = nonce + self._keys[self.active].encrypt(nonce, plaintext.encode(), _AAD)
        return f"{self.active}:{base64.b64encode(sealed).decode()}"

    def unseal(self, sealed: str) -> str:
        if not sealed:
            return ""
        kid, _, body = sealed.rpartition(":")
        raw = base64.b64decode(body)
        if kid:
            if kid not in self._keys:
                raise ValueError(f"sealed with key {kid}, which is not in the key ring")
            candidates = [self._keys[kid]]
        else:  # sealed before key ids: try every key, the active one first
            candidates = list(self._keys.values())
        for aead in candidates:
            try:
                return aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _AAD).decode()
            except InvalidTag:
                continue
        raise ValueError("no key of the ring opens this sealed value")

    def sealed_with(self, sealed: str) -> str | None:
        """The key id a sealed value names (None for one sealed before key ids)."""
        kid, _, _ = sealed.rpartition(":")
        return kid or None

    def reseal(self, sealed: str) -> str:
        """The same secret sealed with the active key (unchanged when it already is)."""
        if not sealed or self.sealed_with(sealed) == self.active:
            return sealed
        return self.seal(self.unseal(sealed))


def load_or_create_key(configured_b64: str, data_dir: Path,
                       retired_b64: list[str] | tuple[str, ...] = ()) -> TokenCipher:
    """The configured key (with ``retired_b64`` still unsealing), else the ring kept (mode 0600)
    in the data directory: ``token.key`` (active), ``token.keys.retired`` (JSON list)."""
    if configured_b64:
        return TokenCipher.from_base64(configured_b64, *retired_b64)
    path = data_dir / "token.key"
    if not path.exists():
        _write_private(path, base64.b64encode(AESGCM.generate_key(bit_length=256)).decode())
    retired_path = data_dir / "token.keys.retired"
    kept = json.loads(retired_path.read_text()) if retired_path.exists() else []
    return TokenCipher.from_base64(path.read_text().strip(), *kept, *retired_b64)


def rotate_data_dir_key(data_dir: Path) -> tuple[str, str]:
    """A new active key in the data directory's ring, the old one kept as retired (it still
    unseals). Returns (old key id, new key id)."""
    path, retired_path = data_dir / "token.key", data_dir / "token.keys.retired"
    old = path.read_text().strip()
    kept = json.loads(retired_path.read_text()) if retired_path.exists() else []
    new = base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()
    _write_private(retired_path, json.dumps([old, *kept]), replace=True)
    _write_private(path, new, replace=True)
    return key_id(base64.b64decode(old)), key_id(base64.b64decode(new))


def _write_private(path: Path, text: str, replace: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    target = path.with_suffix(path.suffix + ".new") if replace else path
    if replace:
        target.unlink(missing_ok=True)  # left by an interrupted rotation
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    if replace:
        os.replace(target, path)
