"""Who may sign in and which clients may ask: accounts and clients, and the YAML accounts file that declares them."""

from __future__ import annotations

import hmac
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from authlib.oauth2.rfc6749 import scope_to_list

SUPPORTED_SCOPES = ("openid", "email", "profile", "groups", "offline_access")
_SUB_NAMESPACE = uuid.UUID("8f1e5c1a-6c1b-4d39-9a53-2f5d8f0b7a11")
_OID_NAMESPACE = uuid.UUID("0b6f1f0e-3d1c-4a55-9c1e-7a2b3c4d5e6f")


@dataclass
class Account:
    """One login account of the dev IdP (mutable: admin endpoints disable it or change its groups)."""

    username: str
    password: str
    sub: str
    email: str | None = None
    email_verified: bool | None = None
    name: str | None = None
    groups: list[str] = field(default_factory=list)
    disabled: bool = False
    object_id: str = ""
    admin: bool = False
    deleted: bool = False
    events: dict[str, float] = field(default_factory=dict)  # account event → when it happened (time.time())
    consented: set[str] = field(default_factory=set)  # clients this user has consented to (Google's first consent)

    def __post_init__(self) -> None:
        if not self.object_id:
            self.object_id = str(uuid.uuid5(_OID_NAMESPACE, self.username))

    def claims(self) -> dict[str, Any]:
        """Return the identity claims shared by the ID token and userinfo."""
        out: dict[str, Any] = {"sub": self.sub, "preferred_username": self.username, "groups": list(self.groups)}
        if self.email is not None:
            out["email"] = self.email
        if self.email_verified is not None:
            out["email_verified"] = self.email_verified
        if self.name is not None:
            out["name"] = self.name
        return out


def _is_loopback_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Client:
    """A registered relying party; implements authlib's ``ClientMixin`` duck type."""

    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]
    auth_methods: tuple[str, ...] = ("client_secret_basic", "client_secret_post")
    graph_permissions: tuple[str, ...] = ("GroupMember.Read.All",)  # Entra application permissions (admin-consented)

    def get_client_id(self) -> str:
        """Return the client id."""
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        """Return the first concrete registered redirect URI, if any."""
        return next((uri for uri in self.redirect_uris if uri != "*"), None)

    def get_allowed_scope(self, scope: str | None) -> str:
        """Return the requested scopes (``openid`` when none were asked for); the provider filters them."""
        if not scope:
            return "openid"
        return " ".join(scope_to_list(scope))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        """Exact match against the registered URIs; a ``*`` entry admits any loopback URL."""
        if redirect_uri in self.redirect_uris:
            return True
        return "*" in self.redirect_uris and _is_loopback_url(redirect_uri)

    def check_client_secret(self, client_secret: str) -> bool:
        """Compare the secret in constant time."""
        return hmac.compare_digest(client_secret.encode(), self.client_secret.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        """Confidential client: secret in Basic auth or in the POST body, as registered (a strict IdP allows one)."""
        return method in self.auth_methods

    def check_response_type(self, response_type: str) -> bool:
        """Only the code flow."""
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        """Authorization code and refresh token grants."""
        return grant_type in ("authorization_code", "refresh_token")


def str_list(value: Any, where: str) -> list[str]:
    """`value` as a list of strings, or ValueError naming `where`."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where}: expected a list of strings")
    return list(value)


@dataclass
class AccountsFile:
    """A parsed accounts file: optional fixed issuer, clients by id, accounts by username."""

    issuer: str | None
    clients: dict[str, Client]
    accounts: dict[str, Account]


def load_accounts(source: Mapping[str, Any] | str | os.PathLike[str]) -> AccountsFile:
    """Parse and validate an accounts mapping or YAML file; errors name the offending field."""
    if isinstance(source, Mapping):
        raw: Any = dict(source)
    else:
        raw = yaml.safe_load(Path(source).read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise ValueError("accounts file: expected a mapping with 'clients' and 'accounts'")
    unknown = set(raw) - {"issuer", "clients", "accounts"}
    if unknown:
        raise ValueError(f"accounts file: unknown keys {sorted(unknown)}")
    issuer = raw.get("issuer")
    if issuer is not None and (not isinstance(issuer, str) or not issuer.startswith(("http://", "https://"))):
        raise ValueError("issuer: expected an http(s) URL")
    clients: dict[str, Client] = {}
    raw_clients = raw.get("clients")
    if not isinstance(raw_clients, list) or not raw_clients:
        raise ValueError("clients: expected a non-empty list")
    for i, item in enumerate(raw_clients):
        where = f"clients[{i}]"
        if not isinstance(item, dict):
            raise ValueError(f"{where}: expected a mapping")
        cid, secret = item.get("client_id"), item.get("client_secret")
        if not isinstance(cid, str) or not cid:
            raise ValueError(f"{where}.client_id: expected a non-empty string")
        if not isinstance(secret, str) or not secret:
            raise ValueError(f"{where}.client_secret: expected a non-empty string")
        uris = str_list(item.get("redirect_uris"), f"{where}.redirect_uris")
        methods = item.get("token_endpoint_auth_methods", ["client_secret_basic", "client_secret_post"])
        methods = str_list(methods, f"{where}.token_endpoint_auth_methods")
        if not set(methods) <= {"client_secret_basic", "client_secret_post"} or not methods:
            raise ValueError(
                f"{where}.token_endpoint_auth_methods: expected client_secret_basic and/or client_secret_post"
            )
        permissions = str_list(item.get("graph_permissions", ["GroupMember.Read.All"]), f"{where}.graph_permissions")
        clients[cid] = Client(cid, secret, tuple(uris), tuple(methods), tuple(permissions))
    accounts: dict[str, Account] = {}
    raw_accounts = raw.get("accounts")
    if not isinstance(raw_accounts, dict) or not raw_accounts:
        raise ValueError("accounts: expected a non-empty mapping of username to account")
    allowed = {"password", "sub", "email", "email_verified", "name", "groups", "disabled", "object_id", "admin"}
    for username, item in raw_accounts.items():
        where = f"accounts.{username}"
        if not isinstance(item, dict):
            raise ValueError(f"{where}: expected a mapping")
        extra = set(item) - allowed
        if extra:
            raise ValueError(f"{where}: unknown keys {sorted(extra)}")
        password = item.get("password")
        if not isinstance(password, str) or not password:
            raise ValueError(f"{where}.password: expected a non-empty string")
        sub = item.get("sub") or str(uuid.uuid5(_SUB_NAMESPACE, str(username)))
        for key in ("sub", "email", "name", "object_id"):
            if key in item and item[key] is not None and not isinstance(item[key], str):
                raise ValueError(f"{where}.{key}: expected a string")
        for key in ("email_verified", "disabled", "admin"):
            if key in item and not isinstance(item[key], bool):
                raise ValueError(f"{where}.{key}: expected true or false")
        accounts[str(username)] = Account(
            username=str(username),
            password=password,
            sub=str(sub),
            email=item.get("email"),
            email_verified=item.get("email_verified"),
            name=item.get("name"),
            groups=str_list(item.get("groups", []), f"{where}.groups"),
            disabled=bool(item.get("disabled", False)),
            object_id=str(item.get("object_id") or ""),
            admin=bool(item.get("admin", False)),
        )
    return AccountsFile(issuer=issuer, clients=clients, accounts=accounts)
