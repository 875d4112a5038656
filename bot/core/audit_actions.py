"""The audit log's action names and the details keys each action carries (the digest counts by these).

Every audit row has the columns ts, actor, action, target, outcome, reason, request_id, details (a JSON object).
Use these constants for `action`; never spell an action name inline.

Conventions for the columns:
- `actor`: who did it — a Slack user id, `system` for jobs, `rancher` / `idp` when an outside system reported it.
  For GRANT_REQUESTED the actor is the requester (the digest's "top requesters" count actors of that action).
- `target`: what it was done to — for grant and drift actions the grant's target as people read it
  (`cluster` or `cluster/project`, names), which the digest's "top targets" counts; for link/token actions the
  Slack user id of the link.
- `outcome`: `ok`, `denied`, `failed` or `refused` (free text; the digest does not read it).

Details keys (all optional for readers; writers should include them):
- link.*: {"slack_user", "issuer", "subject", "email", "previous_subject" (relinked only)}
- token.*: {"slack_user", "error" (failures), "failures" (count so far)}
- user.deactivated: {"slack_user", "subject", "why"}
- link.relink_required: {"slack_user", "subject", "why", "relink_by"}; link.relink_expired: {"slack_user", "subject"}
- groups.unknown: {"slack_user", "why", "at_link" (bool), "kept" (groups kept on refresh)}
- login.* / slack.request_rejected: {"why", "ip" (if known)}
- grant.* (every grant action): {"grant_id", "slack_user", "role", "target", "duration_s", "rule",
  "break_glass" (bool), "self_service" (bool)}; in addition:
  - grant.approved: one event per approver's approval, plus {"approver", "approvals" (count so far),
    "approvals_required", "final" (bool: this approval completed the request)}
  - grant.denied: {"approver", "why"} (an approver's Deny, with their reason)
  - grant.refused: {"why"} (the policy refused the request; events before issue 12 logged these as grant.denied)
  - grant.withdrawn: {"why"} (an undecided request closed: by its requester, an admin, offboarding, lost groups)
  - grant.active: {"binding_id", "expires_at"}
  - grant.extended: {"extra_s", "extensions"}, and `duration_s` is the new total
  - grant.revoked / grant.expired: {"held_s" (seconds the grant was active)}
  - grant.failed: {"why"}
  - grant.revocation_overdue / grant.revocation_recovered: {"overdue_s"}
- drift.*: {"grant_id" (when known), "binding_id", "role", "target", "why"}
- digest.posted: {"period_start", "period_end", "events", "head_id", "head_hash"}
- audit.rekeyed: {"key_id", "previous_key_id" (empty when the chain was not keyed before), "previous_head_id"}
- audit.anchored: {"head_id", "head_hash"} (the head posted to the security channel, outside the database)
- config.loaded: {"rules", "path"}
- review.*: {"campaign_id", "campaign"}; in addition:
  - review.started: {"items", "excluded", "roles", "targets", "subjects", "due_at", "on_timeout", "template"}
  - review.decided: {"item_id", "binding_id", "role", "target", "holder", "verdict", "person", "self_attested",
    "bulk" (bool)}; `reason` the reviewer's reason
  - review.closed: {"timed_out" (items decided by on_timeout), "on_timeout", "outcome" (counts)}
  - review.applying / review.restoring: {"item_id", "verdict", "binding" (the full binding JSON, as read just
    before the change)}; review.applied / review.skipped / review.restored / review.failed: {"item_id", "verdict",
    "binding_id", "why" (skipped, failed), "restored_id" (restored)}
- outbox.parked / outbox.retried / outbox.dropped: {"message_id", "key", "kind", "channel", "attempts",
  "last_error"}; `target` is `outbox:<id>`, `reason` why Slack refused it (parked)
"""

from __future__ import annotations

from typing import Final

# --- identity links and tokens ------------------------------------------------------------------------
LINK_CREATED: Final = "link.created"
LINK_REPLACED: Final = "link.relinked"
LINK_REMOVED: Final = "link.unlinked"
TOKEN_REFRESHED: Final = "token.refreshed"  # noqa: S105 - an action name, not a secret
TOKEN_REFRESH_FAILED: Final = "token.refresh_failed"  # noqa: S105 - an action name, not a secret
TOKEN_REUSE_DETECTED: Final = "token.reuse_detected"  # noqa: S105 - an action name, not a secret
USER_DEACTIVATED: Final = "user.deactivated"
LINK_RELINK_REQUIRED: Final = "link.relink_required"
LINK_RELINK_EXPIRED: Final = "link.relink_expired"
GROUPS_UNKNOWN: Final = "groups.unknown"
ID_TOKEN_REJECTED: Final = "login.id_token_rejected"  # noqa: S105 - an action name, not a secret
LOGIN_STATE_MISMATCH: Final = "login.state_mismatch"
LOGIN_REFUSED: Final = "login.refused"  # IdP error=, email/domain guard, code exchange failed
SLACK_REQUEST_REJECTED: Final = "slack.request_rejected"

