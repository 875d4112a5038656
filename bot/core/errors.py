"""The one exception tree every layer raises and catches, and how a message quotes the input it refuses."""

from __future__ import annotations

from bot.core.token_refusals import RefusalKind, TokenRefusal


def shown(text: str, limit: int = 40) -> str:
    """User text as quoted back in a message: stripped and cut short, so a hostile value is never echoed whole."""
    clean = text.strip()
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


def is_number(text: str) -> bool:
    """True for ASCII digits only (`str.isdigit` also accepts `²` or `٣`, which `int()` then refuses or misreads)."""
    return text.isascii() and text.isdigit()


class BotError(Exception):
    """Base of every error the bot raises on purpose."""


class UserError(BotError):
    """The user asked for something malformed or impossible; `hint` says how to fix it."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class NotAllowed(UserError):
    """The caller may not do this (policy, role or ownership)."""


class NotFound(UserError):
    """The thing named does not exist (or the caller may not see it)."""


class NotLinked(UserError):
    """The Slack user has no active identity link."""


class InvalidTransition(BotError):
    """A grant or request was asked to move to a state it cannot reach from where it is."""

    def __init__(self, current: str, target: str) -> None:
        super().__init__(f"cannot go from {current} to {target}")
        self.current = current
        self.target = target


class UpstreamError(BotError):
    """An outside system (Rancher, the IdP, Slack) failed; `service` names it."""

    def __init__(self, service: str, message: str, *, status: int | None = None, code: str = "") -> None:
        super().__init__(f"{service}: {message}")
        self.service = service
        self.message = message
        self.status = status
        self.code = code


class TransientUpstreamError(UpstreamError):
    """The outside system may succeed if asked again later (timeouts, 429, 5xx)."""


class PermanentUpstreamError(UpstreamError):
    """The outside system refused for a reason a retry will not change."""


class ConflictError(PermanentUpstreamError):
    """The object already exists (Rancher 409 AlreadyExists / Conflict)."""


class TokenRejected(BotError):
    """An ID token or OAuth response failed validation; `reason` is short and safe to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidGrantError(UpstreamError):
    """The IdP refused the grant (`invalid_grant` and kin); `kind` says why (core.token_refusals.classify)."""

    def __init__(
        self,
        message: str = "invalid_grant",
        *,
        kind: RefusalKind = RefusalKind.DEACTIVATED,
        refusal: TokenRefusal | None = None,
    ) -> None:
        super().__init__("identity provider", message, code=refusal.error if refusal else "invalid_grant")
        self.kind = kind
        self.refusal = refusal


class ConfigError(BotError):
    """The configuration is invalid; `problems` holds one `field.path: what is wrong (expected)` each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class FencedOut(BotError):
    """A job tried to write under a lease that another process has taken over since; nothing was written."""

    def __init__(self, lease: str, owner: str, token: int) -> None:
        super().__init__(f"lease {lease!r} is no longer held by {owner} with token {token}; write refused")
        self.lease = lease
        self.owner = owner
        self.token = token
