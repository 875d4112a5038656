"""Slack listeners for access reviews: `/access review [start …]`, the Keep / Convert / Remove buttons, paging, the
bulk buttons and the reason forms, in a DM, an ephemeral reply or the App Home.

A click carries an item or campaign number (and a page): who may decide is read from the database by the review
services. A form keeps those numbers and the clicked message's response_url in its private_metadata; everything in
it is re-checked when the form comes back (numbers only, a response_url only on Slack's hooks host or the Web API's
own), so forged metadata can change nothing it could not change by clicking.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.core import commands
from bot.core.errors import UpstreamError, UserError, is_number
from bot.core.review_notices import ReviewerItems
from bot.core.reviews import ItemState, Verdict
from bot.services.reviews.decisions import MIN_KEEP_REASON, visible_length
from bot.slack import access, forms, messages
from bot.slack import review_blocks as rb
from bot.slack.context import Caller, Reply, SlackDeps

log = logging.getLogger(__name__)
MAX_NUMBER = 15


# --- the command --------------------------------------------------------------------------------------------


async def on_review(deps: SlackDeps, caller: Caller, cmd: commands.Review) -> Reply:
    """`/access review`: the caller's items of the first review awaiting them; `review start …` for admins."""
    reviews = deps.reviews
    if cmd.start is not None:
        reviews.directory.require_admin(caller.user_id)
        report = await reviews.campaigns.start(cmd.start, actor=caller.user_id)
        return Reply(rb.started_reply(report.campaign.name, report.items, report.reviewers, report.unassigned,
                                      report.excluded))  # fmt: skip
    reviews.directory.identity(caller.user_id)
    awaiting = reviews.directory.awaiting(caller.user_id)
    if not awaiting:
        return Reply(rb.nothing_to_review())
    view = reviews.directory.reviewer_view(awaiting[0][0], caller.user_id)
    text = messages.fallback(f"Access review {view.campaign.name}: your bindings to review.")
    return Reply(text, rb.reviewer_blocks(view))


# --- reading clicks and forms ---------------------------------------------------------------------------------


def _number(text: str) -> int | None:
    value = text.strip()
    return int(value) if is_number(value) and len(value) <= MAX_NUMBER else None


def _pair(value: str) -> tuple[int, int] | None:
    """`A:B` with two numbers (an item or campaign, and a page), else None."""
    left, sep, right = value.partition(":")
    first, second = _number(left), _number(right) if sep else 0
    return (first, second) if first is not None and second is not None else None


def _user_of(body: dict[str, Any]) -> str:
    return str((body.get("user") or {}).get("id", ""))


def _clicked(body: dict[str, Any]) -> tuple[str, str]:
    actions = body.get("actions") or [{}]
    first = actions[0] if isinstance(actions[0], dict) else {}
    return _user_of(body), str(first.get("value", ""))[:64]


def _clicked_pair(body: dict[str, Any]) -> tuple[int, int]:
    """The (item or campaign, page) a review button carries; UserError for any other value."""
    pair = _pair(_clicked(body)[1])
    if pair is None:
        raise UserError("that button is not one of the bot's")
    return pair


def _in_home(body: dict[str, Any]) -> bool:
    return (body.get("view") or {}).get("type") == "home"


def _failure(err: Exception, deps: SlackDeps) -> str:
    if isinstance(err, UserError):
        return messages.user_error(err, deps.command)
    if isinstance(err, UpstreamError):
        return messages.upstream_error(err)
    log.exception("a review click failed", exc_info=err)
    return messages.internal_error("review")


def safe_response_url(url: object, origins: tuple[str, ...]) -> str:
    """The response_url kept in a form, when it points at one of `origins` (Slack's hooks host, the Web API's own
    host); else ""."""
    if not isinstance(url, str) or len(url) > 2000:
        return ""
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    return url if parts.scheme in ("https", "http") and origin in origins else ""


