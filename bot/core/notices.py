"""Notifications as text-free values: what happened and to whom; bot.slack.notices turns each into a message.

Services decide *that* someone must be told and *where* (a channel, a DM, an edit in place); they never write a
sentence. Every value here carries only facts, so one renderer owns every word a Slack user reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.core.digest import Digest
from bot.core.model import Grant, RoleBinding
from bot.core.policy import Rule
from bot.core.review_notices import AccessConverted, ReviewerAsked, ReviewProgress


@dataclass(frozen=True)
class GrantFacts:
    """A grant with the names people read (target, role), its rule, and the moment it is shown at.

    `lapsed` names the people (`Approval.person`) whose earlier approval no longer counts: unlinked since, or no
    longer in an approver group.
    """

    grant: Grant
    target: str
    role: str
    now: int
    rule: Rule | None = None
    lapsed: frozenset[str] = frozenset()


class HolderEvent(StrEnum):
    """What the requester or holder of a grant is told about."""

    APPROVED = "approved"
    DENIED = "denied"
    WITHDRAWN = "withdrawn"
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"
    FAILED = "failed"
    REQUEST_EXPIRED = "request_expired"
    EXTENDED = "extended"
    EXTENSION_DENIED = "extension_denied"
    EXPIRING = "expiring"


# --- grants ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GrantStatus:
    """The one grants-channel message of a grant, posted once and edited as the grant moves."""

    facts: GrantFacts


@dataclass(frozen=True)
class ApprovalCard:
    """The approvals-channel message of a request: facts, decisions so far, buttons while undecided."""

    facts: GrantFacts


@dataclass(frozen=True)
class ApproverAsked:
    """A DM asking one approver of the rule to Approve or Deny a request (besides the approvals-channel card)."""

    facts: GrantFacts


@dataclass(frozen=True)
class GrantChanged:
    """A DM to the requester or holder about one event of their grant; `by` and `why` when someone ended it."""

    facts: GrantFacts
    event: HolderEvent
    by: str = ""
    why: str = ""


@dataclass(frozen=True)
class BreakGlassUsed:
    """A break-glass grant went active: announced to the approvers and the security channel.

    `usergroups` are the Slack user groups of the approver groups (when configured); `mentions` every linked
    approver (the renderer names a few of them when there is no user group).
    """

    facts: GrantFacts
    mentions: tuple[str, ...]
    usergroups: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExtensionAsked:
    """The approvers are asked to extend a grant by `extra_s` (extension number `number`)."""

    facts: GrantFacts
    extra_s: int
    number: int


# --- identity -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkMade:
    """A Slack user linked (or relinked) an identity; `previous` and `moved_from` say what it replaced.

    `monitored` is False when no refresh token came (the IdP is never asked again); `groups_known` is False when
    the group source could not tell. `groups` are labels (display name and short id where known).
    """

    slack_user: str
    who: str
    groups: tuple[str, ...]
    previous: str | None = None
    moved_from: str | None = None
    monitored: bool = True
    groups_known: bool = True


@dataclass(frozen=True)
class LinkConfirmed:
    """The DM telling a user their link is in place (`monitored` False: no refresh token, never re-checked)."""

    slack_user: str
    name: str
    who: str
    groups: tuple[str, ...]
    monitored: bool = True


@dataclass(frozen=True)
class LinkMovedAway:
    """The DM telling the previous Slack account that its identity was linked to another account."""

    who: str


@dataclass(frozen=True)
class LinkRemoved:
    """A user unlinked; `idp_error` is set when revoking the refresh token at the IdP failed."""

    slack_user: str
    who: str
    idp_error: str | None = None


@dataclass(frozen=True)
class RefreshFailing:
    """Refreshing a link failed `failures` times in a row; nothing was revoked."""

    slack_user: str
    why: str
    failures: int
    retry_in_s: int


@dataclass(frozen=True)
class IdentityRevoked:
    """The IdP no longer accepts a link (or reused a refresh token): link revoked, grants being revoked."""

    slack_user: str
    who: str
    reuse: bool


@dataclass(frozen=True)
class IdentityRevokedDm:
    """The DM telling a user their link was revoked because the IdP no longer accepts it."""


@dataclass(frozen=True)
class RelinkRequested:
    """The DM asking a user to sign in again (with a Link button); their grants stay until `deadline`."""

    slack_user: str
    why: str
    deadline: int


@dataclass(frozen=True)
class RelinkRequired:
    """The IdP wants a user to sign in again (MFA, sign-in frequency, token limits); nothing is revoked yet."""

    slack_user: str
    who: str
    why: str
    deadline: int


@dataclass(frozen=True)
class RelinkExpired:
    """A user did not sign in again before the deadline: link revoked, grants being revoked."""

    slack_user: str
    who: str


@dataclass(frozen=True)
class RelinkExpiredDm:
    """The DM telling a user their link was revoked because they did not sign in again in time."""


@dataclass(frozen=True)
class GroupsUnknown:
    """The group source could not say which groups a user has; on refresh the previous groups were kept."""

    slack_user: str
    why: str
    at_link: bool = False


class RefusalKind(StrEnum):
    """Which check refused a sign-in."""

    ID_TOKEN = "id_token"  # noqa: S105 - a kind of refusal, not a secret
    STATE = "state"
    LINK = "link"


@dataclass(frozen=True)
class LoginRefused:
    """A sign-in was refused in a way that smells of an attack; `slack_user` is empty when nobody is known."""

    kind: RefusalKind
    slack_user: str
    why: str


# --- jobs -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RevocationOverdue:
    """A grant's binding is still in Rancher `overdue_s` after expiry (or after an early revocation began)."""

    grant: Grant
    overdue_s: int
    early: bool = False