# --- grants -------------------------------------------------------------------------------------------
GRANT_REQUESTED: Final = "grant.requested"
GRANT_APPROVED: Final = "grant.approved"
GRANT_DENIED: Final = "grant.denied"  # by an approver
GRANT_REFUSED: Final = "grant.refused"  # by the policy, when asked
GRANT_WITHDRAWN: Final = "grant.withdrawn"  # an undecided request closed by its requester, an admin or offboarding
GRANT_REQUEST_EXPIRED: Final = "grant.request_expired"
GRANT_ACTIVATING: Final = "grant.activating"
GRANT_ACTIVE: Final = "grant.active"
GRANT_FAILED: Final = "grant.failed"
GRANT_EXTENDED: Final = "grant.extended"
GRANT_REVOKED: Final = "grant.revoked"
GRANT_EXPIRED: Final = "grant.expired"
GRANT_REVOCATION_OVERDUE: Final = "grant.revocation_overdue"
GRANT_REVOCATION_RECOVERED: Final = "grant.revocation_recovered"

# --- reconciliation -----------------------------------------------------------------------------------
DRIFT_MISSING_BINDING: Final = "drift.missing_binding"
DRIFT_REPAIRED: Final = "drift.repaired"
DRIFT_ORPHAN_DELETED: Final = "drift.orphan_deleted"
DRIFT_UNTAGGED: Final = "drift.untagged"

# --- access reviews ---------------------------------------------------------------------------------
REVIEW_STARTED: Final = "review.started"
REVIEW_DECIDED: Final = "review.decided"
REVIEW_CLOSED: Final = "review.closed"
REVIEW_APPLYING: Final = "review.applying"  # intent, recorded before the binding is deleted
REVIEW_APPLIED: Final = "review.applied"
REVIEW_SKIPPED: Final = "review.skipped"  # changed in Rancher since the campaign's read, or gone
REVIEW_FAILED: Final = "review.failed"  # Rancher refused; the decision stays, to be applied again
REVIEW_RESTORING: Final = "review.restoring"  # intent, recorded before the binding is recreated
REVIEW_RESTORED: Final = "review.restored"

# --- operations ---------------------------------------------------------------------------------------
DIGEST_POSTED: Final = "digest.posted"
CONFIG_LOADED: Final = "config.loaded"
AUDIT_REKEYED: Final = "audit.rekeyed"
AUDIT_ANCHORED: Final = "audit.anchored"
OUTBOX_PARKED: Final = "outbox.parked"
OUTBOX_RETRIED: Final = "outbox.retried"
OUTBOX_DROPPED: Final = "outbox.dropped"

ALL: Final[tuple[str, ...]] = (
    LINK_CREATED,
    LINK_REPLACED,
    LINK_REMOVED,
    TOKEN_REFRESHED,
    TOKEN_REFRESH_FAILED,
    TOKEN_REUSE_DETECTED,
    USER_DEACTIVATED,
    LINK_RELINK_REQUIRED,
    LINK_RELINK_EXPIRED,
    GROUPS_UNKNOWN,
    ID_TOKEN_REJECTED,
    LOGIN_STATE_MISMATCH,
    LOGIN_REFUSED,
    SLACK_REQUEST_REJECTED,
    GRANT_REQUESTED,
    GRANT_APPROVED,
    GRANT_DENIED,
    GRANT_REFUSED,
    GRANT_WITHDRAWN,
    GRANT_REQUEST_EXPIRED,
    GRANT_ACTIVATING,
    GRANT_ACTIVE,
    GRANT_FAILED,
    GRANT_EXTENDED,
    GRANT_REVOKED,
    GRANT_EXPIRED,
    GRANT_REVOCATION_OVERDUE,
    GRANT_REVOCATION_RECOVERED,
    DRIFT_MISSING_BINDING,
    DRIFT_REPAIRED,
    DRIFT_ORPHAN_DELETED,
    DRIFT_UNTAGGED,
    REVIEW_STARTED,
    REVIEW_DECIDED,
    REVIEW_CLOSED,
    REVIEW_APPLYING,
    REVIEW_APPLIED,
    REVIEW_SKIPPED,
    REVIEW_FAILED,
    REVIEW_RESTORING,
    REVIEW_RESTORED,
    DIGEST_POSTED,
    CONFIG_LOADED,
    AUDIT_REKEYED,
    AUDIT_ANCHORED,
    OUTBOX_PARKED,
    OUTBOX_RETRIED,
    OUTBOX_DROPPED,
)
