"""Block Kit for `/access list` and the App Home tab, within Slack's limits (pure functions, plain dicts)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

from bot.core.durations import format_duration
from bot.core.effective_access import AccessReport, Right
from bot.core.model import Grant, Scope
from bot.core.notices import GrantFacts
from bot.services.grants import HoldersReport
from bot.slack.mrkdwn import clip, escape, line_sections, plain, user

Block = dict[str, Any]

MAX_MESSAGE_BLOCKS = 50
MAX_HOME_BLOCKS = 100
MAX_SECTION_CHARS = 3000
MAX_HEADER_CHARS = 150
MAX_HOME_REQUESTS = 10
"""Requests shown with buttons in the App Home (two blocks each)."""
NARROW_HINT = "narrow with `/access list CLUSTER`"


mrkdwn_escape = escape
"""Escape Slack's control characters in text that came from Rancher or the IdP (bot.slack.mrkdwn.escape)."""


def access_list_message(report: AccessReport, *, max_blocks: int = MAX_MESSAGE_BLOCKS) -> dict[str, Any]:
    """The `/access list` reply: fallback `text` plus blocks."""
    return {"text": _fallback(report), "blocks": access_list_blocks(report, max_blocks=max_blocks)}


def access_list_blocks(report: AccessReport, *, max_blocks: int = MAX_MESSAGE_BLOCKS) -> list[Block]:
    """Header, who the user is in Rancher, then rights grouped by cluster with projects under their cluster."""
    title = "Your Rancher access" + (f" in {report.filter}" if report.filter else "")
    blocks: list[Block] = [_header(title), _identity(report)]
    blocks.extend(rights_blocks(report.rights, max_blocks=max_blocks - len(blocks), empty=_empty_text(report)))
    return blocks


def rights_blocks(rights: Sequence[Right], *, max_blocks: int, empty: str = "No access found.") -> list[Block]:
    """Sections of rights grouped by cluster, at most `max_blocks`, ending with an honest "and N more" note."""
    if max_blocks <= 0:
        return []
    if not rights:
        return [_section(empty)]
    # Sections are built lazily, one ahead of the one being placed: rights that will be cut are never rendered.
    sections = _sections(rights)
    out: list[Block] = []
    shown = 0
    current = next(sections, None)
    while current is not None:
        following = next(sections, None)
        room = max_blocks - len(out) - (0 if following is None else 1)
        if room <= 0:
            break
        out.append(_section(current[0]))
        shown += current[1]
        current = following
    hidden = len(rights) - shown
    if hidden > 0:
        out.append(_context(f"…and {hidden} more right{'s' if hidden != 1 else ''}, {NARROW_HINT}"))
    return out


def _sections(rights: Sequence[Right]) -> Iterator[tuple[str, int]]:
    """(text, rights it holds) per section: one cluster's rights, split at MAX_SECTION_CHARS as `(continued)`."""
    title = _group_title(rights[0])
    text, count = title, 0
    for right in rights:
        right_title = _group_title(right)
        if right_title != title:
            yield text, count
            title, text, count = right_title, right_title, 0
        line = "\n" + _line(right)
        if len(text) + len(line) > MAX_SECTION_CHARS:
            yield text, count
            text, count = f"{title} (continued)", 0
        text += line
        count += 1
    yield text, count


