"""ID-token signing: RS256 with the newest key, and the tampered tokens tests ask for (alg none, HS256, …)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.jwk import RSAKey

#: ``sign`` values accepted by ``/_admin/next-id-token``.
SIGN_MODES = ("rs256", "none", "hs256-public-key", "unknown-kid", "bad-signature")


@dataclass
class IdTokenOverride:
    """How to tamper with the next ID token: claims to merge (None removes), time offsets, signing mode."""

    claims: dict[str, Any]
    exp_offset: int | None
    iat_offset: int | None
    sign: str


def b64(data: bytes) -> str:
    """Unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64json(obj: Mapping[str, Any]) -> str:
    """Compact JSON, unpadded base64url (a JWT segment)."""
    return b64(json.dumps(obj, separators=(",", ":")).encode())


def new_key() -> RSAKey:
    """A fresh 2048-bit RSA signing key with a kid."""
    return RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"}, private=True, auto_kid=True)


def sign_id_token(claims: dict[str, Any], key: RSAKey, override: IdTokenOverride | None) -> str:
    """Sign `claims` with `key` (RS256), first applying a pending `override` (claims, offsets, signing mode)."""
    sign = "rs256"
    if override is not None:
        now = int(time.time())
        if override.iat_offset is not None:
            claims["iat"] = now + override.iat_offset
        if override.exp_offset is not None:
            claims["exp"] = now + override.exp_offset
        for name, value in override.claims.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        sign = override.sign
    header = {"typ": "JWT", "alg": "RS256", "kid": str(key.kid)}
    if sign == "none":
        return f"{b64json({'typ': 'JWT', 'alg': 'none'})}.{b64json(claims)}."
    if sign == "hs256-public-key":
        header["alg"] = "HS256"
        signing_input = f"{b64json(header)}.{b64json(claims)}"
        secret = key.as_pem(private=False)
        mac = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
        return f"{signing_input}.{b64(mac)}"
    if sign == "unknown-kid":
        key = new_key()
        header["kid"] = str(key.kid)
    token = jwt.encode(header, claims, key, algorithms=["RS256"])
    if sign == "bad-signature":
        head, body, sig = token.split(".")
        raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
        raw[0] ^= 0xFF
        token = f"{head}.{body}.{b64(bytes(raw))}"
    return token
