"""Every list says what is left, text is cut at boundaries, fallback text stays short, and Slack accepts the result.

Each rendering is posted through the Slack emulator, which refuses blocks over Slack's documented limits
(accessbot_emulators/slack/limits.py cites docs.slack.dev/reference/block-kit/…) and counts text past 40,000
characters (api.slack.com/changelog/2018-04-truncating-really-long-messages). chat.postMessage recommends at most
4,000 characters of `text` (docs.slack.dev/reference/methods/chat.postMessage, "Truncating content").
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from slack_sdk.web.async_client import AsyncWebClient

from accessbot_emulators.slack import SlackEmulator
from bot.core.model import Grant, GrantState, Target
from bot.core.notices import BreakGlassUsed, GrantFacts
from bot.core.policy import RuleSummary
from bot.demo import botconfig
from bot.services.grants import Holder, HoldersReport
from bot.slack import grant_blocks as gb
from bot.slack.access_blocks import who_reply
from bot.slack.mrkdwn import FALLBACK_LIMIT, clip
from bot.slack.notices import SlackNotices

NOW = 1_800_000_000
CHANNEL = "C0LIMITS01"


@pytest.fixture
def client(slack: SlackEmulator) -> AsyncWebClient:
    """slack_sdk's client on the (reset) session emulator, no retries."""
    slack.reset()
    return AsyncWebClient(token=botconfig.BOT_TOKEN, base_url=slack.api_url, retry_handlers=[])


async def _post(client: AsyncWebClient, slack: SlackEmulator, text: str, blocks: list[dict[str, Any]]) -> None:
    """Post as the bot would: Slack must accept it and never truncate its text."""
    response = await client.chat_postMessage(channel=CHANNEL, text=text, blocks=blocks)
    assert response["ok"]
    assert slack.truncated() == 0
    assert len(text) <= FALLBACK_LIMIT


def _grant(i: int, user: str = "U0ALICE001") -> Grant:
    return Grant(
        id=f"g-{i}", slack_user=user, subject="s", target=Target("c-1", "c-1:p-1"), role_id="project-member",
        duration_s=3600, rule="r", state=GrantState.ACTIVE, requested_at=NOW, activated_at=NOW, expires_at=NOW + 3600,
    )  # fmt: skip


async def test_who_with_2000_holders_shows_what_fits_and_how_many_more(
    client: AsyncWebClient, slack: SlackEmulator
) -> None:
    """`who dev-eu` with 2,000 holders: what fits, then "and N more; narrow with `/access who dev-eu/PROJECT`"."""
    holders = tuple(
        Holder(f"user-{i:03d} " + "x" * 60, "user", "r", "Project Owner", "direct", f"b-{i}", slack_user=f"U{i:09d}")
        for i in range(2000)
    )
    text, blocks = who_reply(HoldersReport(Target("c-1"), "dev-eu", "", holders))
    await _post(client, slack, text, blocks)
    shown = sum(json.dumps(b, ensure_ascii=False).count("user-") for b in blocks)
    (more,) = re.findall(
        r"…and (\d+) more; narrow with `/access who dev-eu/PROJECT`", json.dumps(blocks, ensure_ascii=False)
    )
    assert shown + int(more) == 2000


async def test_who_fallback_text_for_1000_holders_stays_under_4000(
    client: AsyncWebClient, slack: SlackEmulator
) -> None:
    """The notification text of a 1,000-holder answer is a short summary, not every holder."""
    holders = tuple(Holder(f"u{i}", "user", f"role-{i % 30}", f"Role {i % 30}", "direct", f"b{i}") for i in range(1000))
    text, blocks = who_reply(HoldersReport(Target("c-1", "c-1:p-1"), "dev-eu", "payments", holders))
    await _post(client, slack, text, blocks)


