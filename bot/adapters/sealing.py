"""Encryption of secrets at rest (refresh tokens, PKCE verifiers) with rotating Fernet keys."""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

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