@dataclass(frozen=True)
class ActivationAbandoned:
    """Rancher kept failing a grant's activation for `waited_s` (the activation timeout); the grant failed."""

    grant: Grant
    waited_s: int
    last_error: str


@dataclass(frozen=True)
class RevocationRecovered:
    """A grant alerted as overdue has ended, `overdue_s` after expiry."""

    grant: Grant
    overdue_s: int


@dataclass(frozen=True)
class OrphanDeleted:
    """The reconciler deleted a tagged binding no live grant owns."""

    binding: RoleBinding
    why: str


@dataclass(frozen=True)
class BindingMissing:
    """An active grant's binding was deleted outside the bot; `will_repair` when repair_drift is on."""

    grant: Grant
    will_repair: bool


@dataclass(frozen=True)
class BindingRepaired:
    """The reconciler recreated an active grant's binding."""

    grant: Grant


@dataclass(frozen=True)
class StandingAccessFound:
    """A binding of a governed role that nobody requested through the bot (reported once)."""

    binding: RoleBinding


@dataclass(frozen=True)
class DigestReady:
    """The weekly audit digest of one period, with the audit chain's head when it was built (an anchor)."""

    digest: Digest
    period_key: str
    timezone: str
    head_id: int = 0
    head_hash: str = ""


@dataclass(frozen=True)
class AuditAnchor:
    """The audit chain's head posted outside the database, to check the log against later."""

    head_id: int
    head_hash: str
    day: str


@dataclass(frozen=True)
class DigestAttachment:
    """The comment on the weekly digest's CSV of grants for [start, end)."""

    period_key: str
    start: int
    end: int


Notice = (
    GrantStatus
    | ApprovalCard
    | ApproverAsked
    | GrantChanged
    | BreakGlassUsed
    | ExtensionAsked
    | LinkMade
    | LinkConfirmed
    | LinkMovedAway
    | LinkRemoved
    | RefreshFailing
    | IdentityRevoked
    | IdentityRevokedDm
    | RelinkRequested
    | RelinkRequired
    | RelinkExpired
    | RelinkExpiredDm
    | GroupsUnknown
    | LoginRefused
    | RevocationOverdue
    | ActivationAbandoned
    | RevocationRecovered
    | OrphanDeleted
    | BindingMissing
    | BindingRepaired
    | StandingAccessFound
    | DigestReady
    | DigestAttachment
    | AuditAnchor
    | ReviewerAsked
    | ReviewProgress
    | AccessConverted
)
"""Everything the bot may tell someone."""
