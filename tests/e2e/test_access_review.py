"""The access review story, end to end: an admin starts a campaign in Slack on the Rancher emulator's estate,
reviewers decide in their DMs, the plan is applied, removed and converted bindings are gone from Rancher, an undo
restores one, the digest shows the outcome, and every step is in the audit chain that `accessbot audit verify`
checks.

The bot runs on uvicorn with its jobs (outbox, reviews every second); the operator's plan, apply, undo and report run
as `accessbot review …` in another process on the same database, as an operator would run them.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from accessbot_emulators.rancher import RancherEmulator
from accessbot_emulators.slack import SlackEmulator
from bot.core import audit_actions as A
from bot.core.reviews import ItemState
from bot.services.jobs.digest import build_period_digest
from bot.slack import review_blocks as rb
from bot.slack.digest_blocks import render_digest_text
from tests.conftest import ALICE, BOB, CAROL, RunningBot, wait_until
from tests.reviews_rig import ADMIN, ALICES, CAROLS, DEVS, REVIEWS
from tests.security.conftest import cli_config
from tests.slack.review_clicks import BotFactory, answer, dm_click, last_modal, review_bot, submit

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def accessbot(config_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run `accessbot --config CONFIG ARGV…` in another process, as an operator would."""
    return subprocess.run(
        [sys.executable, "-m", "bot", "--config", str(config_path), *argv],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


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

        # the owner's plan, then the apply: the removed and the converted bindings are gone from Rancher
        config_path = cli_config(tmp_path / "cli.yaml", bot.config)
        plan = accessbot(config_path, "review", "plan", "q1", "--json")
        assert plan.returncode == 0, plan.stderr
        entries = [json.loads(line) for line in plan.stdout.splitlines()]
        assert sorted(e["binding"].rpartition(":")[2] for e in entries if e["now"] == "ready") == sorted(
            [ALICES, CAROLS]
        ), entries
        assert {ALICES, CAROLS} <= names_in_rancher(rancher)
        applied = accessbot(config_path, "review", "apply", "q1")
        assert applied.returncode == 0, applied.stderr
        assert "2 bindings deleted, 0 left alone, 0 failed" in applied.stdout, applied.stdout
        assert not {ALICES, CAROLS} & names_in_rancher(rancher)
        assert DEVS in names_in_rancher(rancher)
        told = dm_with(bot, ALICE, "converted to time-boxed access")
        assert "/access request" in (told.text or "")

        # an undo restores Carol's binding as it was
        undone = accessbot(config_path, "review", "undo", str(ids[CAROLS]))
        assert undone.returncode == 0, undone.stderr
        assert f"item {ids[CAROLS]} restored" in undone.stdout
        assert items(bot)[CAROLS].state is ItemState.UNDONE
        assert CAROLS in names_in_rancher(rancher)

        # the report shows each binding's outcome
        report = accessbot(config_path, "review", "report", "q1", "--format", "csv")
        assert report.returncode == 0, report.stderr
        rows = {r["binding"].rpartition(":")[2]: r for r in csv.DictReader(io.StringIO(report.stdout))}
        assert {n: (rows[n]["verdict"], rows[n]["state"]) for n in (ALICES, CAROLS, DEVS)} == {
            ALICES: ("convert", "applied"),
            CAROLS: ("remove", "undone"),
            DEVS: ("keep", "decided"),
        }
        assert rows[DEVS]["reason"] == "support reads payload-api logs"

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
        verify = accessbot(config_path, "audit", "verify")
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert verify.stdout.startswith("OK")
