"""Benchmark: starting an access review of 10,000 standing bindings, and delivering its reviewer DMs at Slack's pace.

Run: python bench/reviews.py [--bindings 10000] [--runs 5] [--reviewers 60]

The Rancher emulator runs in a child process (its CPU does not share the bot's GIL), seeded with
`standing_estate(bindings=N)`: N standing user and group CRTBs/PRTBs of the owner, member and view roles across
prod-/staging-/dev- clusters (a 2% share made by the bot, left out by the review). The bot is wired by bot.wiring
(real RancherClient over HTTP, SQLite, audit chain, outbox); the reviewers are linked people of the `sre` and
`security` groups (`sre` approves the prod rules of the demo policy; `review.reviewer_groups: [security]` reviews
the rest).

1. Campaign creation: `ReviewServices.campaigns.start` over every standing binding of the six roles, `--runs`
   times (each a new campaign: one read of Rancher, items, reviewers, audit, channel message, one DM per
   reviewer, in one transaction). Baseline, measured in the same run: the bare Rancher reads the start makes
   (every CRTB and PRTB, the users, clusters, projects and role templates). Target: under 10 s.
2. DMs: with the Slack emulator enforcing Slack's documented rates (chat.postMessage 1/s per channel,
   conversations.open and chat.update Tier 3: a burst of 50 then 50/min), the outbox delivery job runs every
   `schedule.outbox_interval` until every reviewer's DM of the first campaign is in Slack; printed: the time it
   took, Slack's 429s, and the time Tier 3 alone makes necessary (the floor).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from accessbot_emulators.rancher import standing_estate
from accessbot_emulators.slack import SlackEmulator
from bot import wiring
from bot.core.model import OutboxStatus
from bot.core.review_commands import ReviewStart
from bot.demo import botconfig
from tests import factories

TARGET_S = 10.0
BOT_KEY = "token-b9t4n:2jpfw5dxczjt4wr7nsxspmk8h57kdxmvtn6smzdfvrh7ngtrc4d7wx"
ROLES = ("cluster-owner", "cluster-member", "projects-view", "project-owner", "project-member", "read-only")
TIER3_BURST, TIER3_PER_S = 50, 50 / 60


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_rancher(bindings: int, tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    """The emulator with the standing estate, in a child process; returns it and its URL once it answers."""
    fixture = tmp / "estate.json"  # JSON is YAML: the emulator's --fixture reads it
    fixture.write_text(json.dumps(standing_estate(bindings=bindings)), encoding="utf-8")
    port = _free_port()
    code = "import sys; from accessbot_emulators.rancher import main; sys.exit(main(sys.argv[1:]))"
    child = subprocess.Popen(
        [sys.executable, "-c", code, "--fixture", str(fixture), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/v3/settings/server-version", timeout=1).status_code < 500:
                return child, url
        except httpx.HTTPError:
            time.sleep(0.2)
    child.kill()
    raise SystemExit("the Rancher emulator did not start")


def link_reviewers(bot: wiring.Bot, slack: SlackEmulator, reviewers: int) -> list[str]:
    """Link `reviewers` people, alternately in `sre` and `security`, each a member of the Slack workspace."""
    now = bot.clock.now()
    people = []
    for r in range(reviewers):
        user = f"UREV{r:06d}"
        factories.link(bot.storage.links, user, f"reviewer-{r:05d}", ["sre" if r % 2 else "security"], now=now)
        slack.add_user(user, email=f"reviewer{r}@example.com", name=f"reviewer{r}")
        people.append(user)
    return people


async def measure(bindings: int, runs: int, reviewers: int, interval: float) -> dict[str, Any]:
    """Start `runs` campaigns and time them against the bare reads; then deliver one campaign's DMs."""
    with tempfile.TemporaryDirectory() as tmpdir, SlackEmulator.running(bot_token=botconfig.BOT_TOKEN) as slack:
        tmp = Path(tmpdir)
        child, rancher_url = serve_rancher(bindings, tmp)

        def config(db: str) -> Any:
            return botconfig.make_config(
                database=tmp / db,
                public_url="http://127.0.0.1:9",
                slack_api_url=slack.api_url,
                oidc_issuer="http://127.0.0.1:9",
                rancher_url=rancher_url,
                rancher_token=BOT_KEY,
                overrides={
                    "review": {"reviewer_groups": ["security"]},
                    "schedule": {"outbox_interval": f"{interval:g}s"},
                },
            )

        try:
            bot = wiring.build(config("starts.db"))
            link_reviewers(bot, slack, reviewers)
            rancher = bot.rancher
            await rancher.list_role_templates()  # warm the connection pool once
            baseline, starts, report = [], [], None
            for i in range(runs):
                started = time.perf_counter()
                await asyncio.gather(
                    rancher.list_all_bindings(),
                    rancher.list_users(),
                    rancher.list_clusters(),
                    rancher.list_projects(),
                    rancher.list_role_templates(),
                )
                baseline.append(time.perf_counter() - started)
                started = time.perf_counter()
                done = await bot.reviews.campaigns.start(ReviewStart(name=f"bench-{i}", roles=ROLES), actor="bench")
                starts.append(time.perf_counter() - started)
                report = report or done
            await bot.aclose()
            assert report is not None

            # the DMs: one campaign on a fresh database, delivered by the outbox job with Slack's rates enforced
            bot = wiring.build(config("dms.db"))
            people = link_reviewers(bot, slack, reviewers)
            dm_report = await bot.reviews.campaigns.start(ReviewStart(name="dms", roles=ROLES), actor="bench")
            keys = [f"review:{dm_report.campaign.id}:ask:{u}" for u in people]
            slack.enforce_rate_limits(per_channel_per_second=1.0, burst=1.0)
            queued_at = time.monotonic()
            sent = 0
            while time.monotonic() - queued_at < 900:
                await bot.outbox.deliver(bot.clock.now())
                found = [bot.storage.outbox.get(k) for k in keys]
                sent = sum(1 for m in found if m is not None and m.status is OutboxStatus.SENT)
                if sent == dm_report.reviewers:
                    break
                await asyncio.sleep(interval)
            dm_s = time.monotonic() - queued_at
            await bot.aclose()
        finally:
            child.terminate()
            child.wait(10)
        return {
            "bindings": bindings,
            "items": report.items,
            "excluded": report.excluded,
            "reviewers": report.reviewers,
            "start_s": statistics.median(starts),
            "start_runs": starts,
            "baseline_s": statistics.median(baseline),
            "dm_s": dm_s,
            "dms": sent,
            "limited": slack.rate_limited(),
            "floor_s": max(0.0, (dm_report.reviewers - TIER3_BURST) / TIER3_PER_S),
        }


