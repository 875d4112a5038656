"""Slack listeners for grants: request (command and modal), grants, revoke, extend, who, rules, and the buttons."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.core import commands
from bot.core.durations import parse_duration
from bot.core.errors import UpstreamError, UserError
from bot.slack import access, access_blocks, forms, messages
from bot.slack import grant_blocks as gb
from bot.slack.context import Caller, Reply, SlackDeps

log = logging.getLogger(__name__)

OPTIONS_BUDGET = 2.5
"""Seconds the options loader may take: Slack gives a block_suggestion three seconds (the rest is the network)."""


def _forget(tasks: set[asyncio.Task[Any]]) -> Any:
    def done(task: asyncio.Task[Any]) -> None:
        tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("loading request options failed: %s", type(task.exception()).__name__)

    return done


# --- commands -----------------------------------------------------------------------------------------------


async def on_request(deps: SlackDeps, caller: Caller, cmd: commands.Request) -> Reply | None:
    """`/access request TARGET ROLE …`, or the request form when no target is given."""
    svc = deps.grants.requests
    if cmd.interactive:
        await _open_form(deps, caller)
        return None
    outcome = await svc.request(
        caller.user_id, cmd.target, cmd.role, cmd.duration, cmd.reason, cmd.ticket, break_glass=cmd.break_glass
    )
    text, blocks = gb.request_reply(outcome)
    return Reply(text, blocks)


async def _open_form(deps: SlackDeps, caller: Caller) -> None:
    """Open the form at once with a loading view (a trigger_id lives three seconds), then fill it in.

    api.slack.com/docs/triggers: triggers expire in three seconds and work once; Rancher may take longer than
    that on a cold cache, so nothing slow runs before views.open.
    """
    deps.grants.directory.identity(caller.user_id)  # local: unlinked people get the usual answer, not a form
    usage = f"use {commands.usage('request', deps.command)}"
    if caller.client is None or not caller.trigger_id:
        raise UserError("the request form cannot be opened here", usage)
    try:
        opened = await caller.client.views_open(trigger_id=caller.trigger_id, view=forms.loading_modal())
    except SlackApiError as err:
        log.warning("views.open failed: %s", err.response.get("error") if err.response is not None else err)
        raise UserError("Slack did not open the request form (it waits three seconds at most)", usage) from None
    view_id = str((opened.get("view") or {}).get("id") or "")
    try:
        view = forms.request_modal(await deps.grants.requests.options_for(caller.user_id))
    except (UserError, UpstreamError) as err:
        view = forms.problem_modal(_failure_text(err, deps))
    try:
        await caller.client.views_update(view_id=view_id, view=view)
    except SlackApiError:
        log.warning("could not fill in the request form", exc_info=True)


async def on_grants(deps: SlackDeps, caller: Caller, cmd: commands.Grants) -> Reply:
    """`/access grants [all]`."""
    grants = deps.grants.queries.list_grants(caller.user_id, all=cmd.all)
    facts = [await deps.grants.directory.facts_of(g) for g in grants]
    text, blocks = gb.grants_list(facts, everyone=cmd.all)
    return Reply(text, blocks)


async def on_revoke(deps: SlackDeps, caller: Caller, cmd: commands.Revoke) -> Reply:
    """`/access revoke GRANT_ID`."""
    grant = await deps.grants.lifecycle.revoke_by(caller.user_id, cmd.grant_id, cmd.reason)
    return Reply(f"{messages.code(grant.id)} is now {gb.state_word(grant.state)}.")


async def on_extend(deps: SlackDeps, caller: Caller, cmd: commands.Extend) -> Reply:
    """`/access extend GRANT_ID DURATION`."""
    outcome = await deps.grants.extensions.extend(caller.user_id, cmd.grant_id, cmd.duration)
    return Reply(gb.extend_reply(outcome))


async def on_who(deps: SlackDeps, caller: Caller, cmd: commands.Who) -> Reply:
    """`/access who TARGET` (approvers and admins)."""
    text, blocks = access_blocks.who_reply(await deps.grants.queries.who(caller.user_id, cmd.target))
    return Reply(text, blocks)


async def on_rules(deps: SlackDeps, caller: Caller, cmd: commands.Rules) -> Reply:
    """`/access rules`."""
    text, blocks = gb.rules_reply(await deps.grants.queries.rules_for(caller.user_id))
    return Reply(text, blocks)


# --- buttons, the form --------------------------------------------------------------------------------------


def _failure_text(err: Exception, deps: SlackDeps) -> str:
    if isinstance(err, UserError):
        return messages.user_error(err, deps.command)
    if isinstance(err, UpstreamError):
        return messages.upstream_error(err)
    return messages.internal_error("grants")


async def _say(respond: AsyncRespond, text: str, blocks: list[dict[str, Any]] | None = None, *, replace: bool) -> None:
    try:
        await respond(text=text, blocks=blocks, replace_original=replace, response_type="ephemeral")
    except Exception:
        log.exception("could not answer through response_url")


def _clicked(body: dict[str, Any]) -> tuple[str, str]:
    """(clicker's Slack id, the button's value): the value is only an identifier, authority comes from the DB."""
    user_id = str((body.get("user") or {}).get("id", ""))
    actions = body.get("actions") or [{}]
    return user_id, str(actions[0].get("value", ""))


async def _dm(client: Any, user_id: str, text: str) -> None:
    """Tell the person who submitted a form something (Bolt gives view handlers no response_url)."""
    try:
        await client.chat_postMessage(channel=user_id, text=text)
    except Exception:
        log.warning("could not DM %s", user_id, exc_info=True)


def register(app: AsyncApp, deps: SlackDeps) -> None:
    """Attach the approve/deny/extend buttons, the request form and its option loader."""

    async def decide(body: dict[str, Any], respond: AsyncRespond, decision: str, client: Any = None) -> None:
        user_id, grant_id = _clicked(body)
        if (body.get("view") or {}).get("type") == "home":  # clicked in App Home: no response_url, republish it
            try:
                await deps.grants.approvals.decide(grant_id, user_id, decision)
            except (UserError, UpstreamError):
                log.info("a decision from App Home was refused", exc_info=True)
            if client is not None:
                await client.views_publish(user_id=user_id, view=await access.home_view(deps, user_id))
            return
        try:
            outcome = await deps.grants.approvals.decide(grant_id, user_id, decision)
        except Exception as err:
            if not isinstance(err, UserError | UpstreamError):
                log.exception("approval click failed")
            await _say(respond, _failure_text(err, deps), replace=False)
            return
        if outcome.facts is not None and outcome.status != "unchanged":
            text, blocks = gb.RENDERER.approval(outcome.facts)
            await _say(respond, text, blocks, replace=True)
        else:
            await _say(respond, gb.decision_reply(outcome), replace=False)

    @app.action(gb.APPROVE)
    async def on_approve(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, client: Any) -> None:
        await ack()
        await decide(body, respond, "approve", client)

    @app.action(gb.DENY)
    async def on_deny(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, client: Any) -> None:
        await ack()
        user_id, grant_id = _clicked(body)
        metadata = json.dumps({"grant": grant_id[:40], "response_url": str(body.get("response_url") or "")[:2000]})
        try:  # the trigger lives three seconds: open the reason form before anything slow
            await client.views_open(
                trigger_id=str(body.get("trigger_id") or ""),
                view=forms.deny_modal(grant_id[:40], private_metadata=metadata),
            )
        except SlackApiError:
            log.warning("could not open the deny form for %s", user_id, exc_info=True)
            await _say(
                respond, ":warning: The form for your reason did not open; please click Deny again.", replace=False
            )

    @app.view(forms.DENY_CALLBACK)
    async def on_deny_reason(ack: AsyncAck, body: dict[str, Any], client: Any) -> None:
        user_id = str((body.get("user") or {}).get("id", ""))
        view = body.get("view") or {}
        values: dict[str, Any] = (view.get("state") or {}).get("values") or {}
        reason = str(((values.get(forms.REASON_BLOCK) or {}).get(forms.VALUE_ACTION) or {}).get("value") or "").strip()
        if not 3 <= len(reason) <= commands.MAX_REASON:
            await ack(
                response_action="errors",
                errors={forms.REASON_BLOCK: f"Between 3 and {commands.MAX_REASON} characters."},
            )
            return
        try:
            meta = json.loads(str(view.get("private_metadata") or "{}"))
        except ValueError:
            meta = {}
        meta = meta if isinstance(meta, dict) else {}
        await ack()
        try:
            outcome = await deps.grants.approvals.decide(str(meta.get("grant") or ""), user_id, "deny", reason)
        except Exception as err:
            if not isinstance(err, UserError | UpstreamError):
                log.exception("deny from the form failed")
            await _dm(client, user_id, _failure_text(err, deps))
            return
        url = str(meta.get("response_url") or "")
        if outcome.facts is not None and outcome.status != "unchanged" and url.startswith(("https://", "http://")):
            text, blocks = gb.RENDERER.approval(outcome.facts)
            try:
                await AsyncWebhookClient(url).send(text=text, blocks=blocks, replace_original=True)
            except Exception:
                log.warning("could not update the message Deny was clicked in", exc_info=True)
        elif outcome.status == "unchanged":
            await _dm(client, user_id, gb.decision_reply(outcome))

    @app.action(gb.EXTEND)
    async def on_extend_button(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        user_id, grant_id = _clicked(body)
        try:
            outcome = await deps.grants.extensions.extend_default(user_id, grant_id)
        except Exception as err:
            await _say(respond, _failure_text(err, deps), replace=False)
            return
        await _say(respond, gb.extend_reply(outcome), replace=False)

    async def decide_extension(body: dict[str, Any], respond: AsyncRespond, decision: str) -> None:
        user_id, ref = _clicked(body)
        try:
            outcome = await deps.grants.extensions.decide_extension(ref, user_id, decision)
        except Exception as err:
            await _say(respond, _failure_text(err, deps), replace=False)
            return
        if outcome.status in ("extended", "denied"):
            verb = "approved" if outcome.status == "extended" else "denied"
            line = f"Extension of {messages.code(outcome.grant.id)} {verb} by <@{user_id}>. {gb.extend_reply(outcome)}"
            await _say(respond, line, replace=True)
        else:
            await _say(respond, gb.extend_reply(outcome), replace=False)

    @app.action(gb.EXT_APPROVE)
    async def on_ext_approve(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        await decide_extension(body, respond, "approve")

    @app.action(gb.EXT_DENY)
    async def on_ext_deny(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        await decide_extension(body, respond, "deny")

    loading: set[asyncio.Task[Any]] = set()  # option loads that outlived their answer: they warm the cache

    @app.options(forms.CHOICE_ACTION)
    async def on_options(ack: AsyncAck, body: dict[str, Any]) -> None:
        user_id = str((body.get("user") or {}).get("id", ""))
        task = asyncio.ensure_future(deps.grants.requests.options_for(user_id))
        loading.add(task)
        task.add_done_callback(_forget(loading))
        try:
            options = await asyncio.wait_for(asyncio.shield(task), OPTIONS_BUDGET)
        except TimeoutError:  # Slack waits three seconds: answer with what there is, keep loading for the next key
            log.info("request options not ready within %.1f s; answering empty", OPTIONS_BUDGET)
            await ack(options=[])
            return
        except Exception:
            log.warning("could not load request options", exc_info=True)
            await ack(options=[])
            return
        groups = forms.option_groups(options, str(body.get("value", ""))[: forms.MAX_QUERY])
        if groups:
            await ack(option_groups=groups)
        else:
            await ack(options=[])

    @app.view(forms.REQUEST_CALLBACK)
    async def on_submit(ack: AsyncAck, body: dict[str, Any], client: Any) -> None:
        user_id = str((body.get("user") or {}).get("id", ""))
        values: dict[str, Any] = ((body.get("view") or {}).get("state") or {}).get("values") or {}

        def text_of(block: str) -> str:
            return str(((values.get(block) or {}).get(forms.VALUE_ACTION) or {}).get("value") or "").strip()

        choice = ((values.get(forms.CHOICE_BLOCK) or {}).get(forms.CHOICE_ACTION) or {}).get("selected_option") or {}
        errors: dict[str, str] = {}
        try:
            target, role, break_glass = forms.parse_option_value(str(choice.get("value", "")))
        except ValueError:
            errors[forms.CHOICE_BLOCK] = "Choose what you need."
            target, role, break_glass = "", "", False
        duration = None
        if text_of(forms.DURATION_BLOCK):
            try:
                duration = parse_duration(text_of(forms.DURATION_BLOCK))
            except UserError as err:
                errors[forms.DURATION_BLOCK] = f"{err.message}: {err.hint}"[:150]
        reason = text_of(forms.REASON_BLOCK)
        if len(reason) > commands.MAX_REASON:
            errors[forms.REASON_BLOCK] = f"At most {commands.MAX_REASON} characters."
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        try:
            outcome = await deps.grants.requests.request(
                user_id, target, role, duration, reason, text_of(forms.TICKET_BLOCK), break_glass=break_glass
            )
            text, blocks = gb.request_reply(outcome)
        except Exception as err:
            if not isinstance(err, UserError | UpstreamError):
                log.exception("request from the form failed")
            text, blocks = _failure_text(err, deps), []
        try:
            await client.chat_postMessage(channel=user_id, text=text, blocks=blocks or None)
        except Exception:
            log.exception("could not tell the requester the outcome of the form")
