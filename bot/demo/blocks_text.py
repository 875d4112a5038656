"""Block Kit rendered as terminal text for the demo console, with buttons numbered for `:click N`."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

_MENTION = re.compile(r"<([@#!])([^>|]+)(?:\|([^>]*))?>")
_LINK = re.compile(r"<((?:https?|mailto):[^>|]+)(?:\|([^>]*))?>")


@dataclass(frozen=True)
class Button:
    """A clickable element found in a message."""

    action_id: str
    value: str
    text: str
    block_id: str
    url: str | None


def mrkdwn_to_text(text: str, names: Mapping[str, str] | None = None) -> str:
    """Turn Slack mrkdwn into plain terminal text (mentions by name, links shown with their URL)."""
    names = names or {}

    def mention(match: re.Match[str]) -> str:
        kind, ident, label = match.group(1), match.group(2), match.group(3)
        if kind == "@":
            return "@" + names.get(ident, label or ident)
        if kind == "#":
            return "#" + (label or ident)
        if ident.startswith("date^"):
            return label or ident.split("^")[1]
        shown = label or ident.split("^")[0]
        return shown if shown.startswith("@") else "@" + shown

    out = _LINK.sub(lambda m: f"{m.group(2)} ({m.group(1)})" if m.group(2) else m.group(1), text)
    out = _MENTION.sub(mention, out)
    return html.unescape(out)


def _text_of(obj: Any) -> str:
    if isinstance(obj, Mapping):
        return str(obj.get("text", ""))
    return ""


def render(
    blocks: Iterable[Mapping[str, Any]] | None, fallback: str | None, start: int, names: Mapping[str, str] | None = None
) -> tuple[list[str], list[Button]]:
    """Render blocks (or the fallback text) as lines; buttons are numbered from `start`."""
    lines: list[str] = []
    buttons: list[Button] = []
    blocks = list(blocks or [])
    if not blocks:
        return [mrkdwn_to_text(fallback or "", names)], []

    def add_button(element: Mapping[str, Any], block_id: str) -> None:
        number = start + len(buttons)
        label = _text_of(element.get("text"))
        buttons.append(
            Button(
                action_id=str(element.get("action_id", "")),
                value=str(element.get("value", "")),
                text=label,
                block_id=block_id,
                url=element.get("url"),
            )
        )
        suffix = f" → {element['url']}" if element.get("url") else ""
        lines.append(f"  [{number}] {label}{suffix}")

    for block in blocks:
        kind = block.get("type")
        block_id = str(block.get("block_id", ""))
        if kind == "header":
            lines.append("== " + _text_of(block.get("text")) + " ==")
        elif kind == "section":
            if block.get("text"):
                lines.append(mrkdwn_to_text(_text_of(block["text"]), names))
            for field in block.get("fields", []) or []:
                lines.append("  " + mrkdwn_to_text(_text_of(field), names))
            accessory = block.get("accessory")
            if isinstance(accessory, Mapping) and accessory.get("type") == "button":
                add_button(accessory, block_id)
        elif kind == "context":
            parts = [mrkdwn_to_text(_text_of(e), names) for e in block.get("elements", []) if isinstance(e, Mapping)]
            lines.append("  " + " · ".join(p for p in parts if p))
        elif kind == "divider":
            lines.append("  ────")
        elif kind == "actions":
            for element in block.get("elements", []):
                if isinstance(element, Mapping) and element.get("type") == "button":
                    add_button(element, block_id)
                elif isinstance(element, Mapping):
                    lines.append(f"  ({element.get('type')}: use the text command instead)")
        elif kind == "input":
            lines.append(f"  {_text_of(block.get('label'))}: ____")
        elif kind == "rich_text":
            lines.append(mrkdwn_to_text(fallback or "", names))
    return lines, buttons
