"""What Rancher's answer to a binding create means for a grant: a refusal no retry will change, or a transient failure.

Every answer is classified; a refusal ends the grant `failed` with the reason in plain words (written here, where
the rule is decided, as policy denials are), a transient failure is retried until `schedule.activation_timeout`.
The statuses and messages are Rancher's own (reference §2 and §4, sources in the emulator's bindings.py):
- 400 (webhook field checks), 401 (the key), 403, 404 (a missing namespace: project gone before 2.12), 409
  (a binding that is not the bot's), 422 (norman's checks, the validator, the webhook's escalation `Invalid`);
- 500 from the validator or the store when something does not exist: "Error getting role template",
  `projects.management.cattle.io … not found` (2.12+), `user.management.cattle.io … not found` (a user principal
  the key's provider cannot resolve);
- anything else that is 5xx, 429, a timeout or a lost connection is transient.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.core.errors import ConflictError, TransientUpstreamError, UpstreamError

_REFUSED_STATUS = frozenset({400, 401, 403, 404, 409, 422})
_USER_NOT_FOUND = re.compile(r'users?\.management\.cattle\.io "[^"]*" not found')
_PROJECT_NOT_FOUND = re.compile(r'(projects?\.management\.cattle\.io|namespaces) "[^"]*" not found')


@dataclass(frozen=True)
class Verdict:
    """`refused` with the reason in plain words, or transient (retry later); `detail` is Rancher's own message."""

    refused: bool
    why: str
    detail: str = ""


def classify(error: UpstreamError, *, role: str, where: str) -> Verdict:
    """Read a failed create of `role` on `where` (a cluster or project as people name it)."""
    status, code, message = error.status, error.code, error.message
    if isinstance(error, TransientUpstreamError) or status is None:
        return Verdict(False, f"Rancher did not answer ({message})", message)
    if isinstance(error, ConflictError):
        return Verdict(True, f"Rancher already has a binding of {role} on {where} that the bot did not make", message)
    if status == 500 or status in _REFUSED_STATUS:
        why = _refusal(status, code, message, role=role, where=where)
        if why:
            return Verdict(True, why, message)
    return Verdict(False, f"Rancher failed ({status} {code or 'error'}: {message})", message)


def _refusal(status: int, code: str, message: str, *, role: str, where: str) -> str:
    """The plain-words reason of a refusal, or "" when a 500 is not one Rancher gives for something missing."""
    if "Error getting role template" in message:
        return f"the role {role} does not exist in Rancher"
    if _PROJECT_NOT_FOUND.search(message):
        return f"{where} no longer exists in Rancher"
    if _USER_NOT_FOUND.search(message):
        return (
            "Rancher cannot find your user: you have never logged in to Rancher and the bot's API key comes from "
            "another auth provider (log in to Rancher once, or ask an operator to mint the key through your IdP)"
        )
    if status == 500:
        return ""
    if status == 401:
        return "Rancher refused the bot's API key (expired, disabled or wrong); an operator must replace it"
    if status == 403:
        return "the bot's Rancher API key is not allowed to create bindings"
    if status == 404:
        return f"Rancher could not find {where} or role {role}"
    if status == 422 and code == "Invalid":
        return f"the bot's Rancher API key does not itself hold {role} on {where} (Rancher's escalation check)"
    if status == 422 and code == "InvalidState":
        return f"the role {role} is locked in Rancher"
    if status == 422 and "Cannot reference context" in message:
        return f"the role {role} cannot be given on {where} (wrong context)"
    return f"Rancher refused the binding ({status} {code or 'error'}: {message})"