def app_home_view(
    report: AccessReport | None,
    *,
    active: Sequence[Grant],
    pending: Sequence[Grant],
    now: int,
    problem: str = "",
    awaiting: Sequence[GrantFacts] = (),
    awaiting_total: int = 0,
    reviews: Sequence[Block] = (),
    max_blocks: int = MAX_HOME_BLOCKS,
) -> dict[str, Any]:
    """The App Home tab: requests awaiting your approval, reviews awaiting you (blocks from review_blocks), active
    grants, pending requests, what you can access."""
    names = dict(report.names) if report else {}
    roles = {r.role_id: r.role_name for r in report.rights} if report else {}
    blocks: list[Block] = [_header("Rancher access")]
    if report is not None:
        blocks.append(_identity(report))
    if problem:
        blocks.append(_section(f":warning: {mrkdwn_escape(problem)}"))
    if awaiting:
        blocks.append(_section(f"*Awaiting your approval* ({awaiting_total or len(awaiting)})"))
        for facts in awaiting[:MAX_HOME_REQUESTS]:
            g = facts.grant
            blocks.append(
                _section(
                    f"`{mrkdwn_escape(g.id)}` {user(g.slack_user)} asks for *{mrkdwn_escape(facts.role)}* on "
                    f"*{mrkdwn_escape(facts.target)}* for {format_duration(timedelta(seconds=g.duration_s))}"
                    + (f"\n_{mrkdwn_escape(g.reason)}_" if g.reason else "")
                )
            )
            blocks.append(approve_deny(g.id))
        left = (awaiting_total or len(awaiting)) - min(len(awaiting), MAX_HOME_REQUESTS)
        if left > 0:
            blocks.append(_context(f"…and {left} more in the approvals channel"))
    blocks.extend(reviews)
    blocks.append(_section("*Active grants*"))
    grant_lines = [_grant_line(g, names, roles, now, pending=False) for g in active]
    blocks.extend(_list_sections(grant_lines, "No active grants."))
    blocks.append(_section("*Pending requests*"))
    pending_lines = [_grant_line(g, names, roles, now, pending=True) for g in pending]
    blocks.extend(_list_sections(pending_lines, "No pending requests."))
    if report is not None:
        blocks.append(_section("*What you can access*"))
        room = max_blocks - len(blocks)
        blocks.extend(rights_blocks(report.rights, max_blocks=room, empty=_empty_text(report)))
    return {"type": "home", "blocks": blocks[:max_blocks]}


def approve_deny(grant_id: str) -> Block:
    """Approve / Deny buttons for one request (the same actions as the approvals card)."""
    return {
        "type": "actions",
        "block_id": f"home-decide:{grant_id}"[:255],
        "elements": [
            {"type": "button", "action_id": "grant_approve", "style": "primary", "value": grant_id,
             "text": {"type": "plain_text", "text": "Approve"}},
            {"type": "button", "action_id": "grant_deny", "style": "danger", "value": grant_id,
             "text": {"type": "plain_text", "text": "Deny"}},
        ],
    }  # fmt: skip


def who_blocks(report: HoldersReport, *, max_blocks: int = MAX_MESSAGE_BLOCKS) -> list[Block]:
    """`/access who CLUSTER[/PROJECT]`: who holds which role there, and why, within Slack's limits."""
    blocks: list[Block] = [_header(f"Who has access to {report.where}")]
    if not report.holders:
        return [*blocks, _section(f"Nobody holds a role directly on {mrkdwn_escape(report.where)}.")]
    lines = []
    for holder in report.holders:
        icon = ":busts_in_silhouette:" if holder.kind == "group" else ":bust_in_silhouette:"
        role = mrkdwn_escape(holder.role_name)
        who = mrkdwn_escape(holder.subject) + (f" ({user(holder.slack_user)})" if holder.slack_user else "")
        lines.append(f"• {icon} {who} · {role} · _{mrkdwn_escape(holder.source_text)}_")
    narrower = f"{report.cluster_name}/PROJECT" if not report.project_name else report.where
    more = f"narrow with `/access who {mrkdwn_escape(narrower)}`" if not report.project_name else ""
    blocks.extend(line_sections(lines, max_blocks - len(blocks), more=more))
    return blocks


def who_reply(report: HoldersReport) -> tuple[str, list[Block]]:
    """`/access who CLUSTER[/PROJECT]`: fallback text and the blocks of `who_blocks`."""
    count = len(report.holders)
    roles = sorted({h.role_name for h in report.holders})
    text = f"Who has access to {mrkdwn_escape(report.where)}: {count} holder{'s' if count != 1 else ''}"
    if roles:
        text += " (" + ", ".join(mrkdwn_escape(r) for r in roles[:20]) + ")"
    return text, who_blocks(report)


# --- pieces ----------------------------------------------------------------------------------------------


def _header(text: str) -> Block:
    return {"type": "header", "text": {**plain(text, MAX_HEADER_CHARS), "emoji": True}}


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, MAX_SECTION_CHARS)}}


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(text, MAX_SECTION_CHARS)}]}


