"""Block Kit for grants: approval and grants-channel messages, DMs and replies (pure; the forms are in forms.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.core.durations import format_duration
from bot.core.grant_lifecycle import time_left
from bot.core.model import Grant, GrantState
from bot.core.notices import GrantFacts, HolderEvent
from bot.core.policy import RuleSummary
from bot.services.grants import DecisionOutcome, ExtendOutcome, RequestOutcome
from bot.slack.mrkdwn import code, context, escape, fallback, line_sections, plain, section, user

Block = dict[str, Any]
Rendered = tuple[str, list[Block]]

APPROVE = "grant_approve"
DENY = "grant_deny"
EXTEND = "grant_extend"
EXT_APPROVE = "grant_ext_approve"
EXT_DENY = "grant_ext_deny"
MAX_MESSAGE_BLOCKS = 50  # docs.slack.dev/reference/block-kit/blocks: up to 50 blocks in each message

_STATE_WORDS = {
    GrantState.REQUESTED: ":hourglass_flowing_sand: waiting for approval",
    GrantState.APPROVED: ":white_check_mark: approved",
    GrantState.DENIED: ":no_entry: denied",
    GrantState.WITHDRAWN: ":leftwards_arrow_with_hook: withdrawn",
    GrantState.EXPIRED_REQUEST: ":hourglass: request expired, nobody decided",
    GrantState.ACTIVATING: ":gear: activating",
    GrantState.ACTIVE: ":large_green_circle: active",
    GrantState.REVOKING: ":gear: revoking",
    GrantState.EXPIRED: ":white_circle: expired",
    GrantState.REVOKED: ":red_circle: revoked",
    GrantState.FAILED: ":x: failed",
}


def plural(count: int, noun: str, nouns: str = "") -> str:
    """`1 approval`, `2 approvals` (`nouns` when the plural is irregular)."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


def when(ts: int) -> str:
    """A Slack date token that each reader sees in their own timezone (with a UTC fallback)."""
    fallback = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(ts)}^{{date_short_pretty}} {{time}}|{fallback}>"


def _span(seconds: int) -> str:
    return format_duration(timedelta(seconds=seconds))


def state_word(state: GrantState) -> str:
    """The emoji and words for a state."""
    return _STATE_WORDS[state]


def _summary(facts: GrantFacts) -> str:
    g = facts.grant
    return f"*{escape(facts.role)}* on *{escape(facts.target)}* for {user(g.slack_user)}"


def _details(facts: GrantFacts) -> str:
    g = facts.grant
    lines = [
        f"*Grant:* {code(g.id)}   *Role:* {code(g.role_id)}   *Duration:* {_span(g.duration_s)}",
        f"*Rule:* {code(g.rule)}" + ("   *Break-glass*" if g.break_glass else ""),
        f"*Reason:* {escape(g.reason) if g.reason else '_none given_'}",
    ]
    if g.ticket:
        lines.append(f"*Ticket:* {code(g.ticket)}")
    return "\n".join(lines)


def _decisions(grant: Grant, lapsed: frozenset[str] = frozenset()) -> list[str]:
    out = []
    for a in grant.approvals:
        verb = "approved" if a.decision == "approve" else "denied"
        note = f" — {escape(a.comment)}" if a.comment else ""
        if a.person in lapsed:
            note += " (no longer counts: unlinked or left the approver group)"
        out.append(f"{verb} by {user(a.approver)} at {when(a.at)}{note}")
    return out


def _status_line(facts: GrantFacts) -> str:
    g = facts.grant
    line = state_word(g.state)
    if g.state is GrantState.ACTIVE and g.expires_at is not None:
        line += f" until {when(g.expires_at)} ({format_duration(time_left(g, facts.now))} left)"
    elif g.state in (GrantState.EXPIRED, GrantState.REVOKED, GrantState.DENIED, GrantState.WITHDRAWN) and g.ended_at:
        line += f" at {when(g.ended_at)}"
    if g.state is GrantState.FAILED and g.failure:
        line += f": {escape(g.failure)}"
    if g.state in (GrantState.DENIED, GrantState.WITHDRAWN) and g.failure:
        line += f" ({escape(g.failure)})"
    if g.extensions:
        line += f" · extended {g.extensions}×"
    return line


