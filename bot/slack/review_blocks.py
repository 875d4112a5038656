"""Block Kit for access reviews: a reviewer's items a page at a time, the campaign's channel message, the DM to a
converted holder, the reason forms, and the App Home section; every sentence a reviewer reads.

Pages stay within Slack's message limit (docs.slack.dev/reference/block-kit/blocks: 50 blocks a message): a header,
an introduction, then at most PAGE_SIZE items (a section and an actions block each) under at most PAGE_SIZE target
headings, and a footer of two blocks (15 × 3 + 4 = 49). Button values carry identifiers only (an item or campaign
number and a page); who may decide is read from the database when a button is clicked.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from bot.core.digest_period import utc_iso
from bot.core.durations import format_duration
from bot.core.review_notices import AccessConverted, CampaignFacts, ReviewerAsked, ReviewerItems
from bot.core.reviews import DECIDABLE, Campaign, CampaignStatus, ItemState, ReviewItem, Verdict
from bot.slack.forms import reason_input
from bot.slack.mrkdwn import clip, code, context, escape, fallback, plain, section, user

Block = dict[str, Any]
Rendered = tuple[str, list[Block]]

KEEP, CONVERT, REMOVE = "review_keep", "review_convert", "review_remove"
PAGE, KEEP_ALL, CONVERT_ALL = "review_page", "review_keep_all", "review_convert_all"
KEEP_CALLBACK, BULK_CALLBACK = "review_keep_reason", "review_bulk_reason"
PAGE_SIZE = 15
HOME_ITEMS = 5
MAX_METADATA = 2900
"""A view's private_metadata holds at most 3,000 characters (reference/views/modal-views)."""

_VERDICT_WORDS = {Verdict.KEEP: "keep", Verdict.CONVERT: "convert to time-boxed", Verdict.REMOVE: "remove"}
_TIMEOUT_WORDS = {
    Verdict.KEEP: "kept",
    Verdict.CONVERT: "converted to time-boxed access where a rule allows it (kept otherwise)",
    Verdict.REMOVE: "removed",
}


def _when(epoch: int) -> str:
    return f"{utc_iso(epoch).replace('T', ' ').removesuffix('Z')} UTC"


def _left(campaign: Campaign, now: int) -> str:
    if campaign.due_at <= now:
        return "due now"
    return f"{format_duration(timedelta(seconds=campaign.due_at - now))} left"