async def test_everyones_grants_list_every_grant_or_say_how_many_are_left(
    client: AsyncWebClient, slack: SlackEmulator
) -> None:
    """`grants all` with 2,000 grants: what fits in 50 blocks, then "and N more"; shown + N = 2,000."""
    facts = [
        GrantFacts(_grant(i, f"U{i:09d}"), "dev-eu/payments-" + "p" * 40, "Project Member", NOW) for i in range(2000)
    ]
    text, blocks = gb.grants_list(facts, everyone=True)
    await _post(client, slack, text, blocks)
    shown = sum(json.dumps(b, ensure_ascii=False).count("`g-") for b in blocks)
    (more,) = re.findall(r"…and (\d+) more", json.dumps(blocks, ensure_ascii=False))
    assert shown + int(more) == 2000


async def test_sixty_rules_are_all_counted(client: AsyncWebClient, slack: SlackEmulator) -> None:
    """`rules` with 60 rules shows 48 and says 12 more; the header counts 60."""
    rules = [
        RuleSummary(
            name=f"rule-{i}", member=True, via_groups=("eng",), clusters=("dev-*",), projects=(), cluster_labels=(),
            roles=(("project-member", "Project Member"),), max_duration=timedelta(hours=1),
            default_duration=timedelta(hours=1), approval_groups=(), approvals_required=0, require_reason=False,
            max_extensions=0, self_approval=False, break_glass=False,
        )
        for i in range(60)
    ]  # fmt: skip
    text, blocks = gb.rules_reply(rules)
    await _post(client, slack, text, blocks)
    assert "60 rules" in text
    assert "…and 12 more" in json.dumps(blocks, ensure_ascii=False)


async def test_break_glass_names_twenty_approvers_and_a_count(client: AsyncWebClient, slack: SlackEmulator) -> None:
    """300 linked approvers: 20 mentions and "and 280 more linked approvers"; no mention is ever cut."""
    mentions = tuple(f"U0SRE{i:05d}" for i in range(300))
    facts = GrantFacts(_grant(1), "prod-eu", "Cluster Owner", NOW)
    text, blocks = SlackNotices().render(BreakGlassUsed(facts, mentions))
    await _post(client, slack, text, blocks)
    body = json.dumps(blocks, ensure_ascii=False)
    assert body.count("<@U0SRE") == 20
    assert "and 280 more linked approvers" in body
    assert not re.search(r"<@[A-Z0-9]*(?!>)\W", text + body)


async def test_break_glass_mentions_the_approver_user_group_when_configured(
    client: AsyncWebClient, slack: SlackEmulator
) -> None:
    """With slack.approver_usergroups, the announcement mentions `<!subteam^S…>` instead of people."""
    facts = GrantFacts(_grant(1), "prod-eu", "Cluster Owner", NOW)
    text, blocks = SlackNotices().render(BreakGlassUsed(facts, ("U0SRE00001",), ("S0SREGROUP1",)))
    await _post(client, slack, text, blocks)
    assert "<!subteam^S0SREGROUP1>" in json.dumps(blocks, ensure_ascii=False)
    assert "<@U0SRE00001>" not in json.dumps(blocks, ensure_ascii=False)


@given(
    st.lists(st.sampled_from(["<@U0ALICE001>", "&amp;", "word", " ", "\n", "<!date^1^{date}|x>", "é"]), max_size=400)
)
def test_clip_never_cuts_inside_a_mention_link_or_entity(parts: list[str]) -> None:
    """Whatever the text, the clipped one fits and has no half `<…>` or half `&…;` token."""
    text = "".join(parts)
    out = clip(text, 300)
    assert len(out) <= 300
    body = out.removesuffix("…")
    assert body.count("<") == body.count(">")
    assert not re.search(r"&[a-z]{0,3}$", body)


def test_clip_of_a_huge_text_is_fast() -> None:
    """Clipping 10 MB of text without spaces stays well within budget (best of 3)."""

    text = "<" * 5_000_000 + "x" * 5_000_000
    best = min(_timed(lambda: clip(text, 3000)) for _ in range(3))
    assert best < 0.5


def _timed(fn: Any) -> float:
    import time

    started = time.perf_counter()
    fn()
    return time.perf_counter() - started