def _buttons(block_id: str, *pairs: tuple[str, str, str, str | None]) -> Block:
    elements = []
    for action_id, label, value, style in pairs:
        button: Block = {
            "type": "button",
            "action_id": action_id,
            "text": plain(label, 75),
            "value": value,
        }
        if style:
            button["style"] = style
        elements.append(button)
    return {"type": "actions", "block_id": block_id[:255], "elements": elements}


def _actor(by: str) -> str:
    """Who did something, as people read it: a mention, `the command line (cli:ops)`, or the bot itself."""
    if by.startswith("cli:"):
        return f"an operator on the command line ({escape(by[4:])})"
    if by in ("system", ""):
        return "the bot"
    return user(by)


def _extendable(facts: GrantFacts) -> bool:
    """Whether the grant's rule allows one more extension with time left under its maximum."""
    rule, g = facts.rule, facts.grant
    if rule is None or g.activated_at is None or g.expires_at is None or g.extensions >= rule.max_extensions:
        return False
    return rule.max_duration > timedelta(seconds=g.expires_at - g.activated_at)


MAX_MENTIONS = 20
"""People named in one break-glass announcement when no Slack user group is configured."""


def _approvers(mentions: Sequence[str], usergroups: Sequence[str]) -> str:
    """`<!subteam^S…>` for each user group; else up to MAX_MENTIONS people and how many more."""
    if usergroups:
        return " ".join(f"<!subteam^{''.join(ch for ch in u if ch.isalnum())}>" for u in usergroups)
    if not mentions:
        return "_no linked approvers to mention_"
    named = " ".join(user(m) for m in mentions[:MAX_MENTIONS])
    left = len(mentions) - MAX_MENTIONS
    return named + (f" and {plural(left, 'more linked approver')}" if left > 0 else "")