def pages(items: Sequence[ReviewItem]) -> int:
    """How many pages a reviewer's items take (at least one)."""
    return max(1, -(-len(items) // PAGE_SIZE))


def page_of(items: Sequence[ReviewItem], item_id: int) -> int:
    """The page an item is on (0 when it is not among the items)."""
    for index, item in enumerate(items):
        if item.id == item_id:
            return index // PAGE_SIZE
    return 0


def _holder(item: ReviewItem) -> str:
    h = item.holder
    if h.is_group:
        return f"group {code(h.name)}"
    if h.slack_user:
        return f"{user(h.slack_user)} ({code(h.name)})"
    return code(h.name)


def _status(item: ReviewItem) -> str:
    d = item.decision
    if item.state is ItemState.PENDING or d is None:
        return "_undecided_"
    by = "the deadline" if d.timed_out else user(d.by)
    why = f": “{escape(clip(d.reason, 300))}”" if d.reason else ""
    self_note = " (self-attested)" if d.self_attested else ""
    word = _VERDICT_WORDS[d.verdict]
    if item.state is ItemState.DECIDED:
        return f":white_check_mark: *{word}* — by {by}{self_note}{why}"
    if item.state is ItemState.APPLIED:
        done = "converted" if d.verdict is Verdict.CONVERT else "removed"
        return f":heavy_check_mark: *{done}* in Rancher (decided by {by}{self_note})"
    if item.state is ItemState.SKIPPED:
        return f":no_entry_sign: *left alone*: {escape(item.note)}"
    if item.state in (ItemState.UNDOING, ItemState.UNDONE):
        return ":leftwards_arrow_with_hook: *restored* after an undo"
    return f":hourglass_flowing_sand: *{word}*, being applied"


def item_line(item: ReviewItem) -> str:
    """One item as a reviewer reads it: role, holder, binding, where it stands."""
    return f"*{escape(item.role_name)}* held by {_holder(item)} · binding {code(item.binding.id)}\n{_status(item)}"


def _buttons(item: ReviewItem, page: int) -> Block:
    value = f"{item.id}:{page}"
    return {
        "type": "actions",
        "block_id": f"review-item:{item.id}",
        "elements": [
            {"type": "button", "action_id": KEEP, "text": plain("Keep", 75), "value": value},
            {"type": "button", "action_id": CONVERT, "text": plain("Convert to time-boxed", 75), "value": value},
            {"type": "button", "action_id": REMOVE, "text": plain("Remove", 75), "value": value, "style": "danger"},
        ],
    }


def _intro(view: ReviewerItems, *, reminder: bool) -> str:
    c, items = view.campaign, view.items
    undecided = sum(1 for i in items if i.state is ItemState.PENDING)
    if c.status is CampaignStatus.CLOSED:
        closed = _when(c.closed_at) if c.closed_at is not None else "now"
        return (
            f"This review closed on {closed}; its decisions are final. Of your {len(items)} bindings, {undecided} "
            "were left undecided."
        )
    lead = ":alarm_clock: *Reminder:* " if reminder else ""
    yours = f"{undecided} of your {len(items)} binding{'s' if len(items) != 1 else ''}"
    return (
        f"{lead}Please review the standing Rancher access below: *Keep* it (say why), *Convert* it to time-boxed "
        f"access (the holder requests it when needed), or *Remove* it. {yours} {'is' if undecided == 1 else 'are'} "
        f"undecided; due {_when(c.due_at)} ({_left(c, view.now)}). Undecided bindings are then "
        f"{_TIMEOUT_WORDS[c.on_timeout]}. Nothing changes in Rancher until the review's owner applies the plan."
    )


def reviewer_blocks(view: ReviewerItems, *, reminder: bool = False, page: int | None = None) -> list[Block]:
    """One page of a reviewer's items, grouped by target, with the decision buttons while the review is open."""
    items, campaign = view.items, view.campaign
    total_pages = pages(items)
    current = min(max(0, view.page if page is None else page), total_pages - 1)
    shown = items[current * PAGE_SIZE : (current + 1) * PAGE_SIZE]
    open_ = campaign.status is CampaignStatus.OPEN
    blocks: list[Block] = [
        {"type": "header", "text": plain(f"Access review: {campaign.name}", 150)},
        section(_intro(view, reminder=reminder)),
    ]
    target = None
    for item in shown:
        if item.target_name != target:
            target = item.target_name
            blocks.append(context(f":round_pushpin: *{escape(target)}*"))
        blocks.append(section(item_line(item)))
        if open_ and item.state in DECIDABLE:
            blocks.append(_buttons(item, current))
    footer = [f"Page {current + 1} of {total_pages} · {len(items)} binding{'s' if len(items) != 1 else ''}"]
    blocks.append(context(" · ".join(footer)))
    elements: list[Block] = []
    if current > 0:
        elements.append(_page_button("← Previous", campaign.id, current - 1))
    if current + 1 < total_pages:
        elements.append(_page_button("Next →", campaign.id, current + 1))
    if open_ and any(i.state is ItemState.PENDING for i in items):
        elements.append({"type": "button", "action_id": KEEP_ALL, "text": plain("Keep all undecided", 75),
                         "value": str(campaign.id)})  # fmt: skip
        elements.append({"type": "button", "action_id": CONVERT_ALL, "text": plain("Convert all undecided", 75),
                         "value": str(campaign.id)})  # fmt: skip
    if elements:
        blocks.append({"type": "actions", "block_id": f"review-page:{campaign.id}", "elements": elements})
    return blocks


def _page_button(label: str, campaign_id: int, page: int) -> Block:
    return {"type": "button", "action_id": PAGE, "text": plain(label, 75), "value": f"{campaign_id}:{page}"}


def reviewer_message(notice: ReviewerAsked) -> Rendered:
    """The DM asking a reviewer to decide (and its edit when the review closes)."""
    view = notice.items
    undecided = sum(1 for i in view.items if i.state is ItemState.PENDING)
    lead = "Reminder: " if notice.reminder else ""
    text = (
        f"{lead}Access review {escape(view.campaign.name)}: {undecided} of your {len(view.items)} bindings to review "
        f"are undecided (due {_when(view.campaign.due_at)})."
    )
    return fallback(text), reviewer_blocks(view, reminder=notice.reminder)


def progress_message(facts: CampaignFacts) -> Rendered:
    """The campaign's channel message: what it covers, who reviews, how far it got, what was left alone."""
    c, o = facts.campaign, facts.outcome
    state = (
        f"closed {_when(c.closed_at)}" if c.closed_at is not None else f"due {_when(c.due_at)} ({_left(c, facts.now)})"
    )
    by = user(c.created_by) if c.created_by.startswith(("U", "W")) and c.created_by.isalnum() else code(c.created_by)
    scope = c.scope
    head = (
        f":mag: *Access review {escape(c.name)}* — started by {by}, {state}.\n"
        f"Roles {', '.join(code(r) for r in scope.roles)} on {', '.join(code(t) for t in scope.targets)} "
        f"({scope.subjects.value}); undecided bindings are {_TIMEOUT_WORDS[c.on_timeout]}."
    )
    counts = (
        f"*{o.decided} of {o.total} decided* · kept {o.kept} · converted {o.converted} · removed {o.removed} · "
        f"undecided {o.undecided}"
    )
    extra = []
    if o.to_apply:
        extra.append(f"{o.to_apply} decided to remove or convert, not applied yet (`accessbot review plan {c.name}`)")
    if o.skipped:
        extra.append(f"{o.skipped} left alone because they changed in Rancher")
    if o.undone:
        extra.append(f"{o.undone} restored by an undo")
    if facts.reviewers:
        extra.append(f"{facts.reviewers} reviewer{'s' if facts.reviewers != 1 else ''} asked")
    if facts.unassigned:
        extra.append(f"{facts.unassigned} with no linked reviewer (admins decide them)")
    if c.excluded:
        extra.append(f"{c.excluded} managed by Rancher for a global role, left out")
    blocks = [section(head), section(counts)]
    if extra:
        blocks.append(context(" · ".join(extra)))  # campaign names are letters, digits, `.`, `_`, `-` only
    if facts.skipped:
        lines = [f"• {code(i.binding.id)} ({escape(i.target_name)}): {escape(i.note)}" for i in facts.skipped[:10]]
        blocks.append(section("*Left alone (changed in Rancher since the review's read):*\n" + "\n".join(lines)))
    text = f"Access review {escape(c.name)}: {o.decided} of {o.total} decided ({state})."
    return fallback(text), blocks


def converted_text(notice: AccessConverted) -> str:
    """The DM to a holder whose standing binding a review converted: how to request it from now on."""
    item = notice.item
    whose = "Your" if not item.holder.is_group else f"Group {code(item.holder.name)}'s"
    rule = f" under rule {code(notice.rule)}" if notice.rule else ""
    return (
        f":hourglass: {whose} standing *{escape(item.role_name)}* on *{escape(item.target_name)}* was converted to "
        f"time-boxed access by access review {code(notice.campaign)}: the standing binding was removed. When you need "
        f"it, request it for a while{rule}: `/access request {escape(notice.target)} {escape(item.binding.role_id)} "
        "for 1h because …`"
    )


def reason_modal(callback_id: str, title: str, intro: str, submit: str, metadata: str) -> Block:
    """A form asking for a reason (3 to 500 characters)."""
    return {
        "type": "modal",
        "callback_id": callback_id,
        "title": plain(title, 24),
        "submit": plain(submit, 24),
        "close": plain("Cancel", 24),
        "private_metadata": metadata[:MAX_METADATA],
        "blocks": [
            section(intro),
            reason_input(),
        ],
    }


def keep_modal(item: ReviewItem, metadata: str) -> Block:
    """Keep asks why; the reason is kept with the decision and in the audit log."""
    intro = f"Keep {item_line(item).splitlines()[0]} on *{escape(item.target_name)}*? It stays until the next review."
    return reason_modal(KEEP_CALLBACK, "Keep standing access", intro, "Keep", metadata)


def bulk_modal(verdict: Verdict, undecided: int, metadata: str) -> Block:
    """Keep all or convert all undecided bindings, with one reason."""
    word = "Keep" if verdict is Verdict.KEEP else "Convert"
    intro = (
        f"{word} all {undecided} undecided binding{'s' if undecided != 1 else ''} of yours in this review, with one "
        "reason?" + (" Bindings no rule would let the holder request are left undecided." if word == "Convert" else "")
    )
    return reason_modal(BULK_CALLBACK, f"{word} all undecided", intro, f"{word} all", metadata)


def bulk_reply(decided: int, verdict: Verdict, refused: Sequence[tuple[ReviewItem, str]]) -> str:
    """What a bulk decision did."""
    word = "kept" if verdict is Verdict.KEEP else "marked for conversion"
    text = f":white_check_mark: {decided} binding{'s' if decided != 1 else ''} {word}."
    if refused:
        lines = [
            f"• {code(i.binding.id)} ({escape(i.target_name)}): {escape(clip(why, 300))}" for i, why in refused[:10]
        ]
        more = f"\n…and {len(refused) - 10} more" if len(refused) > 10 else ""
        text += f"\n{len(refused)} could not be converted and stay undecided:\n" + "\n".join(lines) + more
    return clip(text, 3000)


def started_reply(name: str, items: int, reviewers: int, unassigned: int, excluded: int) -> str:
    """The answer to `/access review start`."""
    text = (
        f":mag: Access review {code(name)} started: {items} standing binding{'s' if items != 1 else ''}, "
        f"{reviewers} reviewer{'s' if reviewers != 1 else ''} asked by DM."
    )
    if unassigned:
        text += f" {unassigned} {'has' if unassigned == 1 else 'have'} no linked reviewer: admins decide them."
    if excluded:
        text += f" {excluded} managed by Rancher for a global role were left out."
    return text


def nothing_to_review() -> str:
    """`/access review` when nothing awaits the caller."""
    return ":white_check_mark: No access review awaits you."


def home_section(awaiting: Sequence[tuple[Campaign, int]], view: ReviewerItems | None) -> list[Block]:
    """App Home "Reviews awaiting you": each campaign with its undecided count, and the first few undecided items
    of the first one with their buttons."""
    if not awaiting:
        return []
    total = sum(n for _, n in awaiting)
    blocks: list[Block] = [section(f"*Reviews awaiting you* ({total} undecided)")]
    lines = [f"• {code(c.name)}: {n} undecided, due {_when(c.due_at)}" for c, n in awaiting[:5]]
    blocks.append(section("\n".join(lines)))
    if view is not None:
        undecided = [i for i in view.items if i.state is ItemState.PENDING]
        for item in undecided[:HOME_ITEMS]:
            blocks.append(section(f"*{escape(item.target_name)}* · {item_line(item)}"))
            blocks.append(_buttons(item, 0))
        if len(undecided) > HOME_ITEMS:
            blocks.append(
                context(f"…and {len(undecided) - HOME_ITEMS} more: see the DM from the bot, or `/access review`")
            )
    return blocks
