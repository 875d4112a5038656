"""Principals: resolution through the caller key's provider (local as fallback), the caller's own, and search.

rancher pkg/auth/providers/providers.go@v2.14.0 GetPrincipal: the key's provider first; when it fails and the key is
not local, the local provider is tried. The local provider (local/local_auth_provider.go GetPrincipal) looks up the
user *named* after the `://`, whatever the scheme. genericoidc (2.9+, genericoidc_provider.go) cuts the scheme at the
first `_` and accepts any `<x>_user://` or `<x>_group://` id without asking the IdP (display name = the id's tail).
Other providers resolve what the emulator knows of them (`principals:` in the fixture).
"""

from __future__ import annotations

from accessbot_emulators.rancher.auth import Caller
from accessbot_emulators.rancher.profiles import GENERICOIDC
from accessbot_emulators.rancher.schema import Obj
from accessbot_emulators.rancher.store import Store


class PrincipalNotResolved(Exception):
    """The providers could not resolve a principal; `not_found` when it is a Kubernetes NotFound (404 on GET)."""

    def __init__(self, message: str, *, not_found: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.not_found = not_found


def _genericoidc(store: Store, pid: str) -> Obj:
    scheme, found, external = pid.partition("://")
    if not found:
        raise PrincipalNotResolved(f"invalid principal id: {pid}", not_found=False)
    provider, cut, kind = scheme.partition("_")
    if not cut:
        raise PrincipalNotResolved(f"invalid principal scheme: {scheme}", not_found=False)
    if kind not in ("user", "group"):
        raise PrincipalNotResolved(f"invalid principal type: {kind}", not_found=False)
    known = store.db["principal"].get(pid)
    name = known["name"] if known is not None and kind == "group" else external
    return {
        "id": f"{provider}_{kind}://{external}",
        "name": name,
        "loginName": external if kind == "user" else "",
        "principalType": kind,
        "provider": "genericoidc",
    }


def _local(store: Store, pid: str) -> Obj:
    _, colon, rest = pid.partition(":")
    if not colon:
        raise PrincipalNotResolved(f"invalid id {pid}", not_found=False)
    name = rest.removeprefix("//")
    user = store.db["user"].get(name)
    if user is None:
        raise PrincipalNotResolved(f'user.management.cattle.io "{name}" not found')
    local = next((p for p in user["principalIds"] if p.startswith("local://")), f"local://{user['id']}")
    return {"id": local, "name": user.get("name", ""), "loginName": user.get("username", ""),
            "principalType": "user", "provider": "local"}  # fmt: skip


def get_principal(store: Store, pid: str, caller: Caller | None) -> Obj:
    """A principal as the caller key's provider resolves it, the local provider as fallback."""
    provider = caller.token["authProvider"] if caller else "local"
    first: PrincipalNotResolved | None = None
    try:
        if provider == "genericoidc" and store.settings.profile.has(GENERICOIDC):
            return _genericoidc(store, pid)
        if provider == "local":
            return _local(store, pid)
        known = store.db["principal"].get(pid)
        if known is None or known.get("provider") != provider:
            raise PrincipalNotResolved(f'principals.management.cattle.io "{pid}" not found')
        return known
    except PrincipalNotResolved as err:
        if provider == "local":
            raise
        first = err
    try:
        return _local(store, pid)
    except PrincipalNotResolved:
        raise first from None


def caller_principals(store: Store, caller: Caller | None) -> list[Obj]:
    """`GET /v3/principals`: the caller's own user principal and the group principals of its key."""
    if caller is None:
        return []
    provider = caller.token["authProvider"]
    user_pid = caller.token.get("userPrincipal") or f"local://{caller.user['id']}"
    user_p = store.db["principal"].get(user_pid) or {"id": user_pid, "principalType": "user", "provider": provider}
    out = [{**user_p, "me": True, "memberOf": False}]
    for gid in caller.token.get("groupPrincipals") or []:
        group = store.db["principal"].get(gid) or {
            "id": gid, "name": gid.split("://", 1)[-1], "principalType": "group", "provider": provider,
        }  # fmt: skip
        out.append({**group, "me": False, "memberOf": True})
    return out


def search(store: Store, data: Obj, caller: Caller) -> list[Obj]:
    """`POST /v3/principals?action=search`: matches by name through the key's provider (genericoidc echoes the text)."""
    text = str(data.get("name", ""))
    kind = data.get("principalType") or None
    provider = caller.token["authProvider"]
    found: list[Obj] = []
    if provider == "genericoidc" and text:
        for ptype in ("user", "group") if kind is None else (kind,):
            found.append(
                {"id": f"genericoidc_{ptype}://{text}", "name": text, "principalType": ptype, "provider": provider}
            )
    lowered = text.lower()
    for prov in (provider, "local") if provider != "genericoidc" else ("local",):
        for principal in store.db["principal"].values():
            if principal["provider"] != prov or (kind and principal["principalType"] != kind):
                continue
            hay = f"{principal.get('name', '')} {principal.get('loginName', '')}".lower()
            if lowered in hay:
                found.append(dict(principal))
    return [{**p, "me": p["id"] == caller.token.get("userPrincipal"), "memberOf": False} for p in found]