class GrantBlocks:
    """The Block Kit renderer the granting service uses for channel messages and DMs."""

    def approval(self, facts: GrantFacts) -> Rendered:
        """The approvals-channel message: request facts, decisions so far, and buttons while undecided."""
        g = facts.grant
        text = f"Access request {g.id}: {escape(facts.role)} on {escape(facts.target)} for {user(g.slack_user)}"
        blocks: list[Block] = [section(f":key: Access request {_summary(facts)}"), section(_details(facts))]
        decisions = _decisions(g, facts.lapsed)
        counted = [a for a in g.approvals if a.decision == "approve" and a.person not in facts.lapsed]
        need = f"{len(counted)}/{plural(g.approvals_required, 'approval')}"
        if g.state is GrantState.REQUESTED:
            if decisions:
                blocks.append(context(" · ".join(decisions) + f" ({need})"))
            if g.request_expires_at is not None:
                blocks.append(context(f"Expires {when(g.request_expires_at)} if nobody decides."))
            blocks.append(
                _buttons(
                    f"decide:{g.id}",
                    (APPROVE, "Approve", g.id, "primary"),
                    (DENY, "Deny", g.id, "danger"),
                )
            )
        else:
            outcome = state_word(g.state) if g.state is not GrantState.APPROVED else state_word(GrantState.APPROVED)
            blocks.append(section(f"{outcome}" + (f": {'; '.join(decisions)}" if decisions else "")))
            if g.state not in (GrantState.DENIED, GrantState.EXPIRED_REQUEST):
                blocks.append(context(_status_line(facts)))
        return text, blocks

    def ask(self, facts: GrantFacts) -> Rendered:
        """The DM to one approver: the request, and Approve/Deny (Deny asks for a reason)."""
        g = facts.grant
        need = plural(g.approvals_required, "approval")
        text = f":key: {user(g.slack_user)} asks for {escape(facts.role)} on {escape(facts.target)} ({need} needed)"
        blocks: list[Block] = [
            section(f":key: Your approval is asked: {_summary(facts)}"),
            section(_details(facts)),
        ]
        if g.request_expires_at is not None:
            blocks.append(context(f"Expires {when(g.request_expires_at)} if nobody decides; {need} needed."))
        blocks.append(_buttons(f"decide:{g.id}", (APPROVE, "Approve", g.id, "primary"), (DENY, "Deny", g.id, "danger")))
        return text, blocks

    def status(self, facts: GrantFacts) -> Rendered:
        """The grants-channel message of a grant (one per lifecycle, edited in place)."""
        g = facts.grant
        text = f"{g.id}: {escape(facts.role)} on {escape(facts.target)} for {user(g.slack_user)} — {g.state.value}"
        blocks = [section(f"{code(g.id)} {_summary(facts)} · {_span(g.duration_s)}"), context(_status_line(facts))]
        if g.reason:
            blocks.append(context(f"Reason: {escape(g.reason)}"))
        return text, blocks

    def break_glass(self, facts: GrantFacts, mentions: Sequence[str], usergroups: Sequence[str] = ()) -> Rendered:
        """The break-glass announcement: the approvers' user groups, else at most 20 approvers and a count."""
        g = facts.grant
        who = _approvers(mentions, usergroups)
        text = f":rotating_light: BREAK-GLASS {g.id}: {escape(facts.role)} on {escape(facts.target)}"
        text += f" for {user(g.slack_user)} — {escape(g.reason)} ({who})"
        blocks = [
            section(f":rotating_light: *Break-glass access* {_summary(facts)}"),
            section(_details(facts)),
            context(f"Self-approved; announced to {who}"),
        ]
        return text, blocks

    def dm(self, facts: GrantFacts, event: HolderEvent, *, by: str = "", why: str = "") -> Rendered:
        """A DM to the requester or holder about one event; who ended or decided it, and why, when known."""
        g = facts.grant
        what = _summary(facts)
        ended = f" by {_actor(by)}" if by else ""
        because = f": {escape(why)}" if why else ""
        sentences = {
            "approved": f":white_check_mark: Your request {code(g.id)} for {what} was approved.",
            "denied": f":no_entry: Your request {code(g.id)} for {what} was denied{ended}{because}.",
            "withdrawn": f":leftwards_arrow_with_hook: Your request {code(g.id)} for {what} was withdrawn"
            f"{ended}{because}.",
            "active": f":large_green_circle: {code(g.id)} is active: {what}.",
            "expired": f":white_circle: {code(g.id)} expired: {what} was removed.",
            "revoked": f":red_circle: {code(g.id)} was revoked{ended}{because}: {what} was removed.",
            "failed": f":x: {code(g.id)} could not be activated.",
            "request_expired": f":hourglass: Your request {code(g.id)} for {what} expired; nobody decided in time.",
            "extended": f":stopwatch: {code(g.id)} was extended.",
            "extension_denied": f":no_entry: The extension of {code(g.id)} was denied.",
            "expiring": f":alarm_clock: {code(g.id)} ({what}) expires soon.",
        }
        line = sentences.get(event, f"{code(g.id)}: {escape(event)}")
        text = line
        blocks: list[Block] = [section(line), context(_status_line(facts))]
        decisions = _decisions(g)
        if event in ("approved", "denied") and decisions:
            blocks.append(context(" · ".join(decisions)))
        if event == "expiring":
            if _extendable(facts):
                blocks.append(_buttons(f"extend:{g.id}", (EXTEND, "Extend", g.id, "primary")))
            else:
                blocks.append(context("The rule allows no more time for this grant; request it again when it ends."))
        return text, blocks

    def extension_request(self, facts: GrantFacts, extra_s: int, number: int) -> Rendered:
        """An approvals-channel message asking to approve an extension."""
        g = facts.grant
        ref = f"{g.id}:{number}"
        text = f"Extension of {g.id} by {_span(extra_s)} requested by {user(g.slack_user)}"
        blocks: list[Block] = [
            section(f":stopwatch: Extend {code(g.id)} {_summary(facts)} by *{_span(extra_s)}*"),
            section(_details(facts)),
            context(_status_line(facts)),
            _buttons(
                f"extension:{ref}",
                (EXT_APPROVE, "Approve extension", ref, "primary"),
                (EXT_DENY, "Deny", ref, "danger"),
            ),
        ]
        return text, blocks


RENDERER = GrantBlocks()


# --- replies to the person who asked ------------------------------------------------------------------


