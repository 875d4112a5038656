"""Desired (the bot's grants) versus observed (tagged Rancher bindings) → a reconciliation Plan.

Read the bindings first and the grants second: a grant is stored (`activating`) before its binding is created,
so every tagged binding seen then has its grant in the grant list, and an unknown grant id really is an orphan.
Grants activated within `settle` seconds of `now` are never reported missing (their binding may have been
created after the bindings were listed).

A terminating binding (`removed` set: deleted, finalizers pending) is already on its way out: it is never an
orphan to delete, it keeps a `revoking` grant pending, and it does not count as present for an active grant (that
binding was deleted outside the bot). The plan is a proposal: the job re-reads each grant and binding before it
acts or reports, since the sweep may have moved on meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.core.grant_lifecycle import TERMINAL
from bot.core.model import Grant, GrantState, RoleBinding, Scope


@dataclass(frozen=True)
class Orphan:
    """A binding the bot tagged that no live grant owns; `why` says which case it is."""

    binding: RoleBinding
    grant_id: str
    why: str


@dataclass(frozen=True)
class Adoption:
    """An `activating` grant whose tagged binding exists: finish activation with this binding."""

    grant: Grant
    binding: RoleBinding


@dataclass(frozen=True)
class PendingRevoke:
    """A `revoking` grant and the tagged bindings still present (empty: only the state change is left)."""

    grant: Grant
    bindings: tuple[RoleBinding, ...]


@dataclass(frozen=True)
class Plan:
    """What the reconciler should do; `untagged` is for reporting only, never for deletion."""

    delete: tuple[Orphan, ...] = ()
    missing: tuple[Grant, ...] = ()
    adopt: tuple[Adoption, ...] = ()
    finish_revoke: tuple[PendingRevoke, ...] = ()
    unfinished_activation: tuple[Grant, ...] = ()
    untagged: tuple[RoleBinding, ...] = ()

    @property
    def empty(self) -> bool:
        """True when nothing needs doing or reporting."""
        return not (
            self.delete
            or self.missing
            or self.adopt
            or self.finish_revoke
            or self.unfinished_activation
            or self.untagged
        )


def _grant_of(binding: RoleBinding, label_key: str) -> str | None:
    value = binding.labels.get(label_key) or binding.annotations.get(label_key)
    return value or None


def _owns(grant: Grant, binding: RoleBinding) -> bool:
    """True when the grant recorded this binding by id or name."""
    return (grant.binding_id is not None and grant.binding_id == binding.id) or (
        bool(grant.binding_name) and grant.binding_name == binding.name
    )


def plan(
    grants: Sequence[Grant],
    bindings: Sequence[RoleBinding],
    label_key: str,
    governed_roles: Iterable[str],
    now: int,
    *,
    settle: int = 60,
) -> Plan:
    """Compare grants with the bindings Rancher holds and say what to delete, recreate, adopt and finish.

    - delete: bindings tagged with a grant that is terminal or unknown, and second copies for one live grant;
    - missing: active, unexpired grants (activated at least `settle` s ago) with no binding;
    - adopt: activating grants whose binding exists; unfinished_activation: activating grants without one;
    - finish_revoke: every revoking grant, with the bindings still to delete;
    - untagged: bindings of governed roles that carry no tag and belong to no grant (standing access).
    A binding counts as a grant's when it carries the grant id under `label_key` (label or annotation) or
    when the grant recorded its id or name. Bindings tagged with a requested/approved grant are left alone.
    """
    governed = set(governed_roles)
    by_id = {g.id: g for g in grants}
    owned: dict[str, list[RoleBinding]] = {}
    delete: list[Orphan] = []
    untagged: list[RoleBinding] = []
    recorded = {g.binding_id: g for g in grants if g.binding_id} | {g.binding_name: g for g in grants if g.binding_name}

    for binding in bindings:
        if binding.scope is Scope.GLOBAL:
            continue
        tag = _grant_of(binding, label_key)
        grant = by_id.get(tag) if tag else None
        if binding.terminating:
            if grant is not None and grant.state is GrantState.REVOKING:
                owned.setdefault(grant.id, []).append(binding)
            continue
        if grant is None and tag is None:
            candidate = recorded.get(binding.id) or (recorded.get(binding.name) if binding.name else None)
            if candidate is not None and _owns(candidate, binding):
                grant = candidate
        if grant is None:
            if tag is not None:
                delete.append(Orphan(binding, tag, f"tagged with grant {tag}, which the bot does not know"))
            elif binding.role_id in governed:
                untagged.append(binding)
            continue
        if grant.state in TERMINAL:
            delete.append(Orphan(binding, grant.id, f"grant {grant.id} is {grant.state.value}"))
            continue
        owned.setdefault(grant.id, []).append(binding)

    missing: list[Grant] = []
    adopt: list[Adoption] = []
    unfinished: list[Grant] = []
    finish: list[PendingRevoke] = []
    for grant in grants:
        mine = owned.get(grant.id, [])
        if grant.state is GrantState.REVOKING:
            finish.append(PendingRevoke(grant, tuple(mine)))
        elif grant.state is GrantState.ACTIVE:
            keep = _pick(grant, mine)
            if keep is None:
                expired = grant.expires_at is not None and grant.expires_at <= now
                settling = grant.activated_at is not None and now - grant.activated_at < settle
                if not expired and not settling:
                    missing.append(grant)
            delete.extend(Orphan(b, grant.id, f"second binding for grant {grant.id}") for b in mine if b is not keep)
        elif grant.state is GrantState.ACTIVATING:
            keep = _pick(grant, mine)
            if keep is None:
                unfinished.append(grant)
            else:
                adopt.append(Adoption(grant, keep))
                delete.extend(
                    Orphan(b, grant.id, f"second binding for grant {grant.id}") for b in mine if b is not keep
                )
    return Plan(
        delete=tuple(delete),
        missing=tuple(missing),
        adopt=tuple(adopt),
        finish_revoke=tuple(finish),
        unfinished_activation=tuple(unfinished),
        untagged=tuple(untagged),
    )


def _pick(grant: Grant, mine: Sequence[RoleBinding]) -> RoleBinding | None:
    """The binding to keep for a grant: the one it recorded, else the one for its role and target, else the first."""
    if not mine:
        return None
    for binding in mine:
        if _owns(grant, binding):
            return binding
    for binding in mine:
        if binding.role_id == grant.role_id and binding.target == grant.target:
            return binding
    return mine[0]
