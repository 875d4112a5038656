"""`database:` where the bot keeps its data: a SQLite file path, or a postgresql:// URL (its password never shown)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

POSTGRES_SCHEMES = ("postgresql", "postgres")
EXPECTED = "a SQLite file path like ./accessbot.db, or postgresql://USER:PASSWORD@HOST:5432/DATABASE"


def mask(url: str) -> str:
    """A postgresql:// URL with its password replaced by `***`; anything else as it is."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(an unparsable URL)"
    if parts.scheme not in POSTGRES_SCHEMES or "@" not in parts.netloc:
        return url
    userinfo, host = parts.netloc.rsplit("@", 1)
    if ":" not in userinfo:
        return url
    return urlunsplit(parts._replace(netloc=f"{userinfo.split(':', 1)[0]}:***@{host}"))


@dataclass(frozen=True)
class DatabaseTarget:
    """A validated `database:` value; `str()` and `repr()` mask a URL's password, `reveal()` gives it to the store."""

    _value: str = field(repr=False)

    @property
    def is_postgres(self) -> bool:
        """True for a postgresql:// URL, False for a SQLite file."""
        return self._value.startswith(tuple(f"{scheme}://" for scheme in POSTGRES_SCHEMES))

    def reveal(self) -> str:
        """The path or URL exactly as configured, password included (for the store adapter only)."""
        return self._value

    def __str__(self) -> str:
        return mask(self._value)

    def __repr__(self) -> str:
        return f"DatabaseTarget({mask(self._value)!r})"

    @classmethod
    def parse(cls, value: Any) -> DatabaseTarget:
        """Check a `database:` value; a ValueError names what is wrong without echoing the value."""
        if isinstance(value, DatabaseTarget):
            return value
        if isinstance(value, Path):
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"must be text ({EXPECTED})")
        if "://" not in value:
            return cls(value)
        try:
            parts = urlsplit(value)
        except ValueError:  # e.g. a malformed [IPv6] host; the message would quote the URL, password included
            raise ValueError(f"the URL cannot be parsed ({EXPECTED})") from None
        if parts.scheme not in POSTGRES_SCHEMES:
            scheme = parts.scheme if parts.scheme.isalnum() and len(parts.scheme) <= 20 else "this kind of"
            raise ValueError(f"{scheme} URLs are not supported ({EXPECTED})")
        if any(ch.isspace() for ch in value):
            raise ValueError(f"the PostgreSQL URL contains spaces ({EXPECTED}; percent-encode special characters)")
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"the PostgreSQL URL's port is not a number from 1 to 65535 ({EXPECTED})") from None
        if port == 0:
            raise ValueError(f"the PostgreSQL URL's port is not a number from 1 to 65535 ({EXPECTED})")
        if not parts.hostname and "host=" not in parts.query:
            raise ValueError(f"the PostgreSQL URL names no host ({EXPECTED})")
        if not parts.path.strip("/"):
            raise ValueError(f"the PostgreSQL URL names no database ({EXPECTED})")
        return cls(value)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        """Validate with `parse`; serialise as the masked text."""
        return core_schema.no_info_plain_validator_function(
            cls.parse, serialization=core_schema.plain_serializer_function_ser_schema(str)
        )
