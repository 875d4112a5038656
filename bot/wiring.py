"""Composition root: Config → adapters → services → Slack app and job bodies, in one pass; the only module naming
concrete adapters. Each service receives its slice of the configuration as plain values, never the Config."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.clock import SystemClock
from bot.adapters.oidc import OidcClient
from bot.adapters.rancher import RancherClient
from bot.adapters.sealing import FernetSealer
from bot.adapters.slack_notifier import SlackNotifier, make_client
from bot.adapters.store import open_storage
from bot.config import Config
from bot.core.ports import Clock
from bot.core.principals import PrincipalMapping
from bot.core.storage import Storage
from bot.scheduler import JobBodies, JobScheduler, Schedule
from bot.services.access import AccessService
from bot.services.audit import AuditLog
from bot.services.grants import GrantServices
from bot.services.identity_sync import IdentitySync, Offboarding
from bot.services.jobs.digest import DigestSettings, WeeklyDigest
from bot.services.jobs.lease import LeaderLease, default_owner_id
from bot.services.jobs.reconcile import Reconciler, ReconcileSettings
from bot.services.jobs.sweep import RevocationSweep, SweepSettings
from bot.services.linking import LinkingService
from bot.services.outbox import Outbox
from bot.services.refusals import Refusals
from bot.slack.app import build_app
from bot.slack.context import SlackDeps
from bot.slack.notices import SlackNotices
from bot.slack.verification import RequestGuard

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Bot:
    """Everything one running bot holds, built once per process (inside the event-loop thread)."""

    config: Config
    clock: Clock
    storage: Storage
    audit: AuditLog
    outbox: Outbox
    rancher: RancherClient
    oidc: OidcClient
    slack_client: AsyncWebClient
    linking: LinkingService
    identity_sync: IdentitySync
    grants: GrantServices
    access: AccessService
    deps: SlackDeps
    bolt: AsyncApp
    guard: RequestGuard
    scheduler: JobScheduler

    @property
    def role(self) -> str:
        """`leader`, `standby` or `off`: whether this process runs the scheduled jobs."""
        return self.scheduler.role

    @property
    def replica(self) -> str:
        """This process's lease owner id (host, pid, random suffix)."""
        return self.scheduler.lease.owner_id

    def leader(self) -> str | None:
        """The replica holding the jobs lease now, if any."""
        return self.scheduler.lease.holder(self.clock.now())

    async def aclose(self) -> None:
        """Close the HTTP clients and the database."""
        for closer in (self.oidc.aclose, self.rancher.aclose):
            try:
                await closer()
            except Exception:
                log.warning("error while closing %r", closer, exc_info=True)
        self.storage.database.close()


def open_store(config: Config) -> Storage:
    """Every storage port on the configured database, migrated to the current schema."""
    return open_storage(config.database.reveal())


def principal_mapping(config: Config) -> PrincipalMapping:
    """How identities map to Rancher principals, from `rancher.*`."""
    rc = config.rancher
    return PrincipalMapping(rc.auth_provider, rc.user_principal_template, rc.group_principal_template)


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


def build_oidc(config: Config) -> OidcClient:
    """The OpenID Connect client from `oidc:` in the config."""
    oc = config.oidc
    return OidcClient(
        issuer=oc.issuer,
        client_id=oc.client_id,
        client_secret=oc.client_secret.get_secret_value(),
        redirect_uri=config.redirect_uri,
        scopes=oc.scopes,
        allowed_algorithms=oc.allowed_algorithms,
        groups_claim=oc.groups_claim,
        timeout=oc.timeout.total_seconds(),
    )


