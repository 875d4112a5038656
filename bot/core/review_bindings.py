"""A reviewed binding's fingerprint (has it changed since the campaign's read?) and its stored form for undo (what
an undo may recreate: never Rancher's own labels and annotations)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from bot.core.model import RoleBinding, Scope
from bot.core.review_scope import rancher_managed


def _owned(values: Mapping[str, str]) -> dict[str, str]:
    return {k: str(v) for k, v in sorted(values.items()) if not rancher_managed(k)}


def fingerprint(binding: RoleBinding) -> str:
    """A digest of what makes a binding this binding: identity (uid, id, name), role, target, subject, and the
    labels and annotations people set (Rancher's own are left out: its controllers add them over time).

    The user subject fields are left out when the binding has a uid: v3 marks them `noupdate` and Rancher's
    controller fills the missing one in after a create (userId ↔ userPrincipalId), so only a new object (a new uid)
    can change them. A group principal can never be filled in, so it always counts.
    """
    data: dict[str, object] = {
        "uid": binding.uid,
        "id": binding.id,
        "name": binding.name,
        "scope": binding.scope.value,
        "role": binding.role_id,
        "cluster": binding.cluster_id or "",
        "project": binding.project_id or "",
        "group": binding.group_principal_id or "",
        "labels": _owned(binding.labels),
        "annotations": _owned(binding.annotations),
    }
    if not binding.uid:
        data["user"] = [binding.user_id or "", binding.user_principal_id or ""]
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def what_changed(before: RoleBinding, now: RoleBinding) -> str:
    """A short account of how a binding differs from the one read earlier (empty when the fingerprints agree)."""
    if fingerprint(before) == fingerprint(now):
        return ""
    if before.uid and now.uid and before.uid != now.uid:
        return "it was deleted and created again (a new object with the same name)"
    parts = []
    if before.role_id != now.role_id:
        parts.append(f"role {before.role_id} → {now.role_id}")
    if (before.group_principal_id or "") != (now.group_principal_id or ""):
        parts.append("subject changed")
    if _owned(before.labels) != _owned(now.labels):
        parts.append("labels changed")
    if _owned(before.annotations) != _owned(now.annotations):
        parts.append("annotations changed")
    return ", ".join(parts) or "it changed"


def restorable(binding: RoleBinding, grant_label: str, restored_by: str) -> tuple[dict[str, str], dict[str, str]]:
    """(labels, annotations) for recreating a deleted binding: the ones people set, never Rancher's own (see
    `rancher_managed`) nor the grant label (the reconciler would delete it as an orphan), plus a note of the undo."""
    labels = {k: v for k, v in _owned(binding.labels).items() if k != grant_label}
    annotations = {k: v for k, v in _owned(binding.annotations).items() if k != grant_label}
    annotations[RESTORED_ANNOTATION] = restored_by
    return labels, annotations


RESTORED_ANNOTATION = "accessbot.io/restored-by-review"
"""Set on a binding an undo recreated: the review item it was restored from."""


def binding_json(binding: RoleBinding) -> str:
    """The binding as stored for undo and audit (every field of the normalised value)."""
    return json.dumps(
        {
            "id": binding.id,
            "uid": binding.uid,
            "name": binding.name,
            "scope": binding.scope.value,
            "role_id": binding.role_id,
            "cluster_id": binding.cluster_id,
            "project_id": binding.project_id,
            "user_id": binding.user_id,
            "user_principal_id": binding.user_principal_id,
            "group_principal_id": binding.group_principal_id,
            "labels": dict(binding.labels),
            "annotations": dict(binding.annotations),
        },
        sort_keys=True,
        separators=(",", ":"),
    )


def binding_from_json(text: str) -> RoleBinding:
    """The binding stored by `binding_json`."""
    data = json.loads(text)

    def opt(key: str) -> str | None:
        value = data.get(key)
        return str(value) if value else None

    return RoleBinding(
        id=str(data["id"]),
        uid=str(data.get("uid") or ""),
        name=str(data.get("name") or ""),
        scope=Scope(data["scope"]),
        role_id=str(data["role_id"]),
        cluster_id=opt("cluster_id"),
        project_id=opt("project_id"),
        user_id=opt("user_id"),
        user_principal_id=opt("user_principal_id"),
        group_principal_id=opt("group_principal_id"),
        labels={str(k): str(v) for k, v in (data.get("labels") or {}).items()},
        annotations={str(k): str(v) for k, v in (data.get("annotations") or {}).items()},
    )
