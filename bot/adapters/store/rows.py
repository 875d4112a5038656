"""Codecs between database rows and core values (JSON lists, 0/1 booleans, enum values)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from bot.core.model import (
    Approval,
    AuditEvent,
    Grant,
    GrantChange,
    GrantState,
    Identity,
    LinkRecord,
    LinkStatus,
    LoginAttempt,
    OutboxMessage,
    OutboxStatus,
    Priority,
    Target,
)

Row = dict[str, Any]


def json_list(value: str | None) -> tuple[str, ...]:
    """A JSON array column as a tuple of strings."""
    return tuple(str(item) for item in json.loads(value or "[]"))


def grant_row(grant: Grant) -> Row:
    """The columns of a new grant."""
    return {
        "id": grant.id,
        "slack_user": grant.slack_user,
        "subject": grant.subject,
        "cluster_id": grant.target.cluster_id,
        "project_id": grant.target.project_id,
        "role_id": grant.role_id,
        "duration_s": grant.duration_s,
        "rule": grant.rule,
        "state": grant.state.value,
        "requested_at": grant.requested_at,
        "reason": grant.reason,
        "ticket": grant.ticket,
        "break_glass": int(grant.break_glass),
        "self_service": int(grant.self_service),
        "approvals_required": grant.approvals_required,
        "activated_at": grant.activated_at,
        "expires_at": grant.expires_at,
        "ended_at": grant.ended_at,
        "binding_id": grant.binding_id,
        "binding_name": grant.binding_name,
        "user_principal_id": grant.user_principal_id,
        "extensions": grant.extensions,
        "failure": grant.failure,
        "via_groups": json.dumps(list(grant.via_groups)),
        "request_expires_at": grant.request_expires_at,
        "drifted": int(grant.drifted),
        "attempts": grant.attempts,
        "next_attempt_at": grant.next_attempt_at,
        "overdue_alerted": grant.overdue_alerted,
    }


def grant_from_row(row: Row, approvals: Sequence[Approval]) -> Grant:
    """A grant value from its row and approvals."""
    return Grant(
        id=row["id"],
        slack_user=row["slack_user"],
        subject=row["subject"],
        target=Target(row["cluster_id"], row["project_id"]),
        role_id=row["role_id"],
        duration_s=row["duration_s"],
        rule=row["rule"],
        state=GrantState(row["state"]),
        requested_at=row["requested_at"],
        reason=row["reason"] or "",
        ticket=row["ticket"] or "",
        break_glass=bool(row["break_glass"]),
        self_service=bool(row["self_service"]),
        approvals_required=row["approvals_required"] or 0,
        approvals=tuple(approvals),
        activated_at=row["activated_at"],
        expires_at=row["expires_at"],
        ended_at=row["ended_at"],
        binding_id=row["binding_id"],
        binding_name=row["binding_name"],
        user_principal_id=row["user_principal_id"],
        extensions=row["extensions"] or 0,
        failure=row["failure"] or "",
        via_groups=json_list(row["via_groups"]),
        request_expires_at=row["request_expires_at"],
        drifted=bool(row["drifted"]),
        updated_at=row["updated_at"],
        attempts=int(row["attempts"] or 0),
        next_attempt_at=int(row["next_attempt_at"] or 0),
        overdue_alerted=int(row["overdue_alerted"] or 0),
    )


def change_columns(change: GrantChange) -> Row:
    """The columns a GrantChange sets (None fields are left out)."""
    out: Row = {}
    for name, value in vars(change).items():
        if value is None:
            continue
        if isinstance(value, GrantState):
            out[name] = value.value
        elif isinstance(value, bool):
            out[name] = int(value)
        else:
            out[name] = value
    return out


def link_row(record: LinkRecord) -> Row:
    """The columns of a link."""
    identity = record.identity
    return {
        "slack_user": identity.slack_user,
        "team_id": identity.team_id,
        "issuer": identity.issuer,
        "subject": identity.subject,
        "email": identity.email,
        "name": identity.name,
        "groups": json.dumps(list(identity.groups)),
        "refresh_token": record.sealed_refresh_token,
        "token_expires_at": identity.token_expires_at,
        "linked_at": identity.linked_at,
        "refreshed_at": identity.refreshed_at,
        "status": identity.status.value,
        "revoked_at": record.revoked_at,
        "revoked_reason": record.revoked_reason or None,
        "refresh_failures": record.refresh_failures,
        "next_refresh_at": record.next_refresh_at,
        "principal_subject": identity.principal_subject or None,
        "group_names": json.dumps(dict(identity.group_names)) if identity.group_names else None,
        "relink_by": record.relink_by,
    }


def link_from_row(row: Row) -> LinkRecord:
    """A link value from its row."""
    identity = Identity(
        slack_user=row["slack_user"],
        team_id=row["team_id"],
        issuer=row["issuer"],
        subject=row["subject"],
        email=row["email"] or "",
        name=row["name"] or "",
        groups=json_list(row["groups"]),
        linked_at=row["linked_at"],
        refreshed_at=row["refreshed_at"],
        status=LinkStatus(row["status"]),
        token_expires_at=row["token_expires_at"],
        principal_subject=row["principal_subject"] or "",
        group_names=_group_names(row["group_names"]),
    )
    return LinkRecord(
        identity=identity,
        sealed_refresh_token=row["refresh_token"],
        refresh_failures=int(row["refresh_failures"] or 0),
        next_refresh_at=row["next_refresh_at"],
        revoked_at=row["revoked_at"],
        revoked_reason=row["revoked_reason"] or "",
        relink_by=row["relink_by"],
    )


def _group_names(text: str | None) -> tuple[tuple[str, str], ...]:
    """Group display names stored as a JSON object (id → name); anything else reads as none."""
    if not text:
        return ()
    try:
        data = json.loads(text)
    except ValueError:
        return ()
    if not isinstance(data, dict):
        return ()
    return tuple((str(k), str(v)) for k, v in data.items() if isinstance(v, str))


def attempt_row(attempt: LoginAttempt) -> Row:
    """The columns of a login attempt."""
    return {
        "id": attempt.id,
        "team_id": attempt.team_id,
        "slack_user": attempt.slack_user,
        "state": attempt.state,
        "nonce": attempt.nonce,
        "code_verifier": attempt.sealed_verifier,
        "cookie_hash": attempt.cookie_hash,
        "created_at": attempt.created_at,
        "expires_at": attempt.expires_at,
        "started_at": attempt.started_at,
        "used_at": attempt.used_at,
        "pending_login": attempt.sealed_pending,
        "confirm_hash": attempt.confirm_hash,
        "pending_until": attempt.pending_until,
    }


def attempt_from_row(row: Row) -> LoginAttempt:
    """A login attempt from its row."""
    return LoginAttempt(
        id=row["id"],
        team_id=row["team_id"],
        slack_user=row["slack_user"],
        state=row["state"],
        nonce=row["nonce"],
        sealed_verifier=row["code_verifier"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        cookie_hash=row["cookie_hash"],
        started_at=row["started_at"],
        used_at=row["used_at"],
        sealed_pending=row["pending_login"],
        confirm_hash=row["confirm_hash"],
        pending_until=row["pending_until"],
    )


def audit_row(event: AuditEvent) -> Row:
    """The columns of an audit event."""
    return {
        "id": event.id,
        "ts": event.ts,
        "actor": event.actor,
        "action": event.action,
        "target": event.target,
        "outcome": event.outcome,
        "reason": event.reason,
        "request_id": event.request_id,
        "details": event.details_json,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
        "key_id": event.key_id,
    }


def audit_from_row(row: Row) -> AuditEvent:
    """An audit event from its row."""
    return AuditEvent(
        id=row["id"],
        ts=row["ts"],
        actor=row["actor"],
        action=row["action"],
        target=row["target"],
        outcome=row["outcome"],
        reason=row["reason"],
        request_id=row["request_id"],
        details_json=row["details"],
        prev_hash=row["prev_hash"],
        hash=row["hash"],
        key_id=row.get("key_id") or "",
    )


def outbox_from_row(row: Row) -> OutboxMessage:
    """An outbox message from its row."""
    return OutboxMessage(
        id=row["id"],
        key=row["key"],
        kind=row["kind"],
        channel=row["channel"],
        payload=json.loads(row["payload"]),
        attempts=row["attempts"] or 0,
        next_attempt_at=row["next_attempt_at"] or 0,
        created_at=row["created_at"],
        sent_at=row["sent_at"],
        last_error=row["last_error"] or "",
        status=OutboxStatus(row["status"]),
        priority=Priority(int(row["priority"])),
        order_key=row["order_key"] or "",
        first_failed_at=row["first_failed_at"],
    )
