"""`security:` the Fernet keys that seal secrets at rest, and the keys that sign the audit chain."""

from __future__ import annotations

import base64

from pydantic import SecretStr, field_validator

from bot.config.base import FrozenModel


class SecurityConfig(FrozenModel):
    """Keys protecting secrets at rest and the audit log's integrity."""

    token_encryption_keys: tuple[SecretStr, ...]
    audit_keys: tuple[SecretStr, ...] = ()

    @field_validator("token_encryption_keys")
    @classmethod
    def _keys(cls, value: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        if not value:
            raise ValueError("needs at least one Fernet key (generate with `accessbot gen-key`)")
        for index, key in enumerate(value):
            if not _is_fernet_key(key.get_secret_value()):
                raise ValueError(f"entry {index} is not a Fernet key (32 url-safe base64 bytes; `accessbot gen-key`)")
        return value

    @field_validator("audit_keys")
    @classmethod
    def _audit_keys(cls, value: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        for index, key in enumerate(value):
            if not _is_fernet_key(key.get_secret_value()):
                raise ValueError(
                    f"entry {index} is not a key (32 url-safe base64 bytes, as `accessbot gen-key` prints)"
                )
        return value


def _is_fernet_key(value: str) -> bool:
    try:
        return len(base64.urlsafe_b64decode(value.encode())) == 32
    except (ValueError, TypeError):
        return False
