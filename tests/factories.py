"""Test data through the storage ports (never raw rows), and the service graph tests build around real adapters."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.slack_notifier import SlackNotifier
from bot.core.model import Grant, Identity, LinkRecord, LinkStatus, OutboxMessage, OutboxStatus, Priority
from bot.core.policy import Policy
from bot.core.ports import Clock, Notifier, RancherApi
from bot.core.principals import PrincipalMapping
from bot.core.storage import LinkStore, Storage
from bot.services.audit import AuditLog
from bot.services.grants import GrantServices
from bot.services.outbox import Outbox, OutboxSettings
from bot.slack.notices import SlackNotices

TEAM = "T0TEST0001"
ISSUER = "https://idp.example"
LABEL = "accessbot.io/grant"


def link(
    links: LinkStore,
    slack_user: str,
    subject: str,
    groups: list[str] | tuple[str, ...],
    *,
    now: int,
    issuer: str = ISSUER,
    email: str | None = None,
    name: str | None = None,
    status: LinkStatus = LinkStatus.ACTIVE,
    sealed_refresh_token: str | None = None,
    next_refresh_at: int | None = None,
) -> Identity:
    """Store a link as a completed sign-in would, and return its identity."""
    identity = Identity(
        slack_user=slack_user,
        team_id=TEAM,
        issuer=issuer,
        subject=subject,
        email=email if email is not None else f"{slack_user.lower()}@example.com",
        name=name if name is not None else slack_user,
        groups=tuple(groups),
        linked_at=now,
        refreshed_at=now,
        status=status,
    )
    links.save(LinkRecord(identity, sealed_refresh_token=sealed_refresh_token, next_refresh_at=next_refresh_at))
    return identity


def grant(storage: Storage, value: Grant, *, now: int) -> Grant:
    """Store a grant as it stands (any state), with a fresh id when `value.id` is empty."""
    if not value.id:
        from dataclasses import replace

        value = replace(value, id=storage.grants.new_id())
    storage.grants.insert(value, now)
    stored = storage.grants.get(value.id)
    assert stored is not None
    return stored


@dataclass(frozen=True)
class GrantWorld:
    """The grant use cases wired to real adapters, and the parts tests read back."""

    grants: GrantServices
    audit: AuditLog
    outbox: Outbox


def build_grant_world(
    storage: Storage,
    *,
    rancher: RancherApi,
    clock: Clock,
    policy: Policy,
    channels: Mapping[str, str | None],
    notifier: Notifier | None = None,
    admins: frozenset[str] = frozenset(),
    mapping: PrincipalMapping | None = None,
    outbox_settings: OutboxSettings | None = None,
) -> GrantWorld:
    """The audit log, the outbox (Slack notices, delivered to `notifier`) and every grant use case."""
    audit = AuditLog(tx=storage.tx, store=storage.audit, clock=clock)
    outbox = Outbox(
        store=storage.outbox,
        tx=storage.tx,
        renderer=SlackNotices("/access"),
        notifier=notifier or SlackNotifier(AsyncWebClient(token="xoxb-unused", base_url="http://127.0.0.1:9/api/")),
        clock=clock,
        audit=audit,
        channels=channels,
        settings=outbox_settings or OutboxSettings(lane_pace=0.0, rate=1000.0),
        rng=random.Random(7),
    )
    grants = GrantServices.create(
        tx=storage.tx,
        grants=storage.grants,
        extensions=storage.extensions,
        links=storage.links,
        rancher=rancher,
        audit=audit,
        outbox=outbox,
        clock=clock,
        policy=policy,
        principals=mapping or PrincipalMapping(),
        grant_label=LABEL,
        admins=admins,
    )
    return GrantWorld(grants, audit, outbox)


def queue(
    storage: Storage,
    kind: str,
    channel: str,
    key: str,
    text: str,
    *,
    now: int,
    ref: str = "",
    priority: Priority | None = None,
) -> None:
    """Queue an already rendered message as the outbox service would: edits are BULK, `ref` is the order key."""
    payload: dict[str, object] = {"text": text, "blocks": []}
    if ref:
        payload["ref"] = ref
    if priority is None:
        priority = Priority.BULK if kind == "update" else Priority.NORMAL
    assert storage.outbox.enqueue(
        key=key, kind=kind, channel=channel, payload=payload, now=now, priority=priority, order_key=ref
    )


def queue_file(
    storage: Storage, channel: str, key: str, filename: str, content: str, comment: str, *, now: int
) -> None:
    """Queue a file upload, as the outbox service would."""
    payload = {"filename": filename, "content": content, "comment": comment}
    assert storage.outbox.enqueue(key=key, kind="file", channel=channel, payload=payload, now=now)


def _undelivered(storage: Storage, channel: str) -> list[OutboxMessage]:
    return [m for m in storage.outbox.listing((OutboxStatus.PENDING,), limit=100_000) if m.channel == channel]


def queued_texts(storage: Storage, channel: str) -> list[str]:
    """Texts of the undelivered messages for a channel or DM user, oldest first."""
    return [str(m.payload.get("text", "")) for m in _undelivered(storage, channel)]


def queued_keys(storage: Storage, channel: str, prefix: str = "") -> list[str]:
    """Idempotency keys of the undelivered messages for a channel starting with `prefix`, oldest first."""
    return [m.key for m in _undelivered(storage, channel) if m.key.startswith(prefix)]
