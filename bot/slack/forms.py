"""The Slack forms (modals) of grants: the request form, its loading and problem views, its options, the Deny reason.

Pure functions returning plain dicts; each stays within Slack's limits (docs.slack.dev/reference/block-kit/…:
100 options a select, 75-character option texts, 150-character option values, 24-character titles).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.core.policy import Option
from bot.slack.mrkdwn import code, plain, section

Block = dict[str, Any]

REQUEST_CALLBACK = "grant_request"
DENY_CALLBACK = "grant_deny_reason"
CHOICE_BLOCK, CHOICE_ACTION = "target_role", "choice"
DURATION_BLOCK, REASON_BLOCK, TICKET_BLOCK, VALUE_ACTION = "duration", "reason", "ticket", "value"
MAX_OPTIONS = 100  # static_select: at most 100 options in all groups together
MAX_QUERY = 100  # characters of a typed query the options loader reads
OPTION_SEPARATOR = "|"


def option_value(option: Option) -> str:
    """The select value of an option: `TARGET_KEY|ROLE|bg` (an identifier; the submission is re-checked)."""
    return OPTION_SEPARATOR.join((option.target.target.key, option.role_id, "bg" if option.break_glass else ""))


def parse_option_value(value: str) -> tuple[str, str, bool]:
    """(target key, role, break-glass) from an option value."""
    parts = value.split(OPTION_SEPARATOR)
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise ValueError("not an option value")
    return parts[0], parts[1], parts[2] == "bg"


def _option(o: Option) -> Block:
    label = f"{o.role_name} on {o.target.display}"
    if o.break_glass:
        label = "BREAK-GLASS " + label
    suffix = " (approval)" if o.needs_approval else ""
    return {"text": plain(label + suffix, 75), "value": option_value(o)[:150]}


def option_groups(options: Sequence[Option], query: str = "") -> list[Block]:
    """Options grouped by target (≤ 100 in all), filtered by a typed query."""
    q = query.strip().lower()
    groups: dict[str, list[Block]] = {}
    count = 0
    for o in options:
        text = f"{o.role_id} {o.role_name} {o.target.display}".lower()
        if q and q not in text:
            continue
        if count >= MAX_OPTIONS:
            break
        groups.setdefault(o.target.display, []).append(_option(o))
        count += 1
    return [{"label": plain(label, 75), "options": opts} for label, opts in groups.items()]


def _modal(blocks: list[Block]) -> Block:
    return {
        "type": "modal",
        "callback_id": REQUEST_CALLBACK,
        "title": {"type": "plain_text", "text": "Request access"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": blocks,
    }


def deny_modal(grant_id: str, *, private_metadata: str) -> Block:
    """Deny asks the approver why; the reason goes to the requester and into the audit log."""
    return {
        "type": "modal",
        "callback_id": DENY_CALLBACK,
        "title": {"type": "plain_text", "text": "Deny the request"},
        "submit": {"type": "plain_text", "text": "Deny"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": private_metadata,
        "blocks": [
            section(f"Deny {code(grant_id)}? The requester sees your reason."),
            reason_input(),
        ],
    }


def reason_input() -> Block:
    """A required "Why?" box of 3 to 500 characters (a Deny's reason, a review's Keep), read back from
    REASON_BLOCK / VALUE_ACTION."""
    return {
        "type": "input",
        "block_id": REASON_BLOCK,
        "label": {"type": "plain_text", "text": "Why?"},
        "element": {
            "type": "plain_text_input",
            "action_id": VALUE_ACTION,
            "multiline": True,
            "min_length": 3,
            "max_length": 500,
        },
    }


def loading_modal() -> Block:
    """The form as it opens, before the bot knows what the requester may ask for."""
    return _modal([section(":hourglass_flowing_sand: Loading what you may request…")])


def problem_modal(text: str) -> Block:
    """The form when the choices could not be loaded (the text is already escaped mrkdwn)."""
    return _modal([section(text)])


def request_modal(options: Sequence[Option], *, private_metadata: str = "") -> Block:
    """The request form: a searchable target/role select, duration, reason and optional ticket."""
    if len(options) > MAX_OPTIONS:
        select: Block = {
            "type": "external_select",
            "action_id": CHOICE_ACTION,
            "min_query_length": 0,
            "placeholder": {"type": "plain_text", "text": "Type a cluster, project or role"},
        }
    else:
        select = {
            "type": "static_select",
            "action_id": CHOICE_ACTION,
            "placeholder": {"type": "plain_text", "text": "Choose a role on a cluster or project"},
            "option_groups": option_groups(options),
        }
    blocks: list[Block] = [
        {
            "type": "input",
            "block_id": CHOICE_BLOCK,
            "label": {"type": "plain_text", "text": "What do you need?"},
            "element": select,
        },
        {
            "type": "input",
            "block_id": DURATION_BLOCK,
            "optional": True,
            "label": {"type": "plain_text", "text": "For how long?"},
            "hint": {"type": "plain_text", "text": "Like 30m, 2h or 1h30m; empty means the rule's default."},
            "element": {
                "type": "plain_text_input",
                "action_id": VALUE_ACTION,
                "placeholder": {"type": "plain_text", "text": "1h"},
            },
        },
        {
            "type": "input",
            "block_id": REASON_BLOCK,
            "optional": True,
            "label": {"type": "plain_text", "text": "Why?"},
            "hint": {"type": "plain_text", "text": "Required by some rules, and always for break-glass."},
            "element": {"type": "plain_text_input", "action_id": VALUE_ACTION, "multiline": True, "max_length": 500},
        },
        {
            "type": "input",
            "block_id": TICKET_BLOCK,
            "optional": True,
            "label": {"type": "plain_text", "text": "Ticket"},
            "element": {"type": "plain_text_input", "action_id": VALUE_ACTION, "max_length": 64},
        },
    ]
    if not options:
        blocks = [section("No rule lets you request anything. `rules` shows what exists.")]
    view: Block = {
        "type": "modal",
        "callback_id": REQUEST_CALLBACK,
        "title": {"type": "plain_text", "text": "Request access"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": blocks,
        "private_metadata": private_metadata,
    }
    if options:
        view["submit"] = {"type": "plain_text", "text": "Request"}
    return view