def _metadata(text: object) -> dict[str, Any]:
    try:
        value = json.loads(str(text or "{}")[: rb.MAX_METADATA + 100])
    except (ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def _meta_number(meta: dict[str, Any], key: str) -> int | None:
    value = meta.get(key)
    return _number(str(value)) if isinstance(value, int | str) and not isinstance(value, bool) else None


async def _say(respond: AsyncRespond, text: str, blocks: list[dict[str, Any]] | None = None, *, replace: bool) -> None:
    try:
        await respond(text=text, blocks=blocks, replace_original=replace, response_type="ephemeral")
    except Exception:
        log.exception("could not answer through response_url")


async def _dm(client: Any, user_id: str, text: str) -> None:
    """Tell the person who submitted a form something (a view submission has no response_url of its own)."""
    try:
        await client.chat_postMessage(channel=user_id, text=text)
    except Exception:
        log.warning("could not DM %s", user_id, exc_info=True)


async def _tell(body: dict[str, Any], respond: AsyncRespond, client: Any, text: str) -> None:
    """Answer a click only the clicker sees: in place of a message, or by DM from the App Home (no response_url)."""
    if _in_home(body):
        await _dm(client, _user_of(body), text)
    else:
        await _say(respond, text, replace=False)


def register(app: AsyncApp, deps: SlackDeps) -> None:
    """Attach the review buttons and forms."""
    reviews = deps.reviews

    async def page_view(campaign_id: int, user_id: str, page: int) -> ReviewerItems:
        campaign = reviews.directory.campaign_by_id(campaign_id)
        return reviews.directory.reviewer_view(campaign, user_id, page)

    async def show(
        *,
        campaign_id: int,
        user_id: str,
        page: int,
        respond: AsyncRespond | None,
        client: Any,
        home: bool,
        url: str = "",
    ) -> None:
        """Show the reviewer's page again where they clicked: the message (response_url) or the App Home."""
        if home:
            if client is not None:
                await client.views_publish(user_id=user_id, view=await access.home_view(deps, user_id))
            return
        view = await page_view(campaign_id, user_id, page)
        blocks, text = rb.reviewer_blocks(view), messages.fallback(f"Access review {view.campaign.name}")
        if respond is not None:
            await _say(respond, text, blocks, replace=True)
        elif url:
            try:
                await AsyncWebhookClient(url).send(text=text, blocks=blocks, replace_original=True)
            except Exception:
                log.warning("could not update the review message", exc_info=True)

    def on_click(action_id: str, run: Callable[[dict[str, Any], AsyncRespond, Any], Awaitable[None]]) -> None:
        """Acknowledge a click of `action_id` at once, then run its work."""

        async def clicked(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, client: Any) -> None:
            await ack()
            await run(body, respond, client)

        app.action(action_id)(clicked)

    async def decide(body: dict[str, Any], respond: AsyncRespond, client: Any, verdict: Verdict) -> None:
        user_id, home = _user_of(body), _in_home(body)
        try:
            pair = _clicked_pair(body)
            outcome = await reviews.decisions.decide(pair[0], user_id, verdict)
        except Exception as err:
            await _tell(body, respond, client, _failure(err, deps))
            return
        await show(campaign_id=outcome.campaign.id, user_id=user_id, page=pair[1], respond=respond, client=client,
                   home=home)  # fmt: skip

    async def turn_page(body: dict[str, Any], respond: AsyncRespond, client: Any) -> None:
        try:
            pair = _clicked_pair(body)
            await show(campaign_id=pair[0], user_id=_user_of(body), page=pair[1], respond=respond, client=client,
                       home=_in_home(body))  # fmt: skip
        except Exception as err:
            await _tell(body, respond, client, _failure(err, deps))

    async def open_form(body: dict[str, Any], respond: AsyncRespond, client: Any, view: dict[str, Any]) -> None:
        try:  # the trigger lives three seconds: the form opens before anything slow
            await client.views_open(trigger_id=str(body.get("trigger_id") or ""), view=view)
        except SlackApiError:
            log.warning("could not open a review form", exc_info=True)
            await _tell(body, respond, client, ":warning: The form did not open; please click again.")

    def form_metadata(body: dict[str, Any], **numbers: int) -> str:
        url = "" if _in_home(body) else str(body.get("response_url") or "")[:2000]
        return json.dumps({**numbers, "home": _in_home(body), "url": url})

    async def ask_keep_reason(body: dict[str, Any], respond: AsyncRespond, client: Any) -> None:
        try:
            pair = _clicked_pair(body)
            item = reviews.decisions.decidable(pair[0], _user_of(body))  # shown only to who may decide it; re-checked
        except UserError as err:
            await _tell(body, respond, client, _failure(err, deps))
            return
        metadata = form_metadata(body, item=item.id, page=pair[1])
        await open_form(body, respond, client, rb.keep_modal(item, metadata))

    async def bulk(body: dict[str, Any], respond: AsyncRespond, client: Any, verdict: Verdict) -> None:
        user_id, value = _clicked(body)
        campaign_id = _number(value)
        try:
            if campaign_id is None:
                raise UserError("that button is not one of the bot's")
            view = await page_view(campaign_id, user_id, 0)
        except UserError as err:
            await _tell(body, respond, client, _failure(err, deps))
            return
        undecided = sum(1 for i in view.items if i.state is ItemState.PENDING)
        metadata = form_metadata(body, campaign=campaign_id, verdict=1 if verdict is Verdict.KEEP else 2)
        await open_form(body, respond, client, rb.bulk_modal(verdict, undecided, metadata))

    on_click(rb.CONVERT, lambda body, respond, client: decide(body, respond, client, Verdict.CONVERT))
    on_click(rb.REMOVE, lambda body, respond, client: decide(body, respond, client, Verdict.REMOVE))
    on_click(rb.PAGE, turn_page)
    on_click(rb.KEEP, ask_keep_reason)
    on_click(rb.KEEP_ALL, lambda body, respond, client: bulk(body, respond, client, Verdict.KEEP))
    on_click(rb.CONVERT_ALL, lambda body, respond, client: bulk(body, respond, client, Verdict.CONVERT))

    def reason_of(body: dict[str, Any]) -> str:
        values: dict[str, Any] = ((body.get("view") or {}).get("state") or {}).get("values") or {}
        block = values.get(forms.REASON_BLOCK) or {}
        field = block.get(forms.VALUE_ACTION) if isinstance(block, dict) else None
        return str((field or {}).get("value") or "").strip() if isinstance(field, dict) else ""

    async def check_reason(ack: AsyncAck, reason: str) -> bool:
        if not (visible_length(reason) >= MIN_KEEP_REASON and len(reason) <= commands.MAX_REASON):
            await ack(
                response_action="errors",
                errors={
                    forms.REASON_BLOCK: f"{MIN_KEEP_REASON} visible characters or more, {commands.MAX_REASON} at most."
                },
            )
            return False
        await ack()
        return True

    async def submitted(ack: AsyncAck, body: dict[str, Any]) -> tuple[str, str, dict[str, Any]] | None:
        """(submitter, reason, form metadata) of a reason form; None when the reason was refused in the form."""
        reason = reason_of(body)
        if not await check_reason(ack, reason):
            return None
        return _user_of(body), reason, _metadata((body.get("view") or {}).get("private_metadata"))

    @app.view(rb.KEEP_CALLBACK)
    async def on_keep_reason(ack: AsyncAck, body: dict[str, Any], client: Any) -> None:
        form = await submitted(ack, body)
        if form is None:
            return
        user_id, reason, meta = form
        item_id, page = _meta_number(meta, "item"), _meta_number(meta, "page") or 0
        home = meta.get("home") is True
        try:
            if item_id is None:
                raise UserError("that form is not one of the bot's")
            outcome = await reviews.decisions.decide(item_id, user_id, Verdict.KEEP, reason)
        except Exception as err:
            await _dm(client, user_id, _failure(err, deps))
            return
        await show(campaign_id=outcome.campaign.id, user_id=user_id, page=page, respond=None, client=client,
                   home=home, url=safe_response_url(meta.get("url"), deps.response_origins))  # fmt: skip

    @app.view(rb.BULK_CALLBACK)
    async def on_bulk_reason(ack: AsyncAck, body: dict[str, Any], client: Any) -> None:
        form = await submitted(ack, body)
        if form is None:
            return
        user_id, reason, meta = form
        campaign_id, code = _meta_number(meta, "campaign"), _meta_number(meta, "verdict")
        verdict = {1: Verdict.KEEP, 2: Verdict.CONVERT}.get(code or 0)
        try:
            if campaign_id is None or verdict is None:
                raise UserError("that form is not one of the bot's")
            outcome = await reviews.decisions.decide_all(campaign_id, user_id, verdict, reason)
        except Exception as err:
            await _dm(client, user_id, _failure(err, deps))
            return
        await _dm(client, user_id, rb.bulk_reply(outcome.decided, verdict, outcome.refused))
        url = safe_response_url(meta.get("url"), deps.response_origins)
        await show(campaign_id=campaign_id, user_id=user_id, page=0, respond=None, client=client,
                   home=meta.get("home") is True, url=url)  # fmt: skip
