"""The one NoticeRenderer: every notification the services emit, as Slack fallback text and Block Kit blocks."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot.core.digest_period import utc_iso
from bot.core.durations import format_duration
from bot.core.model import Grant, RoleBinding
from bot.core.notices import (
    ApprovalCard,
    ApproverAsked,
    BindingMissing,
    BindingRepaired,
    BreakGlassUsed,
    DigestAttachment,
    DigestReady,
    ExtensionAsked,
    GrantChanged,
    GrantStatus,
    IdentityRevoked,
    IdentityRevokedDm,
    LinkConfirmed,
    LinkMade,
    LinkMovedAway,
    LinkRemoved,
    LoginRefused,
    Notice,
    OrphanDeleted,
    RefreshFailing,
    RefusalKind,
    RevocationOverdue,
    RevocationRecovered,
    StandingAccessFound,
)
from bot.slack.digest_blocks import render_digest_blocks, render_digest_text
from bot.slack.grant_blocks import GrantBlocks
from bot.slack.mrkdwn import code, escape, fallback, user

Rendered = tuple[str, list[dict[str, Any]]]
ANONYMOUS_WINDOW_TEXT = "5 minutes"
_REFUSAL_LABELS = {RefusalKind.ID_TOKEN: "ID token rejected", RefusalKind.STATE: "Sign-in callback refused"}


def _groups(groups: tuple[str, ...]) -> str:
    return ", ".join(code(g) for g in groups) or "_none_"


def _grant(grant: Grant) -> str:
    who, role, where = user(grant.slack_user), code(grant.role_id), code(grant.target.key)
    return f"{code(grant.id)} ({who} {role} on {where})"


def _binding(binding: RoleBinding) -> str:
    where = binding.project_id or binding.cluster_id or "global"
    subject = binding.user_principal_id or binding.user_id or binding.group_principal_id or "?"
    return f"{code(binding.id)} ({code(binding.role_id)} on {code(where)} for {code(subject)})"


def _span(seconds: int) -> str:
    return format_duration(timedelta(seconds=seconds))


class SlackNotices:
    """Renders notices; `command` is the slash command named in instructions (`/access link`)."""

    def __init__(self, command: str = "/access") -> None:
        self._command = command
        self._grants = GrantBlocks()

    def render(self, notice: Notice) -> Rendered:
        """Fallback text (at most 4,000 characters) and blocks for one notice (text-only notices have no blocks)."""
        text, blocks = self._render(notice)
        return fallback(text), blocks

    def _render(self, notice: Notice) -> Rendered:
        match notice:
            case GrantStatus(facts):
                return self._grants.status(facts)
            case ApprovalCard(facts):
                return self._grants.approval(facts)
            case ApproverAsked(facts):
                return self._grants.ask(facts)
            case GrantChanged(facts, event, by, why):
                return self._grants.dm(facts, event, by=by, why=why)
            case BreakGlassUsed(facts, mentions, usergroups):
                return self._grants.break_glass(facts, mentions, usergroups)
            case ExtensionAsked(facts, extra_s, number):
                return self._grants.extension_request(facts, extra_s, number)
            case DigestReady(digest, period_key, timezone):
                text = render_digest_text(digest, period_key=period_key, timezone=timezone, slack=True)
                return text, render_digest_blocks(digest, period_key=period_key, timezone=timezone)
        return self.sentence(notice), []

    def sentence(self, notice: Notice) -> str:
        """The text of a notice that is a single sentence."""
        match notice:
            case LinkMade(slack_user, who, groups, previous, moved_from):
                if previous is None and moved_from is None:
                    return f":link: {user(slack_user)} linked to {code(who)}. Groups: {_groups(groups)}."
                was = [f"was {code(previous)}"] if previous is not None else []
                if moved_from is not None:
                    was.append(f"identity moved from {user(moved_from)}")
                return (
                    f":link: {user(slack_user)} relinked to {code(who)} ({'; '.join(was)}). Groups: {_groups(groups)}."
                )
            case LinkConfirmed(_, name, who, groups):
                return (
                    f":white_check_mark: Your Slack account is now linked to *{escape(name)}* ({code(who)}). "
                    f"Groups: {_groups(groups)}."
                )
            case LinkMovedAway(who):
                return (
                    f":lock: Your identity {code(who)} was linked to another Slack account, so this Slack account is "
                    "no longer linked. Any access granted through this bot was revoked. If that was not you, tell "
                    f"your security team. Run `{self._command} link` to link again."
                )
            case LinkRemoved(slack_user, who, idp_error):
                text = f":broken_chain: {user(slack_user)} unlinked {code(who)}."
                if idp_error is not None:
                    text += (
                        f" :warning: Revoking the refresh token at the identity provider failed ({escape(idp_error)})."
                    )
                return text
            case RefreshFailing(slack_user, why, failures, retry_in_s):
                return (
                    f":warning: Refreshing the identity link of {user(slack_user)} failed ({escape(why)}; {failures} "
                    f"in a row). Retrying in {retry_in_s // 60 or 1} min; nothing was revoked."
                )
            case IdentityRevoked(slack_user, who, reuse):
                named = f"{user(slack_user)} ({code(who)})"
                if reuse:
                    return (
                        f":rotating_light: Refresh token reuse detected for {named}: "
                        "link revoked, grants being revoked."
                    )
                return (
                    f":lock: {named} is no longer accepted by the identity provider: "
                    "link revoked, grants being revoked."
                )
            case IdentityRevokedDm():
                return (
                    ":lock: Your identity link was revoked because your identity provider no longer accepts it "
                    "(account disabled, session ended, or a security check). Any access granted through this bot "
                    f"has been revoked. If you still need access, run `{self._command} link` again."
                )
            case LoginRefused(kind, slack_user, why):
                label = _REFUSAL_LABELS.get(kind, "Link refused")
                if slack_user:
                    return f":no_entry: {label} for {user(slack_user)}: {escape(why)}."
                return f":no_entry: {label}: {escape(why)} (repeats within {ANONYMOUS_WINDOW_TEXT} are only audited)."
            case RevocationOverdue(grant, overdue_s):
                return (
                    f":rotating_light: Revocation overdue: grant {_grant(grant)} expired {_span(overdue_s)} ago "
                    "and its Rancher binding is still in place. The bot keeps retrying; check Rancher."
                )
            case RevocationRecovered(grant, overdue_s):
                return (
                    f":white_check_mark: Resolved: grant {_grant(grant)} is now {grant.state.value}, "
                    f"{_span(overdue_s)} after it expired."
                )
            case OrphanDeleted(binding, why):
                return (
                    f":broom: Deleted a binding the bot had tagged but no live grant owns: {_binding(binding)}; "
                    f"{escape(why)}."
                )
            case BindingMissing(grant, will_repair):
                repair = "it will be recreated" if will_repair else "not recreated (repair_drift is off)"
                return (
                    f":warning: Drift: the Rancher binding of active grant {_grant(grant)} is gone "
                    f"(deleted outside the bot); {repair}."
                )
            case BindingRepaired(grant):
                return f":wrench: Recreated the Rancher binding of grant {_grant(grant)} until it expires."
            case StandingAccessFound(binding):
                return (
                    f":mag: Standing access to a role the policy governs, not granted through the bot: "
                    f"{_binding(binding)}. Reported once; nothing was changed."
                )
            case DigestAttachment(period_key, start, end):
                return f"Every grant of {period_key} ({utc_iso(start)} to {utc_iso(end)})"
        raise TypeError(f"{type(notice).__name__} is rendered with blocks, not as one sentence")