def request_reply(outcome: RequestOutcome) -> Rendered:
    """The ephemeral answer to `/access request …` (or the DM after the modal)."""
    what = f"*{escape(outcome.role)}* on *{escape(outcome.target)}*"
    g = outcome.grant
    if outcome.status == "active" and g is not None and g.expires_at is not None:
        line = f":large_green_circle: {code(g.id)} is active: {what} until {when(g.expires_at)}."
    elif outcome.status == "pending" and g is not None:
        line = (
            f":hourglass_flowing_sand: Request {code(g.id)} for {what} needs "
            f"{plural(g.approvals_required, 'approval')}; the approvers were asked."
        )
    elif outcome.status == "activating" and g is not None:
        line = f":gear: {code(g.id)} for {what} is recorded; Rancher did not answer yet, it will be finished shortly."
    elif outcome.status == "failed" and g is not None:
        line = f":x: {code(g.id)} for {what} failed: {escape(g.failure)}"
    elif outcome.status == "covered":
        line = f":information_source: You already hold {what} through standing access; no grant was needed."
    elif outcome.status == "duplicate" and g is not None:
        line = f":information_source: You already have {code(g.id)} for {what} ({g.state.value})."
    else:
        line = f":no_entry: Request for {what} denied."
    blocks = [section(line), context(escape(outcome.message))]
    return line, blocks


def decision_reply(outcome: DecisionOutcome) -> str:
    """What the approver sees after clicking."""
    return f"{escape(outcome.message)} ({state_word(outcome.grant.state)})"


def extend_reply(outcome: ExtendOutcome) -> str:
    """The answer to `/access extend …` or the Extend button."""
    g = outcome.grant
    if outcome.status == "extended" and g.expires_at is not None:
        return f":stopwatch: {code(g.id)} now runs until {when(g.expires_at)}. {escape(outcome.message)}"
    return f":information_source: {escape(outcome.message)}"


def grants_list(views: Sequence[GrantFacts], *, everyone: bool = False) -> Rendered:
    """`/access grants [all]`: one line per grant with its state and time left."""
    if not views:
        line = "No open grants." if everyone else "You have no grants yet. Ask with `request TARGET ROLE`."
        return line, [section(line)]
    head = f"*Open grants* ({len(views)})" if everyone else "*Your grants*"
    lines = []
    for v in views:
        g = v.grant
        holder = f" · {user(g.slack_user)}" if everyone else ""
        lines.append(f"{code(g.id)} *{escape(v.role)}* on *{escape(v.target)}*{holder} — {_status_line(v)}")
    more = "operators see every one with `accessbot grants list`" if everyone else ""
    blocks = [section(head), *line_sections(lines, MAX_MESSAGE_BLOCKS - 1, more=more)]
    return fallback("\n".join([head, *lines])), blocks


def rules_reply(rules: Sequence[RuleSummary]) -> Rendered:
    """`/access rules`: what the caller may request and on which conditions."""
    if not rules:
        line = "No rule lets you request anything. Ask your platform team which group you need."
        return line, [section(line)]
    blocks: list[Block] = [section(f"*What you may request* ({plural(len(rules), 'rule')})")]
    shown = rules[: MAX_MESSAGE_BLOCKS - 2]
    for r in shown:
        where = ", ".join(code(x) for x in (*r.clusters, *r.projects)) or "labelled clusters"
        if r.cluster_labels:
            where += " with labels " + ", ".join(code(f"{k}={v}") for k, v in r.cluster_labels)
        roles = ", ".join(f"{code(rid)} ({escape(name)})" for rid, name in r.roles)
        if r.break_glass:
            approval = "break-glass: self-approved, announced to approvers"
        elif r.approvals_required:
            approval = (
                f"{plural(r.approvals_required, 'approval')} from {', '.join(code(g) for g in r.approval_groups)}"
            )
        else:
            approval = "no approval"
        conditions = [
            f"up to {format_duration(r.max_duration)} (default {format_duration(r.default_duration)})",
            approval,
        ]
        if r.require_reason:
            conditions.append("reason required")
        if r.max_extensions:
            conditions.append(plural(r.max_extensions, "extension"))
        blocks.append(
            section(f"*{escape(r.name)}* — {roles}\non {where}\n" + " · ".join(conditions)),
        )
    if len(rules) > len(shown):
        blocks.append(context(f"…and {len(rules) - len(shown)} more; ask for one with `request TARGET ROLE`"))
    return f"What you may request: {plural(len(rules), 'rule')}", blocks
