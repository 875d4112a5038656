"""Composition root: Config → adapters → services → Slack app and job bodies, in one pass; the only module naming
concrete adapters. Each service receives its slice of the configuration as plain values, never the Config."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.clock import SystemClock
from bot.adapters.group_sources import GoogleDirectory, GraphGroups
from bot.adapters.oidc import ClaimNames, OidcClient
from bot.adapters.oidc.validation import issuer_forms
from bot.adapters.rancher import RancherClient
from bot.adapters.sealing import FernetSealer, audit_key_material
from bot.adapters.slack_notifier import SlackNotifier, make_client
from bot.adapters.store import open_storage
from bot.config import Config
from bot.core.audit_chain import ChainKey
from bot.core.ports import AccountDirectory, Clock, GroupSource
from bot.core.principals import PrincipalMapping
from bot.core.reviews import Subjects, Verdict
from bot.core.storage import Storage
from bot.scheduler import JobBodies, JobScheduler, Schedule
from bot.services.access import AccessService
from bot.services.audit import AuditLog
from bot.services.grants import GrantServices, LifecycleTiming
from bot.services.group_sources import ClaimGroups, NoGroups, OverageGroups
from bot.services.identity_sync import IdentitySync
from bot.services.jobs.activations import ActivationRetries
from bot.services.jobs.anchor import DailyAnchor
from bot.services.jobs.digest import DigestSettings, WeeklyDigest
from bot.services.jobs.lease import LeaderLease, default_owner_id
from bot.services.jobs.reconcile import Reconciler, ReconcileSettings
from bot.services.jobs.sweep import RevocationSweep, SweepSettings
from bot.services.linking import LinkingService
from bot.services.offboarding import LinkEnding, Offboarding
from bot.services.outbox import Outbox, OutboxSettings
from bot.services.refusals import Refusals, RefusalTally
from bot.services.reviews import ReviewServices, ReviewSettings, ScheduledReview
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
    groups: GroupSources
    slack_client: AsyncWebClient
    linking: LinkingService
    identity_sync: IdentitySync
    grants: GrantServices
    reviews: ReviewServices
    access: AccessService
    deps: SlackDeps
    bolt: AsyncApp
    guard: RequestGuard
    scheduler: JobScheduler
    tallies: tuple[RefusalTally, ...]

    @property
    def role(self) -> str:
        """`leader`, `standby` or `off`: whether this process runs the scheduled jobs."""
        return self.scheduler.role

    def flush_tallies(self, *, before: int | None = None) -> int:
        """Audit what the refusal tallies hold for finished windows (every window when `before` is None)."""
        return sum(tally.flush(before=before) for tally in self.tallies)

    @property
    def replica(self) -> str:
        """This process's lease owner id (host, pid, random suffix)."""
        return self.scheduler.lease.owner_id

    def leader(self) -> str | None:
        """The replica holding the jobs lease now, if any."""
        return self.scheduler.lease.holder(self.clock.now())

    async def aclose(self) -> None:
        """Audit the refusals still tallied, then close the HTTP clients and the database."""
        self.flush_tallies()
        for closer in (self.oidc.aclose, self.rancher.aclose, *self.groups.closers):
            try:
                await closer()
            except Exception:
                log.warning("error while closing %r", closer, exc_info=True)
        self.storage.database.close()


def open_store(config: Config) -> Storage:
    """Every storage port on the configured database, migrated to the current schema."""
    return open_storage(config.database.reveal())


def audit_keys(config: Config) -> tuple[ChainKey, ...]:
    """The audit chain's keys, the first signing: `security.audit_keys`, else derived from the token keys."""
    configured = config.security.audit_keys or config.security.token_encryption_keys
    return tuple(ChainKey(audit_key_material(key.get_secret_value())) for key in configured)


def audit_log(config: Config, storage: Storage, clock: Clock) -> AuditLog:
    """The audit log of a database, chained with this deployment's keys."""
    return AuditLog(tx=storage.tx, store=storage.audit, clock=clock, keys=audit_keys(config))


