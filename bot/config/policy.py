"""`policy:` the rules as written in YAML, checked for consistency and turned into the core's `Policy`."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, field_validator, model_validator

from bot.config.base import Duration, FrozenModel
from bot.core.policy import ApprovalRule, Policy, Rule


class ApprovalConfig(FrozenModel):
    """Who must approve: `count` distinct members of `groups`."""

    groups: tuple[str, ...] = Field(min_length=1)
    count: int = Field(1, ge=1, le=10)


class RuleConfig(FrozenModel):
    """One policy rule as written in the YAML file."""

    name: str = Field(min_length=1, max_length=64)
    groups: tuple[str, ...] = Field(min_length=1)
    clusters: tuple[str, ...] = ()
    projects: tuple[str, ...] = ()
    cluster_labels: dict[str, str] = Field(default_factory=dict)
    roles: tuple[str, ...] = Field(min_length=1)
    max_duration: Duration
    default_duration: Duration | None = None
    approval: Literal["none"] | ApprovalConfig = "none"
    require_reason: bool = False
    max_extensions: int = Field(0, ge=0, le=100)
    self_approval: bool = False
    break_glass: bool = False

    @field_validator("projects")
    @classmethod
    def _projects(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            if item.count("/") != 1:
                raise ValueError(f"{item!r} is not CLUSTER/PROJECT (globs allowed, e.g. dev-*/*)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> RuleConfig:
        if not self.clusters and not self.projects and not self.cluster_labels:
            raise ValueError("needs clusters, projects or cluster_labels (what may be requested)")
        if self.default_duration is not None and self.default_duration > self.max_duration:
            raise ValueError("default_duration is over max_duration (default must be ≤ max)")
        if self.break_glass and self.max_duration > timedelta(hours=4):
            raise ValueError("break_glass rules are capped at 4h (max_duration ≤ 4h)")
        return self

    def to_rule(self) -> Rule:
        """Convert to the core's pure value."""
        approval = (
            ApprovalRule()
            if self.approval == "none"
            else ApprovalRule(groups=self.approval.groups, count=self.approval.count)
        )
        return Rule(
            name=self.name,
            groups=self.groups,
            roles=self.roles,
            max_duration=self.max_duration,
            default_duration=self.default_duration or min(self.max_duration, timedelta(hours=1)),
            clusters=self.clusters,
            projects=self.projects,
            cluster_labels=tuple(sorted(self.cluster_labels.items())),
            approval=approval,
            require_reason=self.require_reason or self.break_glass,
            max_extensions=self.max_extensions,
            self_approval=self.self_approval,
            break_glass=self.break_glass,
        )


class PolicyConfig(FrozenModel):
    """Rules that decide what may be requested."""

    request_ttl: Duration = timedelta(hours=1)
    rules: tuple[RuleConfig, ...] = ()

    @field_validator("rules")
    @classmethod
    def _unique_names(cls, value: tuple[RuleConfig, ...]) -> tuple[RuleConfig, ...]:
        seen: set[str] = set()
        for rule in value:
            if rule.name in seen:
                raise ValueError(f"rule name {rule.name!r} is used twice (names must be unique)")
            seen.add(rule.name)
        return value

    def to_policy(self) -> Policy:
        """Convert to the core's pure value."""
        return Policy(rules=tuple(r.to_rule() for r in self.rules), request_ttl=self.request_ttl)
