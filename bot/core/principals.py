"""How an IdP identity becomes Rancher principal ids and a Rancher user id (reference §3 and §5)."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.core.errors import UserError
from bot.core.model import Identity, PrincipalSet

_PROVIDER = re.compile(r"^[a-z][a-z0-9]*$")

# Providers whose group principals do not follow `<provider>_group://<value>`.
_GROUP_PREFIX = {
    "github": "github_team://",
    "githubapp": "githubapp_team://",
}
_ORG_PREFIX = {
    "github": "github_org://",
    "githubapp": "githubapp_org://",
}


def derive_user_id(principal_id: str) -> str:
    """Rancher's user id for an external principal: `u-` + 10 chars of lowercase base32(sha256(principal))."""
    digest = hashlib.sha256(principal_id.encode("utf-8")).digest()
    return "u-" + base64.b32encode(digest).decode("ascii").lower().rstrip("=")[:10]


def user_principal_id(provider: str, subject: str, template: str | None = None) -> str:
    """The user principal id for a subject, e.g. `genericoidc_user://<sub>` or a configured template."""
    _check_provider(provider)
    if not subject:
        raise UserError("the identity has no subject", "link again with the identity provider")
    if template:
        return _apply(template, provider=provider, subject=subject, group="")
    if provider == "local":
        return f"local://{subject}"
    return f"{provider}_user://{subject}"


def group_principal_id(provider: str, group: str, template: str | None = None) -> str:
    """The group principal id for one group value, e.g. `genericoidc_group://sre`."""
    _check_provider(provider)
    if template:
        return _apply(template, provider=provider, subject="", group=group)
    if provider in _ORG_PREFIX and group.startswith("org:"):
        return _ORG_PREFIX[provider] + group.removeprefix("org:")
    if provider in _GROUP_PREFIX:
        return _GROUP_PREFIX[provider] + group.removeprefix("team:")
    return f"{provider}_group://{group}"


def split_group_paths(groups: Sequence[str]) -> tuple[str, ...]:
    """Split `full_group_path` values the way Rancher does: `/eng/team-a` → `eng`, `team-a`."""
    out: list[str] = []
    for value in groups:
        out.extend(part for part in value.split("/") if part)
    return tuple(out)


def principal_set(
    provider: str,
    subject: str,
    groups: Sequence[str],
    *,
    user_template: str | None = None,
    group_template: str | None = None,
    full_group_paths: bool = False,
    user_id: str | None = None,
) -> PrincipalSet:
    """Turn an identity (provider, subject, groups) into the principals Rancher knows it by."""
    user_principal = user_principal_id(provider, subject, user_template)
    values = split_group_paths(groups) if full_group_paths else tuple(groups)
    group_ids: list[str] = []
    names: dict[str, str] = {}
    if provider != "local" or group_template:
        for value in values:
            if not value:
                continue
            pid = group_principal_id(provider, value, group_template)
            if pid not in names:
                names[pid] = value
                group_ids.append(pid)
    uid = user_id
    if uid is None and not user_principal.startswith("local://"):
        uid = derive_user_id(user_principal)
    elif uid is None:
        uid = user_principal.removeprefix("local://")
    principal_ids = (user_principal,) if user_principal == f"local://{uid}" else (user_principal, f"local://{uid}")
    return PrincipalSet(
        user_principal_id=user_principal,
        group_principal_ids=tuple(group_ids),
        user_id=uid,
        principal_ids=principal_ids,
        group_names=names,
    )


@dataclass(frozen=True)
class PrincipalMapping:
    """How this deployment maps identities to Rancher principals (`rancher.auth_provider` and the templates)."""

    provider: str = "genericoidc"
    user_template: str | None = None
    group_template: str | None = None
    full_group_paths: bool = False

    def of(self, identity: Identity) -> PrincipalSet:
        """The Rancher principals a linked identity maps to."""
        return principal_set(
            self.provider,
            identity.rancher_subject,
            identity.groups,
            user_template=self.user_template,
            group_template=self.group_template,
            full_group_paths=self.full_group_paths,
        )

    def user_id_of(self, principal: str) -> str:
        """The Rancher user id Rancher derives for a user principal (`local://u-x` → `u-x`)."""
        return principal.removeprefix("local://") if principal.startswith("local://") else derive_user_id(principal)


GROUPS_AS_OF_LOGIN = frozenset({"genericoidc", "okta", "ping", "adfs", "keycloak", "shibboleth"})
"""Providers whose groups Rancher never refreshes: genericoidc (rancher pkg/auth/providers/genericoidc/
genericoidc_provider.go@v2.14.0 RefetchGroupPrincipals "Not implemented", CanRefreshPrincipals false) and the SAML
ones (saml/saml_provider.go RefetchGroupPrincipals "Not implemented"): the groups of the last Rancher login apply."""


def groups_as_of(provider: str) -> str:
    """Whose groups Rancher enforces: `login` (the last Rancher login), `refresh` (login and Rancher's periodic
    refresh, `auth-user-info-resync-cron`), or "" for the local provider (no groups)."""
    if provider == "local":
        return ""
    return "login" if provider in GROUPS_AS_OF_LOGIN else "refresh"


def principal_display(principal_id: str, names: Mapping[str, str] | None = None) -> str:
    """A short human form of a principal id: the known group name, else the part after `://`."""
    if names and principal_id in names:
        return names[principal_id]
    return principal_id.split("://", 1)[-1]


def _check_provider(provider: str) -> None:
    if not _PROVIDER.match(provider):
        raise UserError(f"`{provider}` is not a Rancher auth provider name", "use e.g. genericoidc, okta or azuread")


def _apply(template: str, *, provider: str, subject: str, group: str) -> str:
    if "{" not in template:
        raise UserError(f"principal template `{template}` has no placeholder", "use {subject} or {group}")
    try:
        return template.format(provider=provider, subject=subject, group=group)
    except (KeyError, IndexError, ValueError) as exc:
        raise UserError(f"principal template `{template}` is invalid", "use {provider}, {subject}, {group}") from exc
