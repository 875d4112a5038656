"""Logging setup and the redaction filter that keeps tokens, secrets and codes out of every log line."""

from __future__ import annotations

import logging
import re
import sys

_PATTERNS = [
    (re.compile(r"xox[abpors]-[A-Za-z0-9-]+"), "xox?-[redacted]"),
    (re.compile(r"xapp-[A-Za-z0-9-]+"), "xapp-[redacted]"),
    (re.compile(r"(token-[a-z0-9]{5}):[A-Za-z0-9]+"), r"\1:[redacted]"),
    (re.compile(r"(?i)(bearer|basic)\s+[A-Za-z0-9._~+/=:-]+"), r"\1 [redacted]"),
    (
        re.compile(
            r"(?i)\b(code|code_verifier|refresh_token|access_token|id_token|client_secret|password|state|nonce)"
            r"=[^&\s\"']+"
        ),
        r"\1=[redacted]",
    ),
    (
        re.compile(
            r"(?i)\"(refresh_token|access_token|id_token|client_secret|password|code_verifier)\"\s*:\s*\"[^\"]*\""
        ),
        r'"\1": "[redacted]"',
    ),
    (re.compile(r"gAAAAA[A-Za-z0-9_=-]{20,}"), "[sealed]"),
    (re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), "[jwt]"),
]


def redact(text: str) -> str:
    """Mask anything that looks like a credential."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites each record's message (and traceback text) with `redact`."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the formatted message in place; never drops a record."""
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def setup_logging(level: str = "info") -> None:
    """Log to stderr with the redaction filter on the root handler."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "apscheduler", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
