"""What each personality puts in ID tokens and userinfo: subject, email, groups (names, GUIDs, paths or none).

Group ids are derived from group names, stable across runs, so the Graph and Directory endpoints agree with the
claims: Entra object ids are UUIDs, Google group ids are 15-character hex strings.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Collection
from typing import Any

from accessbot_emulators.idp.accounts import Account
from accessbot_emulators.idp.personalities import ENTRA_TENANT, Personality

_GROUP_NAMESPACE = uuid.UUID("5d0c3a9e-1f2b-4c6d-8e7f-a1b2c3d4e5f6")


def entra_group_id(name: str) -> str:
    """The object id an Entra group of this name has here."""
    return str(uuid.uuid5(_GROUP_NAMESPACE, name))


def google_group_id(name: str) -> str:
    """The Directory id a Google group of this name has here."""
    return uuid.uuid5(_GROUP_NAMESPACE, name).hex[:15]


def google_sub(account: Account) -> str:
    """Google's subject is the account's numeric Directory id (21 digits)."""
    if account.sub.isdigit():
        return account.sub
    return str(uuid.uuid5(_GROUP_NAMESPACE, account.username).int)[:21]


def subject(account: Account, personality: Personality, client_id: str) -> str:
    """The `sub` a client sees: Entra's is pairwise per application (id-token-claims-reference), Google's numeric."""
    if personality.pairwise_sub:
        digest = hashlib.sha256(f"{account.object_id}:{client_id}".encode()).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()[:43]
    if personality.directory:
        return google_sub(account)
    return account.sub


def domain_of(account: Account) -> str:
    """The email domain of an account (its Workspace domain for Google)."""
    return (account.email or f"{account.username}@example.com").rpartition("@")[2].lower()


def _groups(account: Account, personality: Personality) -> list[str]:
    if personality.group_format == "guids":
        return [entra_group_id(g) for g in account.groups]
    if personality.group_format == "paths":
        return [g if g.startswith("/") else f"/{g}" for g in account.groups]
    return list(account.groups)


def claims_for(
    account: Account, personality: Personality, client_id: str, scopes: Collection[str], *, userinfo: bool = False
) -> dict[str, Any]:
    """The identity claims of `account` for `client_id` granted `scopes` (ID token, or userinfo)."""
    if personality.name == "generic":
        return account.claims()
    out: dict[str, Any] = {"sub": subject(account, personality, client_id)}
    if personality.name == "entra":
        upn = account.email or f"{account.username}@contoso.onmicrosoft.com"
        out.update({"oid": account.object_id, "tid": ENTRA_TENANT, "preferred_username": upn})
    else:
        out["preferred_username"] = account.username
    if account.name is not None:
        out["name"] = account.name
    if account.email is not None and "email" in scopes:
        out["email"] = account.email
        if personality.email_verified == "false":
            out["email_verified"] = False
        elif personality.email_verified == "account" and account.email_verified is not None:
            out["email_verified"] = account.email_verified
    if personality.directory and account.email and not account.email.endswith("@gmail.com"):
        out["hd"] = domain_of(account)
    if personality.group_format == "none" or (userinfo and not personality.userinfo_groups):
        return out
    if personality.groups_scope is not None and personality.groups_scope not in scopes:
        return out
    groups = _groups(account, personality)
    if not userinfo and personality.overage_limit is not None and len(groups) > personality.overage_limit:
        # id-token-claims-reference: the claim is left out and an overage pointer sent instead.
        endpoint = f"https://graph.windows.net/{ENTRA_TENANT}/users/{account.object_id}/getMemberObjects"
        out["_claim_names"] = {"groups": "src1"}
        out["_claim_sources"] = {"src1": {"endpoint": endpoint}}
        return out
    out[personality.groups_claim] = groups
    return out
