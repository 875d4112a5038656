"""Names and ids Rancher generates: generateName suffixes, user ids for principals, providers of principal ids."""

from __future__ import annotations

import base64
import hashlib
import random

NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def random_name(rng: random.Random, length: int = 5) -> str:
    """Kubernetes generateName suffix: `length` chars from Rancher's alphabet."""
    return "".join(rng.choice(NAME_ALPHABET) for _ in range(length))


def encode_name(number: int, length: int = 5) -> str:
    """`number` written in Rancher's name alphabet, `length` chars (deterministic names for synthetic estates)."""
    out = ""
    for _ in range(length):
        number, rest = divmod(number, len(NAME_ALPHABET))
        out = NAME_ALPHABET[rest] + out
    return out


def provider_of(principal_id: str) -> str:
    """The auth provider of a principal id: `genericoidc_user://x` → `genericoidc`, `local://u-1` → `local`."""
    scheme = principal_id.split("://", 1)[0]
    return scheme.rsplit("_", 1)[0] if "_" in scheme else scheme


def user_id_for_principal(principal_id: str) -> str:
    """The id Rancher gives the user of an external principal: `u-` + 10 lowercase base32 chars of its sha256.

    As rancher/rancher pkg/auth/providers/common/usermanager.go:288-297 does: sha256 of the principal id, standard
    base32 without padding, lowercased, the first 10 characters, prefixed with `u-`.
    """
    digest = hashlib.sha256(principal_id.encode("utf-8")).digest()
    return "u-" + base64.b32encode(digest).decode("ascii").rstrip("=").lower()[:10]
