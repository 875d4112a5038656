"""What the link flow answers: failure kinds, the refusal exception and each step's result."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.core.model import Identity


class Failure(StrEnum):
    """Why a link attempt was refused (the web page turns each into a sentence)."""

    START_INVALID = "start_invalid"
    STATE_MISSING = "state_missing"
    STATE_UNKNOWN = "state_unknown"
    STATE_REPLAYED = "state_replayed"
    STATE_EXPIRED = "state_expired"
    COOKIE_MISSING = "cookie_missing"
    COOKIE_MISMATCH = "cookie_mismatch"
    IDP_ERROR = "idp_error"
    CODE_MISSING = "code_missing"
    CODE_REJECTED = "code_rejected"
    TOKEN_REJECTED = "token_rejected"  # noqa: S105 - a failure kind, not a secret
    EMAIL_MISSING = "email_missing"
    EMAIL_UNVERIFIED = "email_unverified"
    EMAIL_MISMATCH = "email_mismatch"
    DOMAIN_NOT_ALLOWED = "domain_not_allowed"
    IDP_UNAVAILABLE = "idp_unavailable"
    SLACK_UNAVAILABLE = "slack_unavailable"
    NO_REFRESH_TOKEN = "no_refresh_token"  # noqa: S105 - a failure kind, not a secret
    PRINCIPAL_MISSING = "principal_missing"
    OTHER_WORKSPACE = "other_workspace"
    CONFIRM_INVALID = "confirm_invalid"
    CONFIRM_EXPIRED = "confirm_expired"
    LINK_DECLINED = "link_declined"


class LinkRefused(Exception):
    """A link step was refused; `failure` is the kind, `reason` a short text safe to show."""

    def __init__(self, failure: Failure, reason: str = "") -> None:
        super().__init__(failure.value)
        self.failure = failure
        self.reason = reason


@dataclass(frozen=True)
class LinkStart:
    """Where to send the browser, and the cookie value that binds it to the attempt."""

    redirect_url: str
    cookie: str

    def __repr__(self) -> str:
        return "LinkStart(<redacted>)"


@dataclass(frozen=True)
class PendingLink:
    """A verified login waiting for the signed-in person to confirm which Slack user it links."""

    token: str
    slack_user: str
    slack_name: str
    email: str
    name: str

    def __repr__(self) -> str:
        return f"PendingLink({self.slack_user}, <redacted>)"


@dataclass(frozen=True)
class LinkResult:
    """The outcome of a callback: the linked identity, a link awaiting confirmation, or a failure and a reason."""

    identity: Identity | None = None
    failure: Failure | None = None
    reason: str = ""
    relinked: bool = False
    pending: PendingLink | None = None

    @property
    def ok(self) -> bool:
        """True when the link was stored."""
        return self.identity is not None


@dataclass(frozen=True)
class UnlinkResult:
    """What unlinking did: `idp_revoked` is True (revoked), False (nothing to revoke there) or None (failed)."""

    identity: Identity
    idp_revoked: bool | None
    idp_error: str = ""


@dataclass(frozen=True)
class LinkInfo:
    """A link as `/access whoami` shows it (`relink_by`: the IdP wants a new sign-in before then)."""

    identity: Identity
    refresh_failures: int
    next_refresh_at: int | None
    monitored: bool = True
    relink_by: int | None = None
