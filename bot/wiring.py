"""Composition root: Config → adapters → services → Slack app; the only module naming concrete adapters."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.clock import SystemClock
from bot.adapters.oidc import OidcClient
from bot.adapters.rancher import RancherClient
from bot.adapters.sealing import FernetSealer
from bot.adapters.slack_notifier import SlackNotifier, make_client
from bot.adapters.store import Store
from bot.config import Config
from bot.core.ports import Clock
from bot.scheduler import JobScheduler, Schedule
from bot.services.access import AccessService
from bot.services.audit import AuditLog
from bot.services.granting import GrantingService
from bot.services.jobs import Jobs, JobSettings, LeaderLease, default_owner_id
from bot.services.linking import LinkingService
from bot.services.notifications import Notifications
from bot.slack.app import build_app
from bot.slack.context import SlackDeps
from bot.slack.grant_blocks import RENDERER as GRANT_RENDERER
from bot.slack.verification import RequestGuard

log = logging.getLogger(__name__)


@dataclass
class Components:
    """Everything one running bot holds; built once per process (inside the event loop thread)."""

    config: Config
    clock: Clock
    store: Store
    sealer: FernetSealer
    audit: AuditLog
    notifications: Notifications
    slack_client: AsyncWebClient
    notifier: SlackNotifier
    deps: SlackDeps
    bolt: AsyncApp
    guard: RequestGuard
    closers: list[Any] = field(default_factory=list)
    role: str = "standby"  # "leader" when this process runs the scheduled jobs
    rancher: RancherClient | None = None
    granting: GrantingService | None = None
    scheduler: JobScheduler | None = None

    async def aclose(self) -> None:
        """Close clients and the database."""
        for closer in reversed(self.closers):
            try:
                await closer()
            except Exception:
                log.warning("error while closing %r", closer, exc_info=True)
        self.store.close()


def open_store(config: Config) -> Store:
    """Open the database and apply pending migrations."""
    store = Store(config.database)
    store.migrate()
    return store


def build(config: Config, *, clock: Clock | None = None) -> Components:
    """Wire the whole bot from a validated config (call from the event-loop thread)."""
    clock = clock or SystemClock()
    store = open_store(config)
    sealer = FernetSealer([k.get_secret_value() for k in config.security.token_encryption_keys])
    audit = AuditLog(store, clock)
    channels = config.slack.channels
    notifications = Notifications(
        store,
        clock,
        {
            "grants": channels.grants,
            "approvals": channels.approvals,
            "security": channels.security,
            "digest": channels.digest,
        },
    )
    slack_client = make_client(config.slack.bot_token.get_secret_value(), config.slack.api_url)
    notifier = SlackNotifier(slack_client)
    deps = SlackDeps(
        audit=audit,
        notifications=notifications,
        clock=clock,
        command=config.slack.command,
        admins=frozenset(config.slack.admins),
    )
    oidc, linking = build_linking(
        config, store=store, sealer=sealer, notifier=notifier, audit=audit, notifications=notifications, clock=clock
    )
    deps.linking = linking
    deps.extras.update(
        rancher_auth_provider=config.rancher.auth_provider,
        rancher_user_principal_template=config.rancher.user_principal_template,
        rancher_group_principal_template=config.rancher.group_principal_template,
    )
    rancher, granting = build_granting(
        config, store=store, audit=audit, notifications=notifications, clock=clock, linking=linking
    )
    deps.granting = granting
    deps.access = AccessService(rancher, config.rancher.grant_label)
    bolt = build_app(deps, slack_client, config.slack.signing_secret.get_secret_value())
    guard = RequestGuard(config.slack.signing_secret.get_secret_value(), audit, clock)
    components = Components(
        config=config,
        clock=clock,
        store=store,
        sealer=sealer,
        audit=audit,
        notifications=notifications,
        slack_client=slack_client,
        notifier=notifier,
        deps=deps,
        bolt=bolt,
        guard=guard,
    )
    components.closers.append(oidc.aclose)
    components.rancher, components.granting = rancher, granting
    components.closers.append(rancher.aclose)
    return components


def build_rancher(config: Config) -> RancherClient:
    """The Rancher v3 client from `rancher:` in the config."""
    rc = config.rancher
    return RancherClient(
        rc.url,
        rc.token.get_secret_value(),
        verify_tls=rc.verify_tls,
        ca_bundle=rc.ca_bundle,
        timeout=rc.timeout.total_seconds(),
        max_connections=rc.max_connections,
        cache_ttl=rc.cache_ttl.total_seconds(),
        page_size=rc.page_size,
        filter_chunk=rc.filter_chunk,
    )


def build_granting(
    config: Config,
    *,
    store: Store,
    audit: AuditLog,
    notifications: Notifications,
    clock: Clock,
    linking: LinkingService | None = None,
    rancher: RancherClient | None = None,
) -> tuple[RancherClient, GrantingService]:
    """The granting service (and its Rancher client); installs the offboarding hooks on the linking service."""
    rancher = rancher or build_rancher(config)
    granting = GrantingService(
        store=store,
        rancher=rancher,
        audit=audit,
        notifications=notifications,
        clock=clock,
        policy=config.policy.to_policy(),
        grant_label=config.rancher.grant_label,
        auth_provider=config.rancher.auth_provider,
        user_principal_template=config.rancher.user_principal_template,
        group_principal_template=config.rancher.group_principal_template,
        admins=frozenset(config.slack.admins),
        renderer=GRANT_RENDERER,
    )
    if linking is not None:

        async def on_offboard(slack_user: str, why: str) -> int:
            return await granting.revoke_all_for_user(slack_user, reason=why)

        linking.set_hooks(on_offboard=on_offboard, on_groups_changed=granting.revoke_for_removed_groups)
    return rancher, granting


def build_linking(
    config: Config,
    *,
    store: Store,
    sealer: FernetSealer,
    notifier: SlackNotifier,
    audit: AuditLog,
    notifications: Notifications,
    clock: Clock,
) -> tuple[OidcClient, LinkingService]:
    """The OIDC client and the linking service (the grants feature adds its hooks with `linking.set_hooks`)."""
    oidc_config = config.oidc
    oidc = OidcClient(
        issuer=oidc_config.issuer,
        client_id=oidc_config.client_id,
        client_secret=oidc_config.client_secret.get_secret_value(),
        redirect_uri=config.redirect_uri,
        scopes=oidc_config.scopes,
        allowed_algorithms=oidc_config.allowed_algorithms,
        groups_claim=oidc_config.groups_claim,
        timeout=oidc_config.timeout.total_seconds(),
    )
    linking = LinkingService(
        store=store,
        idp=oidc,
        sealer=sealer,
        notifier=notifier,
        audit=audit,
        notifications=notifications,
        clock=clock,
        public_url=config.public_url,
        login_ttl=int(oidc_config.login_ttl.total_seconds()),
        refresh_interval=int(oidc_config.refresh_interval.total_seconds()),
        require_email_match=oidc_config.require_email_match,
        allowed_email_domains=oidc_config.allowed_email_domains,
        command=config.slack.command,
    )
    return oidc, linking


def build_scheduler(components: Components) -> JobScheduler:
    """The scheduled jobs, their leader lease and the APScheduler that runs them (started by the server)."""
    config, sc = components.config, components.config.schedule
    rancher = components.rancher or build_rancher(config)
    if components.rancher is None:
        components.rancher = rancher
        components.closers.append(rancher.aclose)
    granting = components.granting
    if granting is None:
        rancher, granting = build_granting(
            config,
            store=components.store,
            audit=components.audit,
            notifications=components.notifications,
            clock=components.clock,
            rancher=rancher,
        )
    linking = components.deps.linking
    jobs = Jobs(
        store=components.store,
        rancher=rancher,
        notifier=components.notifier,
        notifications=components.notifications,
        audit=components.audit,
        granting=granting,
        clock=components.clock,
        settings=JobSettings(
            grant_label=config.rancher.grant_label,
            revoke_concurrency=sc.revoke_concurrency,
            overdue_alert_after=int(sc.overdue_alert_after.total_seconds()),
            expiry_warning=int(sc.expiry_warning.total_seconds()),
            repair_drift=sc.repair_drift,
            report_untagged=sc.report_untagged,
            digest_day=sc.digest.day,
            digest_time=sc.digest.time,
            digest_timezone=sc.digest.timezone,
        ),
        refresh_all=linking.refresh_all if linking is not None else None,
    )
    ttl = int(sc.lease_ttl.total_seconds())
    lease = LeaderLease(components.store, default_owner_id(), ttl, clock=components.clock)
    schedule = Schedule(
        sweep_interval=sc.sweep_interval.total_seconds(),
        reconcile_interval=sc.reconcile_interval.total_seconds(),
        outbox_interval=sc.outbox_interval.total_seconds(),
        # each link carries its own due time (oidc.refresh_interval, or a retry backoff); look often
        refresh_interval=min(config.oidc.refresh_interval.total_seconds(), 60.0),
        lease_ttl=float(ttl),
        digest_day=sc.digest.day,
        digest_time=sc.digest.time,
        digest_timezone=sc.digest.timezone,
    )

    def on_role(role: str) -> None:
        components.role = role

    components.scheduler = JobScheduler(jobs, lease, schedule, components.clock, on_role=on_role)
    return components.scheduler
