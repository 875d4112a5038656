"""Time-boxed grants: request → policy → approval → recorded intent → tagged Rancher binding → active → revoked.

`GrantServices` bundles the use cases; each lives in its own module and shares the ledger (every state change),
the directory (lookups) and the bindings (Rancher) with the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bot.core.policy import Policy
from bot.core.ports import Clock, RancherApi
from bot.core.principals import PrincipalMapping
from bot.core.storage import ExtensionStore, GrantStore, LinkStore, Transactions
from bot.services.audit import AuditLog
from bot.services.grants.approvals import Approvals
from bot.services.grants.bindings import SLACK_USER_ANNOTATION, Bindings, binding_name
from bot.services.grants.directory import Directory
from bot.services.grants.extensions import Extensions
from bot.services.grants.ledger import AuditNote, Ledger, grant_details
from bot.services.grants.lifecycle import Lifecycle, LifecycleTiming, Released
from bot.services.grants.outcomes import DecisionOutcome, ExtendOutcome, PolicyTest, RequestOutcome
from bot.services.grants.queries import GrantQueries, Holder, HoldersReport
from bot.services.grants.requests import Requests
from bot.services.grants.standing import StandingAccess
from bot.services.outbox import Outbox

__all__ = [
    "SLACK_USER_ANNOTATION",
    "Approvals",
    "AuditNote",
    "Bindings",
    "DecisionOutcome",
    "Directory",
    "ExtendOutcome",
    "Extensions",
    "GrantQueries",
    "GrantServices",
    "Holder",
    "HoldersReport",
    "Ledger",
    "Lifecycle",
    "LifecycleTiming",
    "PolicyTest",
    "Released",
    "RequestOutcome",
    "Requests",
    "StandingAccess",
    "binding_name",
    "grant_details",
]


@dataclass(frozen=True)
class GrantServices:
    """Every grant use case, built once by wiring."""

    directory: Directory
    ledger: Ledger
    bindings: Bindings
    lifecycle: Lifecycle
    requests: Requests
    approvals: Approvals
    extensions: Extensions
    queries: GrantQueries

    @classmethod
    def create(
        cls,
        *,
        tx: Transactions,
        grants: GrantStore,
        extensions: ExtensionStore,
        links: LinkStore,
        rancher: RancherApi,
        audit: AuditLog,
        outbox: Outbox,
        clock: Clock,
        policy: Policy,
        principals: PrincipalMapping,
        grant_label: str,
        admins: frozenset[str] = frozenset(),
        timing: LifecycleTiming | None = None,
        approver_usergroups: Mapping[str, str] | None = None,
    ) -> GrantServices:
        """Build the use cases over their ports, sharing one directory, ledger and bindings."""
        directory = Directory(
            grants=grants,
            links=links,
            rancher=rancher,
            clock=clock,
            policy=policy,
            principals=principals,
            admins=admins,
        )
        ledger = Ledger(tx=tx, grants=grants, audit=audit, outbox=outbox, clock=clock)
        bindings = Bindings(rancher=rancher, directory=directory, grant_label=grant_label)
        lifecycle = Lifecycle(
            directory=directory, ledger=ledger, bindings=bindings, grants=grants, clock=clock, timing=timing
        )
        return cls(
            directory=directory,
            ledger=ledger,
            bindings=bindings,
            lifecycle=lifecycle,
            requests=Requests(
                directory=directory,
                ledger=ledger,
                bindings=bindings,
                lifecycle=lifecycle,
                grants=grants,
                rancher=rancher,
                standing=StandingAccess(rancher=rancher, directory=directory, grant_label=grant_label),
                audit=audit,
                clock=clock,
                approver_usergroups=approver_usergroups,
            ),
            approvals=Approvals(directory=directory, ledger=ledger, lifecycle=lifecycle, grants=grants, clock=clock),
            extensions=Extensions(directory=directory, ledger=ledger, requests=extensions, clock=clock),
            queries=GrantQueries(
                directory=directory, grants=grants, rancher=rancher, clock=clock, grant_label=grant_label
            ),
        )
