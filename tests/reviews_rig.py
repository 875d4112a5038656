"""A bot wired by bot.wiring.build against the Rancher and Slack emulators and SQLite, with Alice, Bob and Carol
linked, for the access review tests (services, Slack, hostile input, end to end).

The estate is the Rancher emulator's demo fixture (accessbot_emulators/rancher/fixtures/demo.yaml): Carol holds a
standing project-member on staging-eu/payments (prtb-m7x2k), group devs a standing read-only on
prod-eu/payload-api (prtb-9qz4t); the demo policy makes sre approve both (rule prod-with-approval), so Bob and Carol
review them. `add_convertible` gives Alice (engineering) a standing project-member on prod-eu/checkout, which the
same rule lets her request: the one binding here that can be converted.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from accessbot_emulators.rancher import RancherEmulator
from accessbot_emulators.slack import SlackEmulator
from bot.core.review_commands import ReviewStart
from bot.core.reviews import Campaign, ReviewItem
from bot.demo import botconfig
from bot.wiring import Bot, build
from tests import factories
from tests.conftest import ALICE, BOB, BOT_KEY, CAROL, SUBJECTS, UNREACHABLE, FakeClock

ADMIN = "UADMIN0001"
REVIEWS = "CREVIEWS01"
T0 = 1_800_000_000
ROLES = ("project-member", "read-only")
TARGETS = ("prod-*", "staging-*")
CAROLS = "prtb-m7x2k"  # Carol's project-member on staging-eu/payments (reviewed by sre: Bob)
DEVS = "prtb-9qz4t"  # group devs' read-only on prod-eu/payload-api (reviewed by sre: Bob and Carol)
ALICES = "prtb-review-alice"  # added by add_convertible: Alice's project-member on prod-eu/checkout
PROD_CHECKOUT = "c-m-9hb3n5kp:p-h3x8f"
ALICE_PRINCIPAL = f"genericoidc_user://{SUBJECTS[ALICE][0]}"


@dataclass
class World:
    """The wired bot, its clock and the emulators."""

    bot: Bot
    clock: FakeClock
    rancher: RancherEmulator
    slack: SlackEmulator

    async def start(self, name: str = "q1", **kwargs: Any) -> Campaign:
        """Start a campaign over the reviewed roles and targets as the admin."""
        args: dict[str, Any] = {"roles": ROLES, "targets": TARGETS} | kwargs
        report = await self.bot.reviews.campaigns.start(ReviewStart(name, **args), actor=ADMIN)
        return report.campaign

    def items(self, campaign: Campaign) -> list[ReviewItem]:
        """Every item of a campaign, as stored now."""
        return self.bot.storage.reviews.items(campaign.id)

    def item(self, campaign: Campaign, binding_name: str) -> ReviewItem:
        """The item of the binding named `binding_name`."""
        return next(i for i in self.items(campaign) if i.binding.name == binding_name)

    def binding_names(self) -> set[str]:
        """The names of every CRTB and PRTB in the Rancher emulator now."""
        kinds = ("clusterRoleTemplateBinding", "projectRoleTemplateBinding")
        return {str(b.get("name")) for kind in kinds for b in self.rancher.objects(kind)}

    def audit(self, action: str) -> list[Any]:
        """Audit events of one action."""
        return [e for e in self.bot.storage.audit.events() if e.action == action]


def add_convertible(rancher: RancherEmulator) -> None:
    """Alice's standing project-member on prod-eu/checkout (rule prod-with-approval lets engineering request it)."""
    rancher.add_binding(
        "prtb",
        name=ALICES,
        namespaceId="p-h3x8f",
        projectId=PROD_CHECKOUT,
        roleTemplateId="project-member",
        userPrincipalId=ALICE_PRINCIPAL,
        labels={"team": "checkout"},
    )


def config_data(tmp_path: Path, slack: SlackEmulator, rancher: RancherEmulator, /, **overrides: Any) -> dict[str, Any]:
    """The demo configuration wired to the emulators, with a reviews channel and `overrides` merged in."""
    channels = dict(botconfig.CHANNELS, reviews=REVIEWS)
    base: dict[str, Any] = {"slack": {"channels": channels}}
    for key, value in overrides.items():
        base[key] = {**base.get(key, {}), **value}
    return botconfig.config_data(
        database=tmp_path / "reviews.db",
        public_url="http://127.0.0.1:9",
        slack_api_url=slack.api_url,
        oidc_issuer=UNREACHABLE,
        rancher_url=rancher.url,
        rancher_token=BOT_KEY,
        overrides=base,
    )


@contextlib.asynccontextmanager
async def world(
    tmp_path: Path, slack: SlackEmulator, rancher: RancherEmulator, /, **overrides: Any
) -> AsyncIterator[World]:
    """The wired bot (jobs not started: tests run job bodies themselves) with Alice, Bob and Carol linked."""
    rancher.reset()
    slack.reset()
    add_convertible(rancher)
    clock = FakeClock(T0)
    bot = build(botconfig.parse_config(config_data(tmp_path, slack, rancher, **overrides)), clock=clock)
    for user, (subject, groups) in SUBJECTS.items():
        slack.add_user(user, f"{user.lower()}@example.com", user.lower())
        factories.link(bot.storage.links, user, subject, groups, now=T0)
    try:
        yield World(bot, clock, rancher, slack)
    finally:
        await bot.aclose()


__all__ = ["ADMIN", "ALICE", "BOB", "CAROL", "World", "world"]
