"""The one NoticeRenderer: every notification the services emit, as Slack fallback text and Block Kit blocks."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot.core.digest_period import utc_iso
from bot.core.durations import format_duration
from bot.core.model import Grant, RoleBinding
from bot.core.notices import (
    ActivationAbandoned,
    ApprovalCard,
    ApproverAsked,
    AuditAnchor,
    BindingMissing,
    BindingRepaired,
    BreakGlassUsed,
    DigestAttachment,
    DigestReady,
    ExtensionAsked,
    GrantChanged,
    GrantStatus,
    GroupsUnknown,
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
    RelinkExpired,
    RelinkExpiredDm,
    RelinkRequested,
    RelinkRequired,
    RevocationOverdue,
    RevocationRecovered,
    StandingAccessFound,
)
from bot.core.review_notices import AccessConverted, ReviewerAsked, ReviewProgress
from bot.slack.digest_blocks import render_digest_blocks, render_digest_text
from bot.slack.grant_blocks import GrantBlocks
from bot.slack.mrkdwn import code, context, escape, fallback, user
from bot.slack.review_blocks import converted_text, progress_message, reviewer_message

Rendered = tuple[str, list[dict[str, Any]]]
ANONYMOUS_WINDOW_TEXT = "5 minutes"
RELINK_ACTION = "identity_relink"
"""The Link button of a re-sign-in DM (bot.slack.identity answers its click with a fresh sign-in button)."""
_UNMONITORED = (
    "no refresh token was issued, so this link is *unmonitored*: the identity provider is never asked about it "
    "again and a user disabled there keeps it"
)
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


def _at(epoch: int) -> str:
    return f"{utc_iso(epoch).replace('T', ' ').removesuffix('Z')} UTC"


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
            case DigestReady(digest, period_key, timezone, head_id, head_hash):
                text = render_digest_text(digest, period_key=period_key, timezone=timezone, slack=True)
                blocks = render_digest_blocks(digest, period_key=period_key, timezone=timezone)
                if head_id:
                    anchor = f"Audit anchor: event {head_id}, hash `{head_hash}`"
                    text += f"\n{anchor}"
                    blocks.append(
                        context(
                            f"{anchor} (check a database with `accessbot audit verify --anchor {head_id}:{head_hash}`)."
                        )
                    )
                return text, blocks
            case RelinkRequested(_, why, deadline):
                return self._relink_dm(why, deadline)
            case ReviewerAsked():
                return reviewer_message(notice)
            case ReviewProgress(facts):
                return progress_message(facts)
        return self.sentence(notice), []

    def _relink_dm(self, why: str, deadline: int) -> Rendered:
        text = (
            f":key: Your identity provider asks you to sign in again ({escape(why)}). Until you do, you cannot "
            f"request or approve access; your current grants stay until {_at(deadline)} and are revoked then "
            f"unless you have signed in again. Click *Link* (or run `{self._command} link`)."
        )
        blocks: list[dict[str, Any]] = [
            {"type": "section", "text": {"type": "mrkdwn", "text": text, "verbatim": True}},
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": RELINK_ACTION,
                        "text": {"type": "plain_text", "text": "Link"},
                        "style": "primary",
                        "value": "relink",
                    }
                ],
            },
        ]
        return text, blocks

    def sentence(self, notice: Notice) -> str:
        """The text of a notice that is a single sentence."""
        match notice:
            case LinkMade(slack_user, who, groups, previous, moved_from, monitored, groups_known):
                shown = _groups(groups) if groups_known else "_unknown (the group source did not say)_"
                if previous is None and moved_from is None:
                    text = f":link: {user(slack_user)} linked to {code(who)}. Groups: {shown}."
                else:
                    was = [f"was {code(previous)}"] if previous is not None else []
                    if moved_from is not None:
                        was.append(f"identity moved from {user(moved_from)}")
                    text = f":link: {user(slack_user)} relinked to {code(who)} ({'; '.join(was)}). Groups: {shown}."
                return text if monitored else f"{text} :warning: {_UNMONITORED.capitalize()}."
            case LinkConfirmed(_, name, who, groups, monitored):
                text = (
                    f":white_check_mark: Your Slack account is now linked to *{escape(name)}* ({code(who)}). "
                    f"Groups: {_groups(groups)}."
                )
                return text if monitored else f"{text} :warning: Note: {_UNMONITORED}."
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
            case RelinkRequired(slack_user, who, why, deadline):
                return (
                    f":key: The identity provider wants {user(slack_user)} ({code(who)}) to sign in again "
                    f"({escape(why)}). They were asked to link again; their grants stay until {_at(deadline)}, "
                    "then they are revoked unless the user has linked again."
                )
            case RelinkExpired(slack_user, who):
                return (
                    f":lock: {user(slack_user)} ({code(who)}) did not sign in again in time: link revoked, grants "
                    "being revoked."
                )
            case RelinkExpiredDm():
                return (
                    ":lock: Your identity link was revoked because you did not sign in again in time, and any "
                    f"access granted through this bot is being revoked. Run `{self._command} link` to link again."
                )
            case GroupsUnknown(slack_user, why, at_link):
                if at_link:
                    return (
                        f":warning: {user(slack_user)} linked, but the group source could not say which groups they "
                        f"have ({escape(why)}); they have no groups until it does."
                    )
                return (
                    f":warning: The group source could not say which groups {user(slack_user)} has "
                    f"({escape(why)}); their previous groups were kept. Check the identity provider's groups claim "
                    "or directory access."
                )
            case LoginRefused(kind, slack_user, why):
                label = _REFUSAL_LABELS.get(kind, "Link refused")
                if slack_user:
                    return f":no_entry: {label} for {user(slack_user)}: {escape(why)}."
                return f":no_entry: {label}: {escape(why)} (repeats within {ANONYMOUS_WINDOW_TEXT} are only audited)."
            case RevocationOverdue(grant, overdue_s, early):
                when = f"was revoked {_span(overdue_s)} ago" if early else f"expired {_span(overdue_s)} ago"
                last = f" ({escape(grant.failure)})" if grant.failure else ""
                return (
                    f":rotating_light: Revocation overdue: grant {_grant(grant)} {when} "
                    f"and its Rancher binding is still in place{last}. The bot keeps retrying; check Rancher."
                )
            case ActivationAbandoned(grant, waited_s, last_error):
                return (
                    f":rotating_light: Activation abandoned: grant {_grant(grant)} failed after Rancher kept failing "
                    f"for {_span(waited_s)} (last: {escape(last_error)}). The requester was told; any binding that "
                    "landed meanwhile is deleted (now, or by the reconciler)."
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
            case AuditAnchor(head_id, head_hash, day):
                return (
                    f":anchor: Audit anchor for {day}: event {head_id}, hash `{head_hash}`. Check the database against "
                    f"it with `accessbot audit verify --anchor {head_id}:{head_hash}`."
                )
            case DigestAttachment(period_key, start, end):
                return f"Every grant of {period_key} ({utc_iso(start)} to {utc_iso(end)})"
            case AccessConverted():
                return converted_text(notice)
        raise TypeError(f"{type(notice).__name__} is rendered with blocks, not as one sentence")
