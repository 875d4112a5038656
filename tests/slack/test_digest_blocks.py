"""The digest as people read it: the terminal table and the Slack text and blocks, with user text made safe."""

from __future__ import annotations

from bot.core.digest import build_digest
from bot.slack.digest_blocks import render_digest_blocks, render_digest_text


def test_slack_text_escapes_user_supplied_text_and_the_terminal_drops_control_characters() -> None:
    """A target named `<!channel>` cannot ping in Slack, and an ANSI escape cannot reach a terminal."""
    rows = [
        {"ts": 10, "actor": "U0ALICE001", "action": "grant.requested", "target": "<!channel>\x1b[2J", "details": "{}"}
    ]
    digest = build_digest(rows, None, 0, 100, True, 1)
    slack_text = render_digest_text(digest, slack=True)
    assert "<!channel>" not in slack_text
    assert "&lt;!channel&gt;" in slack_text
    assert "<@U0ALICE001>" in slack_text
    terminal = render_digest_text(digest)
    assert "\x1b" not in terminal
    assert "Grants requested" in terminal
    blocks = render_digest_blocks(digest, period_key="2026-W13")
    assert all(b["type"] in ("section", "context") for b in blocks)
    assert "<!channel>" not in str(blocks)