def principal_mapping(config: Config) -> PrincipalMapping:
    """How identities map to Rancher principals, from `rancher.*` (group_format full_path splits paths)."""
    rc = config.rancher
    return PrincipalMapping(
        rc.auth_provider,
        rc.user_principal_template,
        rc.group_principal_template,
        full_group_paths=rc.group_format == "full_path",
    )


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
    """The OpenID Connect client from `oidc:` (its preset filled in) and `rancher.user_principal_claim`."""
    oc = config.oidc
    return OidcClient(
        issuer=oc.issuer,
        client_id=oc.client_id,
        client_secret=oc.client_secret.get_secret_value(),
        redirect_uri=config.redirect_uri,
        scopes=oc.scopes,
        wanted_scopes=oc.preset.scopes,
        extra_auth_params=oc.effective_auth_params,
        allowed_algorithms=oc.allowed_algorithms,
        claim_names=ClaimNames(
            groups=oc.effective_groups_claim,
            groups_from="userinfo" if oc.effective_group_source == "userinfo" else "id_token",
            email=oc.effective_email_claim,
            principal=config.rancher.user_principal_claim,
        ),
        issuer_aliases=tuple(issuer_forms(oc.issuer, oc.issuer_forms == "scheme_optional")),
        timeout=oc.timeout.total_seconds(),
    )


@dataclass(frozen=True)
class GroupSources:
    """The configured group source, the directory that can confirm accounts, and the clients to close."""

    source: GroupSource
    directory: AccountDirectory | None = None
    graph: GraphGroups | None = None
    google: GoogleDirectory | None = None

    @property
    def closers(self) -> tuple[Callable[[], Awaitable[None]], ...]:
        """The aclose() of each directory client."""
        return tuple(c.aclose for c in (self.graph, self.google) if c is not None)


def build_group_sources(config: Config, oidc: OidcClient) -> GroupSources:
    """`oidc.group_source` (after the preset): claims, Microsoft Graph (overage or always), or Google Directory."""
    oc = config.oidc
    timeout = oc.timeout.total_seconds()
    claims = ClaimGroups(oc.effective_group_format)
    match oc.effective_group_source:
        case "graph":
            client_id, secret = oidc.client_credentials()
            graph = GraphGroups(
                url=oc.graph.url,
                token_endpoint=oidc.token_endpoint,
                client_id=oc.graph.client_id or client_id,
                client_secret=oc.graph.client_secret.get_secret_value() if oc.graph.client_secret else secret,
                timeout=timeout,
            )
            source: GroupSource = graph if oc.graph.mode == "always" else OverageGroups(claims, graph)
            return GroupSources(source, graph=graph)
        case "google_directory":
            gd = oc.google_directory
            assert gd is not None  # OidcConfig refuses google_directory without it
            google = GoogleDirectory(
                credentials_file=gd.credentials_file, admin_email=gd.admin_email, url=gd.url, timeout=timeout
            )
            return GroupSources(google, directory=google, google=google)
        case "none":
            return GroupSources(NoGroups())
        case _:
            return GroupSources(claims)


def review_settings(config: Config) -> ReviewSettings:
    """`review:` (and the grant label) as the review services' plain values."""
    rc = config.review
    return ReviewSettings(
        grant_label=config.rancher.grant_label,
        reviewer_groups=rc.reviewer_groups,
        self_attestation=rc.self_attestation,
        auto_apply=rc.auto_apply,
        due_s=int(rc.due.total_seconds()),
        on_timeout=rc.on_timeout,
        remind_before_s=tuple(int(r.total_seconds()) for r in rc.remind_before),
        max_items=rc.max_items,
    )


def scheduled_reviews(config: Config) -> tuple[ScheduledReview, ...]:
    """`schedule.reviews` as the review job's plain values."""
    return tuple(
        ScheduledReview(
            name=r.name,
            every_s=int(r.every.total_seconds()),
            roles=r.roles,
            targets=r.targets,
            subjects=Subjects(r.subjects),
            due_s=int(r.due.total_seconds()) if r.due is not None else None,
            on_timeout=Verdict(r.on_timeout) if r.on_timeout is not None else None,
        )
        for r in config.schedule.reviews
    )


