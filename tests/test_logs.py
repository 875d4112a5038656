"""The redaction filter keeps credentials out of log lines."""

from __future__ import annotations

import logging

import pytest

from bot.logs import RedactingFilter, redact


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("token xoxb-1234-5678-abcdefgh used", "xoxb-1234-5678-abcdefgh"),
        ("app xapp-1-A0-123-abc", "xapp-1-A0-123-abc"),
        ("key token-abcde:h8x9k2n4p6q8r2s4t6v8w2x4z6b8c2d4f6g8 failed", "h8x9k2n4p6q8r2s4t6v8w2x4z6b8c2d4f6g8"),
        ("Authorization: Bearer abc.def.ghi", "abc.def.ghi"),
        ("GET /oauth/callback?code=SplxlOBeZQQYbYS6WxSbIA&state=xyz", "SplxlOBeZQQYbYS6WxSbIA"),
        ('{"refresh_token": "rt-secret-1"}', "rt-secret-1"),
        ("jwt eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", "eyJzdWIiOiIxIn0"),
    ],
)
def test_redact_masks_credentials(text: str, secret: str) -> None:
    """Each kind of credential is masked."""
    assert secret not in redact(text)


def test_filter_redacts_arguments_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    """Log arguments and exception text pass through the filter."""
    logger = logging.getLogger("test.redaction")
    logger.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO, logger="test.redaction"):
        logger.info("calling with %s", "xoxb-99-secret")
        try:
            raise ValueError("refresh_token=abc123secret")
        except ValueError:
            logger.exception("failed")
    text = caplog.text
    assert "xoxb-99-secret" not in text
    assert "abc123secret" not in text
