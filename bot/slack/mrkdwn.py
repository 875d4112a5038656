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


SECTION_LIMIT = 3000  # docs.slack.dev/reference/block-kit/blocks/section-block: text at most 3,000 characters
FALLBACK_LIMIT = 4000  # chat.postMessage: "limit the number of characters in the text field to 4,000"


def clip(text: str, limit: int, tail: str = "…") -> str:
    """`text` cut to at most `limit` characters at a line or word boundary, never inside `<…>` or `&…;`."""
    if len(text) <= limit:
        return text
    room = max(0, limit - len(tail))
    cut = text.rfind("\n", 0, room + 1)
    if cut < room // 2:
        cut = max(text.rfind(" ", 0, room + 1), cut)
    if cut <= 0:
        cut = room
    opened = text.rfind("<", 0, cut)  # a mention, link or date token must stay whole
    if opened > text.rfind(">", 0, cut):
        cut = opened
    entity = text.rfind("&", 0, cut)  # so must an escape such as &amp;
    if entity > text.rfind(";", 0, cut) and cut - entity <= 6:
        cut = entity
    return text[:cut].rstrip() + tail


def fallback(text: str) -> str:
    """Notification (fallback) text, cut to the 4,000 characters Slack recommends."""
    return clip(text, FALLBACK_LIMIT)


def section(text: str) -> dict[str, object]:
    """A section block with mrkdwn text (callers escape what they put in), cut to Slack's 3000 chars."""
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, SECTION_LIMIT), "verbatim": True}}


def context(text: str) -> dict[str, object]:
    """A context block with one mrkdwn element, cut like a section."""
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(text, SECTION_LIMIT), "verbatim": True}]}


def line_sections(lines: list[str], max_blocks: int, *, more: str = "") -> list[dict[str, object]]:
    """Lines packed into sections (each within Slack's 3,000 characters), at most `max_blocks` blocks in all.

    When the lines do not all fit, the last block says how many were left out, followed by `more` (a hint such
    as "narrow with `/access who prod-eu/payments`").
    """
    blocks: list[dict[str, object]] = []
    text, shown = "", 0
    for raw in lines:
        line = clip(raw, SECTION_LIMIT)
        if text and len(text) + 1 + len(line) > SECTION_LIMIT:
            if len(blocks) + 2 >= max_blocks:  # keep room for this section and the "and N more" note
                break
            blocks.append(section(text))
            text = ""
        text = f"{text}\n{line}" if text else line
        shown += 1
    if text:
        blocks.append(section(text))
    left = len(lines) - shown
    if left:
        blocks.append(context(f"…and {left} more" + (f"; {more}" if more else "")))
    return blocks