def build(config: Config, *, clock: Clock | None = None, storage: Storage | None = None) -> Bot:
    """Wire the whole bot from a validated config (call from the event-loop thread)."""
    clock = clock or SystemClock()
    storage = storage or open_store(config)
    slack_config, sc, oc = config.slack, config.schedule, config.oidc
    sealer = FernetSealer([k.get_secret_value() for k in config.security.token_encryption_keys])
    slack_client = make_client(slack_config.bot_token.get_secret_value(), slack_config.api_url)
    notifier = SlackNotifier(slack_client)
    rancher = build_rancher(config)
    oidc = build_oidc(config)
    mapping = principal_mapping(config)
    tx = storage.tx
    audit = AuditLog(tx=tx, store=storage.audit, clock=clock)
    channels = slack_config.channels
    outbox = Outbox(
        store=storage.outbox,
        tx=tx,
        renderer=SlackNotices(slack_config.command),
        notifier=notifier,
        clock=clock,
        channels={
            "grants": channels.grants,
            "approvals": channels.approvals,
            "security": channels.security,
            "digest": channels.digest,
        },
    )
    grants = GrantServices.create(
        tx=tx,
        grants=storage.grants,
        extensions=storage.extensions,
        links=storage.links,
        rancher=rancher,
        audit=audit,
        outbox=outbox,
        clock=clock,
        policy=config.policy.to_policy(),
        principals=mapping,
        grant_label=config.rancher.grant_label,
        admins=frozenset(slack_config.admins),
    )
    refusals = Refusals(tx=tx, audit=audit, outbox=outbox, clock=clock)
    offboarding = Offboarding(grants.lifecycle)
    refresh_interval = int(oc.refresh_interval.total_seconds())
    linking = LinkingService(
        tx=tx,
        links=storage.links,
        attempts=storage.attempts,
        idp=oidc,
        sealer=sealer,
        notifier=notifier,
        audit=audit,
        outbox=outbox,
        refusals=refusals,
        offboarding=offboarding,
        clock=clock,
        public_url=config.public_url,
        login_ttl=int(oc.login_ttl.total_seconds()),
        refresh_interval=refresh_interval,
        require_email_match=oc.require_email_match,
        allowed_email_domains=oc.allowed_email_domains,
    )
    identity_sync = IdentitySync(
        tx=tx,
        links=storage.links,
        leases=storage.leases,
        idp=oidc,
        sealer=sealer,
        audit=audit,
        outbox=outbox,
        refusals=refusals,
        offboarding=offboarding,
        clock=clock,
        refresh_interval=refresh_interval,
    )
    access = AccessService(
        rancher=rancher,
        grant_label=config.rancher.grant_label,
        links=storage.links,
        grants=storage.grants,
        principals=mapping,
        clock=clock,
    )
    deps = SlackDeps(
        linking=linking, access=access, grants=grants, principals=mapping, clock=clock, command=slack_config.command
    )
    sweep = RevocationSweep(
        tx=tx,
        grants=storage.grants,
        lifecycle=grants.lifecycle,
        audit=audit,
        outbox=outbox,
        settings=SweepSettings(
            revoke_concurrency=sc.revoke_concurrency, overdue_alert_after=int(sc.overdue_alert_after.total_seconds())
        ),
    )
    reconciler = Reconciler(
        tx=tx,
        grants=storage.grants,
        marks=storage.marks,
        rancher=rancher,
        directory=grants.directory,
        bindings=grants.bindings,
        lifecycle=grants.lifecycle,
        sweep=sweep,
        audit=audit,
        outbox=outbox,
        settings=ReconcileSettings(
            grant_label=config.rancher.grant_label,
            repair_drift=sc.repair_drift,
            report_untagged=sc.report_untagged,
            concurrency=sc.revoke_concurrency,
        ),
    )
    digest = WeeklyDigest(
        tx=tx,
        grants=storage.grants,
        marks=storage.marks,
        audit=audit,
        outbox=outbox,
        open_reader=lambda: open_storage(config.database.reveal(), migrate=False),
        clock=clock,
        settings=DigestSettings(sc.digest.day, sc.digest.time, sc.digest.timezone),
    )
    expiry_warning = int(sc.expiry_warning.total_seconds())

    async def warn_expiring(now: int) -> int:
        return await grants.lifecycle.warn_expiring(now, expiry_warning)

    bodies = JobBodies(
        expire_grants=sweep.expire_grants,
        expire_requests=grants.approvals.expire_requests,
        warn_expiring=warn_expiring,
        reconcile=reconciler.reconcile,
        deliver_outbox=outbox.deliver,
        refresh_identities=identity_sync.refresh_all,
        post_digest=digest.post,
        resume_revocations=sweep.resume_claimed,
    )
    ttl = int(sc.lease_ttl.total_seconds())
    schedule = Schedule(
        sweep_interval=sc.sweep_interval.total_seconds(),
        reconcile_interval=sc.reconcile_interval.total_seconds(),
        outbox_interval=sc.outbox_interval.total_seconds(),
        # each link carries its own due time (oidc.refresh_interval, or a retry backoff); look often
        refresh_interval=min(oc.refresh_interval.total_seconds(), 60.0),
        lease_ttl=float(ttl),
        digest_day=sc.digest.day,
        digest_time=sc.digest.time,
        digest_timezone=sc.digest.timezone,
    )
    scheduler = JobScheduler(bodies, LeaderLease(storage.leases, default_owner_id(), ttl, clock=clock), schedule, clock)
    return Bot(
        config=config,
        clock=clock,
        storage=storage,
        audit=audit,
        outbox=outbox,
        rancher=rancher,
        oidc=oidc,
        slack_client=slack_client,
        linking=linking,
        identity_sync=identity_sync,
        grants=grants,
        access=access,
        deps=deps,
        bolt=build_app(deps, slack_client, slack_config.signing_secret.get_secret_value()),
        guard=RequestGuard(slack_config.signing_secret.get_secret_value(), audit, clock),
        scheduler=scheduler,
    )


@asynccontextmanager
async def running(config: Config, *, clock: Clock | None = None) -> AsyncIterator[Bot]:
    """The wired bot for a one-off task (CLI commands): built, yielded, closed."""
    bot = build(config, clock=clock)
    try:
        yield bot
    finally:
        await bot.aclose()
