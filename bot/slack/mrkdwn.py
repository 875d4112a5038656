"""Slack mrkdwn safety: escaping user- and IdP-supplied text so it cannot mention, link or ping."""

from __future__ import annotations


def escape(text: str) -> str:
    """Escape &, < and > (in that order) so `<!channel>`, `<@U…>` and `<https://evil|x>` stay inert."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def code(text: str) -> str:
    """Show text in a code span, escaped, with backquotes neutralised."""
    return "`" + escape(text).replace("`", "ˋ") + "`"


def user(slack_user_id: str) -> str:
    """Mention a Slack user by id (ids are ours, validated, never user text)."""
    safe = "".join(ch for ch in slack_user_id if ch.isalnum())
    return f"<@{safe}>"


def section(text: str) -> dict[str, object]:
    """A section block with mrkdwn text (callers escape what they put in), cut to Slack's 3000 chars."""
    if len(text) > 3000:
        text = text[:2990] + "…"
    return {"type": "section", "text": {"type": "mrkdwn", "text": text, "verbatim": True}}


def context(text: str) -> dict[str, object]:
    """A context block with one mrkdwn element."""
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:3000], "verbatim": True}]}
