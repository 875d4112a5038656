"""Principals: resolution through the caller key's provider, the caller's own principals, and search."""

from __future__ import annotations

from accessbot_emulators.rancher.auth import Caller
from accessbot_emulators.rancher.errors import ApiError
from accessbot_emulators.rancher.naming import provider_of
from accessbot_emulators.rancher.schema import Obj
from accessbot_emulators.rancher.store import Store


def resolve_principal(store: Store, pid: str, caller: Caller | None) -> Obj:
    """A principal by id through the caller key's provider (or local); genericoidc resolves any id of its own."""
    principal = store.db["principal"].get(pid)
    provider = caller.token["authProvider"] if caller else "local"
    if principal is None and provider == "genericoidc" and provider_of(pid) == "genericoidc":
        kind = "group" if "_group://" in pid else "user"
        principal = {"id": pid, "name": pid.split("://", 1)[-1], "principalType": kind, "provider": "genericoidc"}
    if principal is None or principal["provider"] not in (provider, "local"):
        raise ApiError(404, "NotFound", f'principals "{pid}" not found')
    return principal


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
