"""What a verified login must carry before it may be linked (the Slack profile comparison aside).

- `oidc.email_verified`: `required` (must be true), `if_present` (refused only when false), `ignore`.
- An email when the Slack email must match or domains are restricted; a domain in `allowed_email_domains`.
- A value for `rancher.user_principal_claim` (else the user cannot be named in Rancher).
- A refresh token when `oidc.require_refresh_token` (else offboarding at the IdP would go unnoticed).
`services.linking` applies these one by one with its own failure kinds; `accessbot oidc check --login` lists them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.core.model import VerifiedLogin


def email_unverified(policy: str, email_verified: bool | None) -> bool:
    """Whether the `oidc.email_verified` policy refuses this `email_verified` value."""
    if policy == "ignore":
        return False
    if policy == "required":
        return email_verified is not True
    return email_verified is False


@dataclass(frozen=True)
class LinkRules:
    """The settings a login is judged by."""

    email_verified: str = "if_present"
    require_email_match: bool = True
    allowed_email_domains: Sequence[str] = ()
    require_refresh_token: bool = True
    principal_claim: str = "sub"

    def refusals(self, login: VerifiedLogin) -> list[str]:
        """Why this login would not be linked, in the order the link flow checks (empty: it would be)."""
        out: list[str] = []
        needs_email = self.require_email_match or bool(self.allowed_email_domains)
        email = login.email.strip()
        domains = tuple(d.lower().lstrip("@") for d in self.allowed_email_domains)
        if needs_email and not email:
            out.append("identity has no email")
        elif needs_email and email_unverified(self.email_verified, login.email_verified):
            out.append(f"email not verified at the identity provider (email_verified: {self.email_verified})")
        elif domains and email.rpartition("@")[2].lower() not in domains:
            out.append("email domain not allowed")
        if not login.principal_subject:
            out.append(f"no `{self.principal_claim}` claim to name the user in Rancher")
        if self.require_refresh_token and not login.refresh_token:
            out.append("no refresh token, so offboarding at the identity provider would go unnoticed")
        return out
