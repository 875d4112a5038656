"""The weekly digest as people read it: the terminal table, and the Slack text and Block Kit of the weekly post."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.core.digest import CATEGORIES, Digest
from bot.core.durations import format_duration
from bot.slack import mrkdwn

SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "Identity",
        (
            "links",
            "relinks",
            "unlinks",
            "token_failures",
            "token_reuse",
            "deactivations",
            "relinks_required",
            "relinks_expired",
            "logins_rejected",
            "slack_rejected",
        ),
    ),
    (
        "Grants",
        (
            "grants_requested",
            "grants_approved",
            "approvals",
            "grants_denied",
            "requests_expired",
            "self_service",
            "break_glass",
            "grants_activated",
            "grants_failed",
            "grants_extended",
            "revoked_early",
            "grants_expired",
        ),
    ),
    ("Rancher", ("drift_found", "drift_repaired", "untagged_bindings", "overdue_revocations")),
)
"""Display groups of the digest's categories (every key of core.digest.CATEGORIES appears once)."""

_LABELS = dict(CATEGORIES)


def _when(ts: int, timezone: str) -> str:
    return datetime.fromtimestamp(ts, ZoneInfo(timezone)).strftime("%a %d %b %Y %H:%M")


def _change(digest: Digest, key: str) -> str:
    delta = digest.change(key)
    if delta is None:
        return ""
    if delta == 0:
        return "±0"
    return f"{delta:+d}"


def _who(user: str, *, slack: bool, names: Mapping[str, str] | None = None) -> str:
    """A mention in Slack; in the terminal the person's name (from their link) beside the id, when known."""
    if slack and user.startswith(("U", "W")) and user.isalnum():
        return mrkdwn.user(user)
    name = (names or {}).get(user)
    return f"{_text(name, slack=slack)} ({_text(user, slack=slack)})" if name else _text(user, slack=slack)


def _text(value: str, *, slack: bool) -> str:
    """User-supplied text made safe: mrkdwn-escaped for Slack, control characters dropped for a terminal."""
    clean = "".join(ch if ch.isprintable() else " " for ch in value)
    return mrkdwn.escape(clean) if slack else clean


def _title(digest: Digest, period_key: str, timezone: str) -> str:
    label = f" {period_key}" if period_key else ""
    return (
        f"Access digest{label}: {_when(digest.period_start, timezone)} to "
        f"{_when(digest.period_end, timezone)} ({timezone})"
    )


def _chain_line(digest: Digest) -> str:
    if digest.chain_ok:
        line = f"Audit chain: verified, {digest.chain_count} events, no broken link."
    else:
        line = f"Audit chain: BROKEN (checked {digest.chain_count} events); run `accessbot audit verify`."
    if digest.unmonitored_links:
        line += f" Unmonitored links (no refresh token, never re-checked at the IdP): {digest.unmonitored_links}."
    return line


def _table(digest: Digest) -> list[str]:
    width = max(len(label) for _, label in CATEGORIES)
    lines: list[str] = []
    for section, keys in SECTIONS:
        lines.append(section)
        for key in keys:
            count = digest.counts.get(key, 0)
            change = _change(digest, key)
            suffix = f"  ({change})" if change else ""
            lines.append(f"  {_LABELS[key]:<{width}}  {count:>6}{suffix}")
    return lines