def _identity(report: AccessReport) -> Block:
    groups = [
        report.principals.group_names.get(g) or g.split("://", 1)[-1] for g in report.principals.group_principal_ids
    ]
    shown = ", ".join(mrkdwn_escape(g) for g in groups[:20])
    if len(groups) > 20:
        shown += f" and {len(groups) - 20} more"
    group_text = f" · groups: {shown}" if groups else " · no groups"
    if report.user is None:
        who = "No Rancher user yet (you have not logged in to Rancher); group rights still apply"
    else:
        who = f"Rancher user *{mrkdwn_escape(report.user.name)}* (`{mrkdwn_escape(report.user.id)}`)"
    return _context(who + group_text + _freshness(report, bool(groups)))


def _freshness(report: AccessReport, has_groups: bool) -> str:
    """Why group rights may differ from the groups shown (the IdP's now): Rancher enforces its own copy."""
    if not has_groups or not report.groups_as_of:
        return ""
    if report.groups_as_of == "login":
        return (
            "\n_Group rights are as of your last Rancher login: Rancher does not refresh these groups, so if "
            "they changed since, log in to Rancher again._"
        )
    return "\n_Group rights follow Rancher's copy of your groups (updated at login and by its periodic refresh)._"


def _empty_text(report: AccessReport) -> str:
    if report.filter:
        return f"No access in {mrkdwn_escape(report.filter)}."
    return "You have no Rancher access yet. Ask for some with `/access request`."


def _group_title(right: Right) -> str:
    if right.scope is Scope.GLOBAL:
        return "*Global*"
    return f"*{mrkdwn_escape(right.cluster_name)}*"


def _line(right: Right) -> str:
    role = mrkdwn_escape(right.role_name)
    source = mrkdwn_escape(right.source_text)
    if right.everything:
        where = "every cluster but `local`" if right.downstream_only else "every cluster"
        return f"• *{role}*: everything, in {where} · _{source}_"
    notes = []
    if right.all_projects:
        notes.append("every project")
    if right.includes:
        notes.append("includes " + ", ".join(mrkdwn_escape(name) for name in right.includes))
    role += f" ({'; '.join(notes)})" if notes else ""
    if right.scope is Scope.PROJECT:
        return f"• {mrkdwn_escape(right.project_name)} › {role} · _{source}_"
    return f"• {role} · _{source}_"


def _grant_line(grant: Grant, names: dict[str, str], roles: dict[str, str], now: int, *, pending: bool) -> str:
    where = names.get(grant.target.cluster_id, grant.target.cluster_id)
    if grant.target.project_id:
        where += "/" + names.get(grant.target.project_id, grant.target.project_id)
    role = roles.get(grant.role_id, grant.role_id)
    head = f"*{mrkdwn_escape(grant.id)}* {mrkdwn_escape(role)} on {mrkdwn_escape(where)}"
    if pending:
        asked = format_duration(timedelta(seconds=max(0, now - grant.requested_at)))
        return f"• {head} · asked {asked} ago, waiting for approval"
    if grant.expires_at is None:
        return f"• {head} · {grant.state.value}"
    left = format_duration(timedelta(seconds=max(0, grant.expires_at - now)))
    return f"• {head} · {left} left"


def _list_sections(lines: Sequence[str], empty: str, max_sections: int = 4) -> list[Block]:
    if not lines:
        return [_context(empty)]
    out: list[Block] = []
    text = ""
    used = 0
    for line in lines:
        if text and len(text) + 1 + len(line) > MAX_SECTION_CHARS:
            if len(out) + 1 >= max_sections:
                break
            out.append(_section(text))
            text = ""
        text = f"{text}\n{line}" if text else line
        used += 1
    out.append(_section(text))
    if used < len(lines):
        out.append(_context(f"…and {len(lines) - used} more"))
    return out


def _fallback(report: AccessReport) -> str:
    count = len(report.rights)
    where = f" in {mrkdwn_escape(report.filter)}" if report.filter else ""
    if report.is_admin:
        return f"You are a Rancher global admin ({count} rights{where})."
    return f"You have {count} Rancher right{'s' if count != 1 else ''}{where}."