def response_origins(api_url: str) -> tuple[str, ...]:
    """Where a Slack response_url may point: Slack's hooks host, and the Web API's own host (GovSlack, tests)."""
    parts = urlsplit(api_url)
    return ("https://hooks.slack.com", f"{parts.scheme}://{parts.netloc}")


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
    group_sources = build_group_sources(config, oidc)
    mapping = principal_mapping(config)
    tx = storage.tx
    audit = audit_log(config, storage, clock)
    channels = slack_config.channels
    outbox = Outbox(
        store=storage.outbox,
        tx=tx,
        renderer=SlackNotices(slack_config.command),
        notifier=notifier,
        clock=clock,
        audit=audit,
        # a run with a backlog ends before the next one is due (APScheduler would skip that one with a warning)
        settings=OutboxSettings(run_budget=max(1.0, 0.8 * sc.outbox_interval.total_seconds())),
        channels={
            "grants": channels.grants,
            "approvals": channels.approvals,
            "security": channels.security,
            "digest": channels.digest,
            "reviews": channels.reviews,
        },
    )
    policy = config.policy.to_policy()
    grants = GrantServices.create(
        tx=tx,
        grants=storage.grants,
        extensions=storage.extensions,
        links=storage.links,
        rancher=rancher,
        audit=audit,
        outbox=outbox,
        clock=clock,
        policy=policy,
        principals=mapping,
        grant_label=config.rancher.grant_label,
        admins=frozenset(slack_config.admins),
        timing=LifecycleTiming(activation_timeout=int(sc.activation_timeout.total_seconds())),
        approver_usergroups=slack_config.approver_usergroups,
    )
    reviews = ReviewServices.create(
        tx=tx,
        reviews=storage.reviews,
        samples=storage.standing,
        links=storage.links,
        marks=storage.marks,
        rancher=rancher,
        audit=audit,
        outbox=outbox,
        clock=clock,
        policy=policy,
        mapping=mapping,
        governed_roles=grants.directory.governed_roles,
        admins=frozenset(slack_config.admins),
        settings=review_settings(config),
        scheduled=scheduled_reviews(config),
    )
    refusals = Refusals(tx=tx, audit=audit, outbox=outbox, clock=clock, tally=RefusalTally(audit, clock, "oauth"))
    slack_tally = RefusalTally(audit, clock, "slack")
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
        email_verified=oc.effective_email_verified,
        require_refresh_token=oc.require_refresh_token,
        group_source=group_sources.source,
        principal_claim=config.rancher.user_principal_claim,
    )
    ending = LinkEnding(
        tx=tx,
        links=storage.links,
        audit=audit,
        outbox=outbox,
        offboarding=offboarding,
        clock=clock,
        relink_grace=int(oc.relink_grace.total_seconds()),
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
        group_source=group_sources.source,
        directory=group_sources.directory,
        ending=ending,
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
        linking=linking,
        access=access,
        grants=grants,
        reviews=reviews,
        principals=mapping,
        clock=clock,
        command=slack_config.command,
        response_origins=response_origins(slack_config.api_url),
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
        ),
        measure=reviews.gauge.record,
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
    secret = slack_config.signing_secret
    signing_secret = secret.get_secret_value() if secret is not None else ""  # "": Socket Mode only, HTTP refused

    async def warn_expiring(now: int) -> int:
        return await grants.lifecycle.warn_expiring(now, expiry_warning)

    async def expire_requests(now: int) -> object:
        await linking.discard_unconfirmed(now)  # link confirmations nobody answered: their logins lose their tokens
        return await grants.approvals.expire_requests(now)

    activations = ActivationRetries(grants=storage.grants, lifecycle=grants.lifecycle)
    bodies = JobBodies(
        expire_grants=sweep.expire_grants,
        finish_activations=activations.run,
        expire_requests=expire_requests,
        warn_expiring=warn_expiring,
        reconcile=reconciler.reconcile,
        deliver_outbox=outbox.deliver,
        refresh_identities=identity_sync.refresh_all,
        post_digest=digest.post,
        post_anchor=DailyAnchor(tx=tx, marks=storage.marks, audit=audit, outbox=outbox).post,
        resume_revocations=sweep.resume_claimed,
        reviews=reviews.job.run,
    )
    ttl = int(sc.lease_ttl.total_seconds())
    schedule = Schedule(
        sweep_interval=sc.sweep_interval.total_seconds(),
        reconcile_interval=sc.reconcile_interval.total_seconds(),
        outbox_interval=sc.outbox_interval.total_seconds(),
        # each link carries its own due time (oidc.refresh_interval, or a retry backoff); look often
        refresh_interval=min(oc.refresh_interval.total_seconds(), 60.0),
        lease_ttl=float(ttl),
        review_interval=sc.review_interval.total_seconds(),
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
        groups=group_sources,
        slack_client=slack_client,
        linking=linking,
        identity_sync=identity_sync,
        grants=grants,
        reviews=reviews,
        access=access,
        deps=deps,
        bolt=build_app(deps, slack_client, signing_secret),
        guard=RequestGuard(signing_secret, replays=storage.replays, tally=slack_tally, clock=clock),
        tallies=(slack_tally, refusals.tally),
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
