"""Benchmark: how long an approval request waits behind 10,000 queued expiry edits, with Slack enforcing its rates.

Run: python bench/outbox.py [--edits 10000] [--interval 5] [--watch 10]
The Slack emulator enforces Slack's documented limits (one chat.postMessage per second per channel, Tier 3 for
chat.update; 429 + Retry-After past them). The bot is wired by bot.wiring (real Outbox, SlackNotifier, SQLite).
10,000 grants-channel messages exist; an edit of each (the "expired" status notice) is queued; a delivery loop runs
the deliver_outbox job body every `--interval` seconds, as the scheduler does. Two seconds into that, while a run
is busy with edits, one approval request is queued. Printed:
- how long the approval request waited until Slack had it (target: under 5 s);
- the baseline measured in the same run: the edit rate the same loop achieved, and so how long a single FIFO
  queue would have held the request back (all 10,000 edits first);
- the cost of one plan (due query + heads + planner) with 10,000 messages queued, and the 429s Slack answered.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from accessbot_emulators.slack import SlackEmulator
from bot import wiring
from bot.core import outbox_plan
from bot.core.model import Grant, GrantState, OutboxStatus, Target
from bot.core.notices import ApprovalCard, GrantFacts, GrantStatus
from bot.demo import botconfig

GRANTS, APPROVALS = botconfig.CHANNELS["grants"], botconfig.CHANNELS["approvals"]


def _grant(i: int, state: GrantState, now: int) -> Grant:
    return Grant(
        id=f"g-{i}",
        slack_user="U0ALICE001",
        subject="s",
        target=Target("c-7xk2p", "c-7xk2p:p-4mz8q"),
        role_id="project-member",
        duration_s=3600,
        rule="dev-self-service",
        state=state,
        requested_at=now - 3600,
        activated_at=now - 3600,
        expires_at=now,
        ended_at=now,
    )


async def measure(edits: int, interval: float, watch: float) -> dict[str, float]:
    """Queue the edits, run delivery, queue the approval mid-run; return the figures."""
    with SlackEmulator.running(bot_token=botconfig.BOT_TOKEN) as slack, tempfile.TemporaryDirectory() as tmp:
        slack.enforce_rate_limits(per_channel_per_second=1.0, burst=1.0)
        config = botconfig.make_config(
            database=Path(tmp) / "bench.db",
            public_url="http://127.0.0.1:9",
            slack_api_url=slack.api_url,
            oidc_issuer="http://127.0.0.1:9",
            rancher_url="http://127.0.0.1:9",
            rancher_token="token-abcde:notused",
            overrides={"schedule": {"outbox_interval": f"{interval:g}s"}},
        )
        bot = wiring.build(config)
        store, outbox = bot.storage, bot.outbox
        now = bot.clock.now()
        with store.tx.atomic():
            for i in range(edits):
                store.outbox.set_message_ref(f"grant:g-{i}", GRANTS, slack.seed_message(GRANTS, f"g-{i} active"))
                facts = GrantFacts(_grant(i, GrantState.EXPIRED, now), "dev-eu/payments", "Project Member", now)
                outbox.update(f"grant:g-{i}", f"grant:g-{i}:expired", GrantStatus(facts), channel_name="grants")
        plan_ms = []
        for _ in range(20):
            started = time.perf_counter()
            due = store.outbox.due(now, 200)
            heads = store.outbox.heads({m.order_key for m in due if m.order_key})
            outbox_plan.plan(due, heads, {}, 0.0, 5)
            plan_ms.append((time.perf_counter() - started) * 1000)

        stop = asyncio.Event()

        async def scheduler() -> None:  # what APScheduler does: run the body every interval, never two at once
            while not stop.is_set():
                started = time.monotonic()
                await outbox.deliver(bot.clock.now())
                await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))

        loop = asyncio.create_task(scheduler())
        await asyncio.sleep(2.0)
        sent_before = store.outbox.counts().get("sent", 0)
        ask = _grant(edits + 1, GrantState.REQUESTED, now)
        queued_at = time.monotonic()
        with store.tx.atomic():
            facts = GrantFacts(ask, "prod-eu/payments", "Project Member", now)
            outbox.post("approvals", f"approval:{ask.id}:post", ApprovalCard(facts), ref=f"approval:{ask.id}")
        await slack.wait_for_async(lambda: slack.messages(APPROVALS), timeout=600, interval=0.01)
        waited = time.monotonic() - queued_at
        watch_start, sent_start = time.monotonic(), store.outbox.counts().get("sent", 0)
        await asyncio.sleep(watch)
        sent_end = store.outbox.counts().get("sent", 0)
        rate = (sent_end - sent_start) / (time.monotonic() - watch_start)
        stop.set()
        await loop
        left = store.outbox.listing((OutboxStatus.PENDING,), 100_000)
        await bot.aclose()
        return {
            "edits": edits,
            "waited_s": waited,
            "edits_before_request": sent_before,
            "edit_rate": rate,
            "fifo_wait_s": edits / rate if rate else float("inf"),
            "plan_ms": statistics.median(plan_ms),
            "limited": slack.rate_limited(),
            "pending_left": len(left),
        }


def main() -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=10_000)
    parser.add_argument("--interval", type=float, default=5.0, help="schedule.outbox_interval, seconds")
    parser.add_argument("--watch", type=float, default=10.0, help="seconds to measure the edit rate afterwards")
    args = parser.parse_args()
    r = asyncio.run(measure(args.edits, args.interval, args.watch))
    print(f"outbox: {r['edits']:,.0f} expiry edits queued, then one approval request (Slack pacing 1 post/s/channel)")
    print(f"  approval request waited        {r['waited_s']:.2f} s   (target < 5 s)")
    print(f"  edits sent before it was queued {r['edits_before_request']:.0f}")
    print(f"  baseline: edit rate this run   {r['edit_rate']:.2f} edits/s")
    print(f"  a FIFO queue would have held it {r['fifo_wait_s'] / 3600:.1f} h  ({r['edits']:,.0f} edits first)")
    print(f"  ratio (waited / FIFO)          {r['waited_s'] / r['fifo_wait_s']:.5f}")
    print(f"  one plan with the queue full   {r['plan_ms']:.1f} ms median (due + heads + planner)")
    print(f"  429s answered by Slack         {r['limited']:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
