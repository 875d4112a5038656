"""Who is calling: the API key in a bearer or basic header, or the `R_SESS` cookie, and its enabled user."""

from __future__ import annotations

import base64
from contextlib import suppress
from dataclasses import dataclass

from starlette.requests import Request

from accessbot_emulators.rancher.schema import Obj
from accessbot_emulators.rancher.store import Store


@dataclass(frozen=True)
class Caller:
    """The authenticated user and the API key they called with."""

    user: Obj
    token: Obj


class Unauthenticated(Exception):
    """The request carries no valid API key."""


def authenticate(store: Store, request: Request) -> Caller:
    """The caller of `request`; Unauthenticated for a missing, wrong, disabled or expired key or a disabled user."""
    header = request.headers.get("authorization", "")
    credential = ""
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        credential = value.strip()
    elif scheme.lower() == "basic":
        with suppress(ValueError, UnicodeDecodeError):
            credential = base64.urlsafe_b64decode(value.strip() + "==").decode()
    elif "R_SESS" in request.cookies:
        credential = request.cookies["R_SESS"]
    name, _, secret = credential.partition(":")
    token = store.db["token"].get(name)
    if token is None or not secret or token["_secret"] != secret or not token["enabled"] or token["expired"]:
        raise Unauthenticated
    user = store.db["user"].get(str(token["userId"]))
    if user is None or not user.get("enabled", True):
        raise Unauthenticated
    return Caller(user, token)