def _tops(digest: Digest, *, slack: bool, names: Mapping[str, str] | None = None) -> list[str]:
    lines: list[str] = []
    if digest.top_requesters:
        items = ", ".join(f"{_who(user, slack=slack, names=names)} ({n})" for user, n in digest.top_requesters)
        lines.append(f"Top requesters: {items}")
    if digest.top_targets:
        items = ", ".join(f"{_text(target, slack=slack)} ({n})" for target, n in digest.top_targets)
        lines.append(f"Top targets: {items}")
    if digest.longest_grants:
        lines.append("Longest grants:")
        for span in digest.longest_grants:
            lines.append(
                f"  {_text(span.grant_id, slack=slack)}: {_who(span.slack_user, slack=slack, names=names)} "
                f"{_text(span.role or 'a role', slack=slack)} on "
                f"{_text(span.target, slack=slack)} for {format_duration(timedelta(seconds=span.duration_s))}"
            )
    if digest.break_glass:
        lines.append("Break-glass uses:")
        for use in digest.break_glass:
            reason = f": {_text(use.reason, slack=slack)}" if use.reason else ""
            lines.append(
                f"  {_when(use.ts, 'UTC')} UTC {_text(use.grant_id, slack=slack)} "
                f"{_who(use.slack_user, slack=slack, names=names)} "
                f"{_text(use.role or 'a role', slack=slack)} on {_text(use.target, slack=slack)}{reason}"
            )
    return lines


def _reviews(digest: Digest, *, slack: bool) -> list[str]:
    """The access reviews: standing bindings of governed roles and their trend, each campaign's outcome, and the
    time-boxed grants that replaced converted access."""
    measures = digest.reviews
    if measures is None or measures.empty:
        return []
    lines = ["Access reviews:"]
    trend = measures.standing
    if trend.now is not None:
        change = trend.change
        against = f" ({change:+d} against the start of the period)" if change else (" (±0)" if change == 0 else "")
        lines.append(f"  Standing bindings of governed roles: {trend.now}{against}")
    for c in measures.campaigns:
        o = c.outcome
        extra = [(o.to_apply, "not applied yet"), (o.skipped, "left alone (changed in Rancher)"),
                 (o.undone, "restored")]  # fmt: skip
        lines.append(
            f"  {_text(c.name, slack=slack)} ({c.status}): kept {o.kept}, converted {o.converted}, removed "
            f"{o.removed}, undecided {o.undecided}" + "".join(f", {what} {n}" for n, what in extra if n)
        )
    if measures.replacement_grants or any(c.outcome.converted for c in measures.campaigns):
        lines.append(f"  Time-boxed grants that replaced converted access: {measures.replacement_grants}")
    return lines


def render_digest_text(
    digest: Digest,
    *,
    period_key: str = "",
    timezone: str = "UTC",
    slack: bool = False,
    names: Mapping[str, str] | None = None,
) -> str:
    """The whole digest as plain text (a terminal table, people by `names`), or mrkdwn-safe text when `slack`."""
    lines = [_title(digest, period_key, timezone), _chain_line(digest), ""]
    if digest.previous is not None:
        lines.append("Counts (change against the previous period):")
    lines += _table(digest)
    tops = _tops(digest, slack=slack, names=names)
    if tops:
        lines.append("")
        lines += tops
    reviews = _reviews(digest, slack=slack)
    if reviews:
        lines.append("")
        lines += reviews
    lines += ["", f"{digest.events} audit events in the period."]
    if slack:
        return "\n".join(lines)
    return "\n".join(lines) + "\n"


def render_digest_blocks(digest: Digest, *, period_key: str = "", timezone: str = "UTC") -> list[dict[str, object]]:
    """Block Kit blocks for the digest message: title, chain status, the counts table and the top lists."""
    blocks: list[dict[str, object]] = [
        mrkdwn.section(f"*{mrkdwn.escape(_title(digest, period_key, timezone))}*"),
        mrkdwn.context(mrkdwn.escape(_chain_line(digest))),
        mrkdwn.section("```\n" + mrkdwn.escape("\n".join(_table(digest))) + "\n```"),
    ]
    tops = _tops(digest, slack=True)
    if tops:
        blocks.append(mrkdwn.section("\n".join(tops)))
    reviews = _reviews(digest, slack=True)
    if reviews:
        blocks.append(mrkdwn.section("\n".join(reviews)))
    blocks.append(mrkdwn.context(f"{digest.events} audit events in the period. Every grant is in the attached CSV."))
    return blocks
