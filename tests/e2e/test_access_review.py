"""The access review story, end to end: an admin starts a campaign in Slack on the Rancher emulator's estate,
reviewers decide in their DMs, the plan is applied, removed and converted bindings are gone from Rancher, an undo
restores one, the digest shows the outcome, and every step is in the audit chain that `accessbot audit verify`
checks.

The bot runs on uvicorn with its jobs (outbox, reviews every second); plan, apply and undo run in a second process's
wiring on the same database, as the CLI does (`accessbot review plan|apply|undo`).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from accessbot_emulators.rancher import RancherEmulator
from accessbot_emulators.slack import SlackEmulator
from bot.config import Config
from bot.core import audit_actions as A
from bot.core.reviews import ItemState, PlanStatus
from bot.services.jobs.digest import build_period_digest
from bot.slack import review_blocks as rb
from bot.slack.digest_blocks import render_digest_text
from bot.wiring import Bot, build
from tests.conftest import ALICE, BOB, CAROL, RunningBot, wait_until
from tests.reviews_rig import ADMIN, ALICES, CAROLS, DEVS, REVIEWS
from tests.security.conftest import cli_config
from tests.slack.review_clicks import BotFactory, answer, dm_click, last_modal, review_bot, submit

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
T = TypeVar("T")


def operator(config: Config, work: Callable[[Bot], Awaitable[T]]) -> T:
    """Run `work` in a second wiring of the bot on the same database (what an `accessbot review …` command does)."""

    async def go() -> T:
        wired = build(config)
        try:
            return await work(wired)
        finally:
            await wired.aclose()

    return asyncio.run(go())


def names_in_rancher(rancher: RancherEmulator) -> set[str]:
    """Every CRTB and PRTB name in the emulator."""
    kinds = ("clusterRoleTemplateBinding", "projectRoleTemplateBinding")
    return {str(b.get("name")) for kind in kinds for b in rancher.objects(kind)}


def items(bot: RunningBot) -> dict[str, Any]:
    """q1's items by binding name."""
    store = bot.store()
    try:
        campaign = store.reviews.campaign(name="q1")
        assert campaign is not None
        return {i.binding.name: i for i in store.reviews.items(campaign.id)}
    finally:
        store.database.close()


def dm_with(bot: RunningBot, user: str, text: str) -> Any:
    """The newest DM to `user` whose text contains `text` (waited for)."""
    return bot.slack.wait_for(
        lambda: next((m for m in reversed(bot.slack.dms(user)) if text in (m.text or "")), None), timeout=20
    )


def test_an_access_review_campaign_from_start_to_undo(
    make_bot: BotFactory, rancher: RancherEmulator, slack: SlackEmulator, tmp_path: Path
) -> None:
    """Start, decide in Slack, plan, apply, undo one, the digest and the audit chain (see the module docstring)."""
    started_at = int(time.time())
    with review_bot(make_bot, rancher, slack) as bot:
        reply = bot.ask(ADMIN, "review start q1 roles project-member,read-only targets prod-*,staging-*")
        assert "3 standing bindings" in reply.text, reply.text

        # reviewers get one DM each, and decide there
        dm_with(bot, BOB, "Access review q1")
        dm_with(bot, CAROL, "Access review q1")
        ids = {name: item.id for name, item in items(bot).items()}
        answer(bot, dm_click(bot, BOB, rb.CONVERT, f"{ids[ALICES]}:0"))
        answer(bot, dm_click(bot, BOB, rb.REMOVE, f"{ids[CAROLS]}:0"))
        dm_click(bot, CAROL, rb.KEEP, f"{ids[DEVS]}:0")
        modal = last_modal(bot, rb.KEEP_CALLBACK)
        assert submit(bot, CAROL, rb.KEEP_CALLBACK, "support reads payload-api logs", modal["private_metadata"]) == {}
        wait_until(lambda: all(i.state is ItemState.DECIDED for i in items(bot).values()), timeout=10)

        # the campaign's message in the reviews channel is edited in place to show it
        posted = bot.slack.wait_for(lambda: next(iter(bot.slack.messages(REVIEWS)), None), timeout=15)
        wait_until(lambda: "3 of 3 decided" in (bot.slack.message(posted.ts).text or ""), timeout=15)  # type: ignore[union-attr]

        # the plan, then the apply: the removed and the converted bindings are gone from Rancher
        plan = operator(bot.config, lambda b: b.reviews.changes.plan("q1"))
        assert sorted(e.item.binding.name for e in plan.entries if e.status is PlanStatus.READY) == sorted(
            [ALICES, CAROLS]
        )
        assert {ALICES, CAROLS} <= names_in_rancher(rancher)
        report = operator(bot.config, lambda b: b.reviews.changes.apply("q1", actor=ADMIN))
        assert len(report.applied) == 2
        assert not {ALICES, CAROLS} & names_in_rancher(rancher)
        assert DEVS in names_in_rancher(rancher)
        told = dm_with(bot, ALICE, "converted to time-boxed access")
        assert "/access request" in (told.text or "")

        # an undo restores Carol's binding as it was
        undone = operator(bot.config, lambda b: b.reviews.changes.undo(ids[CAROLS], actor=ADMIN))
        assert undone.state is ItemState.UNDONE
        assert CAROLS in names_in_rancher(rancher)

        # the digest shows the outcome
        store = bot.store()
        try:
            digest = build_period_digest(store, started_at - 60, int(time.time()) + 60)
        finally:
            store.database.close()
        text = render_digest_text(digest, slack=False)
        assert "q1 (open): kept 1, converted 1" in text, text

        # every step is in the audit chain, and the chain verifies
        counts = {a: len(bot.audit(a)) for a in (A.REVIEW_STARTED, A.REVIEW_DECIDED, A.REVIEW_APPLYING,
                                                  A.REVIEW_APPLIED, A.REVIEW_RESTORING, A.REVIEW_RESTORED)}  # fmt: skip
        assert counts == {A.REVIEW_STARTED: 1, A.REVIEW_DECIDED: 3, A.REVIEW_APPLYING: 2, A.REVIEW_APPLIED: 2,
                          A.REVIEW_RESTORING: 1, A.REVIEW_RESTORED: 1}  # fmt: skip
        decided = {e.details["binding_id"]: e for e in bot.audit(A.REVIEW_DECIDED)}
        assert {e.actor for e in decided.values()} == {BOB, CAROL}
        assert json.dumps([e.details for e in bot.audit(A.REVIEW_APPLYING)]).count("binding") >= 2
        config_path = cli_config(tmp_path / "cli.yaml", bot.config)
        verify = subprocess.run(
            [sys.executable, "-m", "bot", "--config", str(config_path), "audit", "verify"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert verify.stdout.startswith("OK")