def main() -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bindings", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--reviewers", type=int, default=60)
    parser.add_argument("--interval", type=float, default=5.0, help="schedule.outbox_interval, seconds")
    args = parser.parse_args()
    r = asyncio.run(measure(args.bindings, args.runs, args.reviewers, args.interval))
    runs = ", ".join(f"{s:.2f}" for s in r["start_runs"])
    print(f"reviews: {r['bindings']:,} standing bindings in the emulator, {args.reviewers} linked reviewers")
    print(f"  campaign start (median of {args.runs}) {r['start_s']:.2f} s   (target < {TARGET_S:.0f} s; runs: {runs})")
    print(f"  items / left out (Rancher's own)  {r['items']:,} / {r['excluded']}; reviewers asked {r['reviewers']}")
    print(f"  baseline: the bare Rancher reads  {r['baseline_s']:.2f} s median")
    print(f"  ratio (start / reads)             {r['start_s'] / r['baseline_s']:.2f}")
    print(f"  reviewer DMs delivered            {r['dms']} in {r['dm_s']:.1f} s (Tier 3 floor {r['floor_s']:.1f} s)")
    print(f"  429s answered by Slack            {r['limited']}")
    print(
        f"summary: a review of {r['items']:,} bindings started in {r['start_s']:.2f} s "
        f"({r['start_s'] / r['baseline_s']:.1f}x the bare reads); {r['dms']} reviewer DMs in {r['dm_s']:.0f} s, "
        f"{r['limited']} 429s (python bench/reviews.py --bindings {r['bindings']} --runs {args.runs} "
        f"--reviewers {args.reviewers})"
    )
    return 0 if r["start_s"] < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
