"""The strict ID-token checks: header, algorithm, issuer, audience, azp, times, nonce, subject, at_hash.

Every refusal is a TokenRejected with its own short reason (libraries.md §2.4: authlib's defaults skip `aud`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Collection, Mapping
from typing import Any

from bot.core.errors import TokenRejected

LEEWAY = 60
MAX_TOKEN = 16_384
_HASHES = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}


def b64decode(part: str) -> bytes:
    """Unpadded base64url."""
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def number(value: object) -> float | None:
    """A JSON number (never a boolean), else None."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def header(raw: str) -> dict[str, Any]:
    """The JOSE header of a compact JWT, or TokenRejected("malformed token")."""
    if len(raw) > MAX_TOKEN or raw.count(".") != 2:
        raise TokenRejected("malformed token")
    try:
        data = json.loads(b64decode(raw.split(".", 1)[0]))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise TokenRejected("malformed token") from None
    if not isinstance(data, dict):
        raise TokenRejected("malformed token")
    return data


def check_algorithm(alg: object, allowed: Collection[str]) -> str:
    """The header's `alg` when it is one of `allowed` (never none, never HMAC)."""
    if not isinstance(alg, str) or not alg:
        raise TokenRejected("algorithm missing")
    if alg.lower() == "none":
        raise TokenRejected("algorithm none not allowed")
    if alg not in allowed:
        raise TokenRejected(f"algorithm {alg[:16]} not allowed")
    return alg


def check_claims(
    claims: Mapping[str, Any], *, issuers: Collection[str], client_id: str, nonce: str | None, now: float
) -> None:
    """Issuer (one of `issuers`), audience, azp, exp/iat/nbf within leeway, nonce (unless a refresh), subject."""
    if claims.get("iss") not in issuers:
        raise TokenRejected("issuer mismatch")
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if client_id not in audiences:
        raise TokenRejected("audience mismatch")
    azp = claims.get("azp")
    if (len(audiences) > 1 or azp is not None) and azp != client_id:
        raise TokenRejected("azp mismatch")
    exp, iat, nbf = number(claims.get("exp")), number(claims.get("iat")), number(claims.get("nbf"))
    if exp is None:
        raise TokenRejected("expiry missing")
    if now > exp + LEEWAY:
        raise TokenRejected("token expired")
    if iat is None:
        raise TokenRejected("issue time missing")
    if iat > now + LEEWAY:
        raise TokenRejected("issued in the future")
    if nbf is not None and nbf > now + LEEWAY:
        raise TokenRejected("not valid yet")
    if nonce is not None:
        got = claims.get("nonce")
        if not got:
            raise TokenRejected("nonce missing")
        if got != nonce:
            raise TokenRejected("nonce mismatch")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise TokenRejected("subject missing")


def half_hash(value: str, alg: str) -> str:
    """The left-half hash OpenID Connect uses for `at_hash` (Core §3.1.3.6)."""
    hasher = _HASHES.get(alg[-3:], hashlib.sha512 if alg == "EdDSA" else hashlib.sha256)
    digest = hasher(value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")


def issuer_forms(issuer: str, scheme_optional: bool) -> frozenset[str]:
    """The `iss` values accepted for `issuer`; with `scheme_optional` also without `https://` (Google).

    https://developers.google.com/identity/openid-connect/openid-connect#an-id-tokens-payload: "The value of iss
    in the ID token is equal to accounts.google.com or https://accounts.google.com."
    """
    forms = {issuer}
    if scheme_optional and "://" in issuer:
        forms.add(issuer.split("://", 1)[1])
    return frozenset(forms)
