"""What reviews achieve, measured on the wired bot: the standing-binding gauge the reconciler samples, and the weekly
digest's reviews section (the trend, each campaign's outcome, the grants that replaced converted access)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from accessbot_emulators.rancher import RancherEmulator
from accessbot_emulators.slack import SlackEmulator
from bot.core.model import Grant, GrantState, Target
from bot.core.reviews import Verdict
from bot.services.jobs.digest import build_period_digest
from bot.slack.digest_blocks import render_digest_blocks, render_digest_text
from tests import factories
from tests.conftest import ALICE, BOB, LABEL
from tests.reviews_rig import ADMIN, ALICES, CAROLS, PROD_CHECKOUT, T0, World, world


@pytest.fixture
async def w(tmp_path: Path, slack: SlackEmulator, rancher: RancherEmulator) -> AsyncIterator[World]:
    """The wired bot with the default review settings."""
    async with world(tmp_path, slack, rancher) as running:
        yield running


def standing(w: World) -> int:
    """The newest standing-binding sample."""
    found = w.bot.storage.standing.latest()
    assert found is not None
    return found[1]


async def reconcile(w: World) -> None:
    """Run the reconcile job body, which samples the gauge from the bindings it lists."""
    await w.bot.scheduler.jobs.reconcile(w.clock.now())


async def test_the_reconciler_samples_standing_bindings_of_governed_roles(w: World) -> None:
    """Applying a review's removal lowers the day's sample by one (the last sample of a day wins)."""
    await reconcile(w)
    before = standing(w)
    campaign = await w.start()
    await w.bot.reviews.decisions.decide(w.item(campaign, CAROLS).id, BOB, Verdict.REMOVE)
    await w.bot.reviews.changes.apply("q1", actor=ADMIN)
    await reconcile(w)
    assert standing(w) == before - 1


async def test_only_standing_bindings_of_governed_roles_count(w: World) -> None:
    """A standing read-only binding adds one; the bot's tagged one and an ungoverned role's add nothing."""
    await reconcile(w)
    count = standing(w)
    where = {"namespaceId": "p-h3x8f", "projectId": PROD_CHECKOUT}
    w.rancher.add_binding("prtb", name="prtb-m1", roleTemplateId="read-only", groupPrincipalId="g://a", **where)
    w.rancher.add_binding("prtb", name="prtb-m2", roleTemplateId="workloads-view", groupPrincipalId="g://b", **where)
    w.rancher.add_binding(
        "prtb", name="prtb-m3", roleTemplateId="read-only", groupPrincipalId="g://c", labels={LABEL: "g-x"}, **where
    )
    await reconcile(w)
    assert standing(w) == count + 1


async def test_the_digest_shows_the_trend_each_outcome_and_the_replacement_grants(w: World) -> None:
    """After a conversion and a removal are applied and Alice asks for her access time-boxed, the digest says so."""
    await reconcile(w)
    campaign = await w.start()
    await w.bot.reviews.decisions.decide(w.item(campaign, ALICES).id, BOB, Verdict.CONVERT)
    await w.bot.reviews.decisions.decide(w.item(campaign, CAROLS).id, BOB, Verdict.REMOVE)
    w.clock.value = T0 + 3600
    await w.bot.reviews.changes.apply("q1", actor=ADMIN)
    w.clock.value = T0 + 86400
    await reconcile(w)
    request = Grant(
        id="", slack_user=ALICE, subject=f"{ALICE}-subject", target=Target("c-m-9hb3n5kp", PROD_CHECKOUT),
        role_id="project-member", duration_s=3600, rule="prod-with-approval", state=GrantState.REQUESTED,
        requested_at=T0 + 7200,
    )  # fmt: skip
    factories.grant(w.bot.storage, request, now=T0 + 7200)
    digest = build_period_digest(w.bot.storage, T0 + 60, T0 + 86400 + 60)
    text = render_digest_text(digest, slack=False)
    assert "Standing bindings of governed roles:" in text
    assert "(-2 against the start of the period)" in text
    assert "q1 (open): kept 0, converted 1, removed 1, undecided 1" in text
    assert "Time-boxed grants that replaced converted access: 1" in text
    assert "Access reviews:" in str(render_digest_blocks(digest))
