"""Slack text safety: user- and IdP-supplied text cannot mention, link, ping, or hide what it says.

Escaping `&`, `<` and `>` keeps `<!channel>`, `<@U…>` and `<https://evil|x>` inert (Slack's formatting docs name
exactly these three). Invisible characters are made visible as `⟨U+XXXX⟩`: right-to-left overrides and isolates
(U+202A–U+202E, U+2066–U+2069) can make a reason or a target read backwards on an approval card, and zero-width and
control characters can hide text (Unicode categories Cf, Cc — tab and newline kept — Zl and Zp), as can the few
letters that render blank (Hangul fillers, the empty Braille pattern).
"""

from __future__ import annotations

import unicodedata

_HIDDEN = frozenset({"Cf", "Cc", "Zl", "Zp"})
_KEPT = frozenset({"\n", "\t"})
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
"""Letters that render as nothing (Hangul fillers, the blank Braille pattern): shown too, though not in `_HIDDEN`."""


def visible(text: str) -> str:
    """The text with every invisible or direction-changing character shown as `⟨U+XXXX⟩`."""
    if text.isascii() and text.isprintable():
        return text
    out = []
    for ch in text:
        if ch in _BLANK_LETTERS or (ch not in _KEPT and unicodedata.category(ch) in _HIDDEN):
            out.append(f"⟨U+{ord(ch):04X}⟩")
        else:
            out.append(ch)
    return "".join(out)


def escape(text: str) -> str:
    """Made visible, then `&`, `<` and `>` escaped (in that order) for mrkdwn."""
    return visible(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def plain(text: str, limit: int) -> dict[str, object]:
    """A plain_text object (no escaping applies there), made visible and cut to `limit` characters."""
    shown = visible(text)
    if len(shown) > limit:
        cut = limit - 1
        marker = shown.rfind("⟨", 0, cut)
        if marker != -1 and shown.find("⟩", marker) >= cut:  # never cut a ⟨U+XXXX⟩ in half
            cut = marker
        shown = shown[:cut] + "…"
    return {"type": "plain_text", "text": shown}


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
