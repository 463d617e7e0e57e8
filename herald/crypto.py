"""Social-account tokens sealed at rest with AES-256-GCM."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_NONCE_BYTES = 12
_AAD = b"herald.social_account.token.v1"


class TokenCipher:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the token key must be 32 bytes (AES-256)")
        self._aead = AESGCM(key)

    @classmethod
    def from_base64(cls, key_b64: str) -> TokenCipher:
        return cls(base64.b64decode(key_b64, validate=True))

    def seal(self, plaintext: str) -> str:
        if not plaintext:
            return ""
        nonce = os.urandom(_NONCE_BYTES)
        return base64.b64encode(nonce + self._aead.encrypt(nonce, plaintext.encode(), _AAD)).decode()

    def unseal(self, sealed: str) -> str:
        if not sealed:
            return ""
        raw = base64.b64decode(sealed)
        return self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _AAD).decode()


def load_or_create_key(configured_b64: str, data_dir: Path) -> TokenCipher:
    """The configured key, else one generated once and kept (mode 0600) in the data directory."""
    if configured_b64:
        return TokenCipher.from_base64(configured_b64)
    path = data_dir / "token.key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(base64.b64encode(AESGCM.generate_key(bit_length=256)).decode())
    return TokenCipher.from_base64(path.read_text().strip())
