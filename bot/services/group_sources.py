"""The group sources built from the login itself, and how a directory joins them (`oidc.group_source`).

- `ClaimGroups`: the groups claim the OIDC client read (ID token, else userinfo; or userinfo only), in `name` or
  `path` format. A missing claim is "cannot tell".
- `OverageGroups`: Microsoft Graph in `overage` mode: the claim, unless Entra said the groups did not fit in the
  token (`_claim_names` / `hasgroups`), then the directory.
- `NoGroups`: no group source (Google without Directory credentials): always "cannot tell".
The directory sources themselves (Graph, Google Directory) are adapters (bot/adapters/group_sources/).
"""

from __future__ import annotations

from typing import Literal

from bot.core import audit_actions
from bot.core.groups import GroupsAnswer, from_values
from bot.core.model import VerifiedLogin
from bot.core.notices import GroupsUnknown
from bot.core.ports import GroupSource
from bot.services.audit import AuditLog
from bot.services.outbox import Outbox

GROUPS_WARNING_PERIOD = 86400
"""A user's "groups unknown" warning is posted at most once per this many seconds (every refresh is audited)."""


class ClaimGroups:
    """The groups the IdP put in its claims: the default group source."""

    def __init__(self, group_format: Literal["name", "path"] = "name") -> None:
        self._format: Literal["name", "path"] = group_format

    async def groups(self, login: VerifiedLogin) -> GroupsAnswer | None:
        """The login's groups claim, or None when it was absent (or replaced by an overage pointer)."""
        if login.groups is None:
            return None
        return from_values(login.groups, self._format)


class OverageGroups:
    """The claim while it holds the groups; the directory when the IdP says there were too many to send."""

    def __init__(self, claims: GroupSource, directory: GroupSource) -> None:
        self._claims = claims
        self._directory = directory

    async def groups(self, login: VerifiedLogin) -> GroupsAnswer | None:
        """Ask the directory only on overage."""
        if login.groups_overage:
            return await self._directory.groups(login)
        return await self._claims.groups(login)


class NoGroups:
    """No group source is configured: the IdP's answer never says anything about groups."""

    async def groups(self, login: VerifiedLogin) -> GroupsAnswer | None:
        """Always "cannot tell"."""
        return None


def unknown_reason(login: VerifiedLogin) -> str:
    """Why a source could not tell, in the words the audit log and the warning use."""
    if login.groups_overage:
        return "the identity provider sent an overage pointer instead of the groups"
    return "the groups claim was missing"


def warn_unknown(
    audit: AuditLog, outbox: Outbox, slack_user: str, why: str, *, now: int, at_link: bool, kept: tuple[str, ...]
) -> None:
    """Audit an unknown answer and warn the security channel, once a day per user (inside the caller's tx)."""
    audit.record(
        audit_actions.GROUPS_UNKNOWN,
        actor="idp",
        target=slack_user,
        outcome="ok",
        reason=why,
        details={"slack_user": slack_user, "why": why, "at_link": at_link, "kept": list(kept)},
    )
    key = f"identity:groups-unknown:{slack_user}:{now // GROUPS_WARNING_PERIOD}"
    outbox.post("security", key, GroupsUnknown(slack_user, why, at_link))
