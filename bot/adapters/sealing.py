"""Key material: sealing secrets at rest with rotating Fernet keys, and the audit chain keys derived from keys."""

from __future__ import annotations

import base64
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bot.core.errors import TokenRejected


class FernetSealer:
    """Seals with the first key and unseals with any of them (MultiFernet), so keys rotate."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("at least one Fernet key is required")
        self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])

    def __repr__(self) -> str:
        return "FernetSealer(keys=[redacted])"

    def seal(self, plaintext: str) -> str:
        """Encrypt with the newest key."""
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def unseal(self, token: str) -> str:
        """Decrypt with any configured key."""
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, ValueError):
            raise TokenRejected("stored secret cannot be decrypted with the configured keys") from None

    def rotate(self, token: str) -> str:
        """Re-encrypt a sealed value under the newest key."""
        return self._fernet.rotate(token.encode("ascii")).decode("ascii")


AUDIT_KEY_INFO = b"accessbot audit chain v1"


def audit_key_material(key: str) -> bytes:
    """The audit chain's HMAC key from a configured key (HKDF-SHA256, so it is never the sealing key itself)."""
    raw = base64.urlsafe_b64decode(key.encode())
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=AUDIT_KEY_INFO).derive(raw)
