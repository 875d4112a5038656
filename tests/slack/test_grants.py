"""Grants over Slack: signed commands, button clicks and the request form against the Rancher emulator."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from accessbot_emulators.rancher import RancherEmulator
from accessbot_emulators.slack import block_actions_payload, interaction_body, view_submission_payload
from bot.core.model import Grant, GrantState, Target
from bot.core.storage import Storage
from bot.slack import forms
from bot.slack import grant_blocks as gb
from tests import factories
from tests.conftest import ALICE, APPROVALS, BOB, BOT_KEY, CAROL, EVIL, LABEL, SUBJECTS, TEAM, RunningBot, wait_until


def _tagged(rancher: RancherEmulator, grant_id: str) -> list[dict[str, Any]]:
    out = []
    for kind in ("clusterRoleTemplateBinding", "projectRoleTemplateBinding"):
        out += [b for b in rancher.objects(kind) if (b.get("labels") or {}).get(LABEL) == grant_id]
    return out


def _grants(bot: RunningBot, user: str) -> list[Any]:
    store: Storage = bot.store()
    try:
        return store.grants.find(slack_user=user)
    finally:
        store.database.close()


def _outbox(bot: RunningBot, key: str) -> Any:
    store: Storage = bot.store()
    try:
        return store.outbox.get(key)
    finally:
        store.database.close()


def _click(bot: RunningBot, user: str, action_id: str, value: str) -> tuple[int, str, str, int]:
    """Click a button in the approvals channel; return the status, the response key, the body and its timestamp."""
    key = uuid.uuid4().hex[:10]
    payload = block_actions_payload(
        user, action_id, value, response_url=bot.slack.response_url(key), channel_id=APPROVALS
    )
    body = interaction_body(payload)
    timestamp = int(time.time())
    return bot.post_signed(body, timestamp=timestamp).status_code, key, body, timestamp


def test_self_service_command_creates_one_tagged_binding(gbot: RunningBot, rancher: RancherEmulator) -> None:
    """`/access request dev-eu/payments project-member for 2h` answers active and makes one tagged binding."""
    reply = gbot.ask(ALICE, "request dev-eu/payments project-member for 2h")
    assert "is active" in reply.text, reply.text
    (grant,) = _grants(gbot, ALICE)
    assert grant.state is GrantState.ACTIVE
    assert len(_tagged(rancher, grant.id)) == 1
    assert reply.response_type == "ephemeral"


def test_request_over_the_maximum_is_refused_with_the_limit(gbot: RunningBot) -> None:
    """A 12h request under the 8h rule is refused and the reply names the maximum."""
    reply = gbot.ask(ALICE, "request dev-eu/payments project-member for 12h")
    assert "denied" in reply.text
    assert "8h maximum" in json.dumps(reply.blocks)
    assert _grants(gbot, ALICE) == []


def test_approval_by_button_with_escaped_reason_and_idempotent_clicks(
    gbot: RunningBot, rancher: RancherEmulator
) -> None:
    """Bob approves once; a double click and a replayed click change nothing; the reason shows escaped."""
    reply = gbot.ask(ALICE, f"request prod-eu/checkout project-member for 1h because {EVIL}")
    assert "needs 1 approval" in reply.text, reply.text
    (grant,) = _grants(gbot, ALICE)
    posted = _outbox(gbot, f"approval:{grant.id}:post")
    dumped = json.dumps(posted.payload)
    assert "<!channel>" not in dumped
    assert "<https://evil|x>" not in dumped
    assert "&lt;!channel&gt;" in dumped
    assert "&lt;https://evil|x&gt;" in dumped
    assert posted.channel == APPROVALS

    status, key, body, signed_at = _click(gbot, BOB, gb.APPROVE, grant.id)
    assert status == 200
    response = gbot.slack.wait_for(lambda: (gbot.slack.responses(key) or [None])[-1])
    assert response.replace_original
    assert f"approved by <@{BOB}>" in json.dumps(response.blocks)
    wait_until(lambda: _grants(gbot, ALICE)[0].state is GrantState.ACTIVE)
    assert len(_tagged(rancher, grant.id)) == 1

    status2, key2, _, _ = _click(gbot, BOB, gb.APPROVE, grant.id)
    assert status2 == 200
    again = gbot.slack.wait_for(lambda: (gbot.slack.responses(key2) or [None])[-1])
    assert not again.replace_original
    assert "already" in (again.text or "")
    replay = gbot.post_signed(body, timestamp=signed_at)  # the first click's exact request again
    assert replay.status_code == 401
    time.sleep(0.2)
    assert len(_tagged(rancher, grant.id)) == 1
    store = gbot.store()
    try:
        assert len(store.grants.get(grant.id).approvals) == 1  # type: ignore[union-attr]
    finally:
        store.database.close()


def test_self_approval_by_button_is_refused(gbot: RunningBot) -> None:
    """Bob cannot approve his own request; the click is answered ephemerally and the request stays open."""
    gbot.ask(BOB, "request prod-eu/checkout project-member because deploy")
    (grant,) = _grants(gbot, BOB)
    status, key, _, _ = _click(gbot, BOB, gb.APPROVE, grant.id)
    assert status == 200
    response = gbot.slack.wait_for(lambda: (gbot.slack.responses(key) or [None])[-1])
    assert "cannot approve your own request" in (response.text or "")
    assert not response.replace_original
    assert _grants(gbot, BOB)[0].state is GrantState.REQUESTED


def test_deny_asks_for_a_reason_and_the_requester_reads_who_and_why(gbot: RunningBot, rancher: RancherEmulator) -> None:
    """Carol's Deny opens a reason form; submitting it ends the request, edits the card, DMs Alice who and why."""
    gbot.ask(ALICE, "request prod-eu/checkout project-member because look")
    (grant,) = _grants(gbot, ALICE)
    _, key, _, _ = _click(gbot, CAROL, gb.DENY, grant.id)
    form = gbot.slack.wait_for(
        lambda: next((v for v in gbot.slack.views("modal") if v.view.get("callback_id") == forms.DENY_CALLBACK), None)
    )
    assert _grants(gbot, ALICE)[0].state is GrantState.REQUESTED  # nothing happens before the reason
    short = view_submission_payload(CAROL, forms.DENY_CALLBACK, {forms.REASON_BLOCK: {forms.VALUE_ACTION: "no"}},
                                    private_metadata=str(form.view["private_metadata"]))  # fmt: skip
    refused = gbot.post_signed(interaction_body(short))
    assert refused.json()["response_action"] == "errors"
    payload = view_submission_payload(
        CAROL,
        forms.DENY_CALLBACK,
        {forms.REASON_BLOCK: {forms.VALUE_ACTION: "not during the freeze"}},
        private_metadata=str(form.view["private_metadata"]),
    )
    assert gbot.post_signed(interaction_body(payload)).status_code == 200
    response = gbot.slack.wait_for(lambda: (gbot.slack.responses(key) or [None])[-1])
    assert response.replace_original
    assert f"denied by <@{CAROL}>" in json.dumps(response.blocks)
    assert _grants(gbot, ALICE)[0].state is GrantState.DENIED
    assert _tagged(rancher, grant.id) == []
    dm = gbot.slack.wait_for(lambda: next((m for m in gbot.slack.dms(ALICE) if "denied" in (m.text or "")), None), 10)
    assert f"was denied by <@{CAROL}>: not during the freeze" in (dm.text or "")
    (event,) = gbot.audit("grant.denied")
    assert (event.actor, event.reason) == (CAROL, "not during the freeze")


def test_request_form_opens_and_its_submission_activates(gbot: RunningBot, rancher: RancherEmulator) -> None:
    """A bare `request` opens a modal with a static select; submitting it activates and DMs the outcome."""
    response, _key = gbot.command(ALICE, "request")
    assert response.status_code == 200
    view = gbot.slack.wait_for(lambda: next((v for v in gbot.slack.views("modal") if v.updates), None))
    select = view.blocks[0]["element"]
    assert select["type"] == "static_select"
    values = [o["value"] for g in select["option_groups"] for o in g["options"]]
    choice = next(v for v in values if v.startswith("c-7xk2p:p-4mz8q|project-member"))
    assert sum(len(g["options"]) for g in select["option_groups"]) <= 100
    payload = view_submission_payload(
        ALICE,
        forms.REQUEST_CALLBACK,
        {
            forms.CHOICE_BLOCK: {forms.CHOICE_ACTION: {"type": "static_select", "selected_option": {"value": choice}}},
            forms.DURATION_BLOCK: {forms.VALUE_ACTION: "30m"},
            forms.REASON_BLOCK: {forms.VALUE_ACTION: "debugging"},
            forms.TICKET_BLOCK: {forms.VALUE_ACTION: "OPS-1"},
        },
    )
    assert gbot.post_signed(interaction_body(payload)).status_code == 200
    dm = gbot.slack.wait_for(lambda: (gbot.slack.dms(ALICE) or [None])[-1])
    assert "is active" in (dm.text or "")
    (grant,) = _grants(gbot, ALICE)
    assert grant.ticket == "OPS-1"
    assert grant.duration_s == 1800
    assert len(_tagged(rancher, grant.id)) == 1


def test_bad_duration_in_the_form_is_an_inline_error(gbot: RunningBot) -> None:
    """A duration the bot cannot read is reported on the field and nothing is requested."""
    payload = view_submission_payload(
        ALICE,
        forms.REQUEST_CALLBACK,
        {
            forms.CHOICE_BLOCK: {
                forms.CHOICE_ACTION: {"type": "static_select", "selected_option": {"value": "c-7xk2p|cluster-member|"}}
            },
            forms.DURATION_BLOCK: {forms.VALUE_ACTION: "forever"},
        },
    )
    response = gbot.post_signed(interaction_body(payload))
    assert response.status_code == 200
    body = response.json()
    assert body["response_action"] == "errors"
    assert forms.DURATION_BLOCK in body["errors"]
    assert _grants(gbot, ALICE) == []


def test_grants_extend_and_revoke_commands(gbot: RunningBot, rancher: RancherEmulator) -> None:
    """The holder lists, extends within the cap, is refused past it, and revokes, which deletes the binding."""
    gbot.ask(ALICE, "request dev-eu/payments project-member for 2h")
    (grant,) = _grants(gbot, ALICE)
    listing = gbot.ask(ALICE, "grants")
    assert grant.id in listing.text
    assert "active" in listing.text
    assert "over the 8h maximum" in gbot.ask(ALICE, f"extend {grant.id} 7h").text
    assert "now runs until" in gbot.ask(ALICE, f"extend {grant.id} 1h").text
    assert "now runs until" in gbot.ask(ALICE, f"extend {grant.id} 1h").text  # the demo rule allows two
    assert "already extended" in gbot.ask(ALICE, f"extend {grant.id} 1h").text
    assert "only the holder" in gbot.ask(BOB, f"extend {grant.id} 1h").text
    assert "revoked" in gbot.ask(ALICE, f"revoke {grant.id}").text
    assert [b for b in _tagged(rancher, grant.id) if not b.get("removed")] == []
    assert _grants(gbot, ALICE)[0].state is GrantState.REVOKED


def test_rules_and_who(gbot: RunningBot) -> None:
    """`rules` shows the caller's rules; `who` is for approvers and admins only."""
    rules = gbot.ask(ALICE, "rules")
    assert "dev-self-service" in json.dumps(rules.blocks)
    assert "only approvers and admins" in gbot.ask(ALICE, "who dev-eu").text
    who = gbot.ask(BOB, "who dev-eu")
    assert "Cluster Member" in who.text


def test_grants_all_is_for_approvers_and_admins(gbot: RunningBot) -> None:
    """`grants all` lists everyone's open grants for an approver and refuses a plain requester."""
    gbot.ask(ALICE, "request dev-eu/payments project-member")
    assert "only approvers and admins" in gbot.ask(ALICE, "grants all").text
    listing = gbot.ask(BOB, "grants all")
    assert f"<@{ALICE}>" in listing.text
    assert "g-1" in listing.text


def test_rancher_failure_on_activation_is_reported_and_leaves_no_binding(
    gbot: RunningBot, rancher: RancherEmulator
) -> None:
    """A 500 on create is answered as not finished yet; the grant stays activating and no binding exists."""
    rancher.fail_next("roletemplatebindings", 500, count=1, method="POST")
    reply = gbot.ask(ALICE, "request dev-eu/payments project-member for 1h")
    assert "will be finished shortly" in reply.text, reply.text
    (grant,) = _grants(gbot, ALICE)
    assert grant.state is GrantState.ACTIVATING
    assert grant.binding_name == f"accessbot-{grant.id}"
    assert _tagged(rancher, grant.id) == []


def test_extend_button_adds_the_default_duration(gbot: RunningBot) -> None:
    """The Extend button of the expiry DM extends the holder's grant by the rule's default."""
    gbot.ask(ALICE, "request dev-eu/payments project-member for 2h")
    (grant,) = _grants(gbot, ALICE)
    _, key, _, _ = _click(gbot, ALICE, gb.EXTEND, grant.id)
    response = gbot.slack.wait_for(lambda: (gbot.slack.responses(key) or [None])[-1])
    assert "now runs until" in (response.text or "")
    (after,) = _grants(gbot, ALICE)
    assert after.expires_at == grant.expires_at + 3600
    _, key2, _, _ = _click(gbot, BOB, gb.EXTEND, grant.id)
    refused = gbot.slack.wait_for(lambda: (gbot.slack.responses(key2) or [None])[-1])
    assert "only the holder" in (refused.text or "")


def test_extension_of_an_approved_grant_is_approved_by_button(gbot: RunningBot) -> None:
    """Extending a grant under an approval rule waits for an approver's click, which adds the time once."""
    gbot.ask(ALICE, "request prod-eu/checkout project-member because INC-7")
    (grant,) = _grants(gbot, ALICE)
    _, key, _, _ = _click(gbot, BOB, gb.APPROVE, grant.id)
    gbot.slack.wait_for(lambda: gbot.slack.responses(key))
    wait_until(lambda: _grants(gbot, ALICE)[0].state is GrantState.ACTIVE)
    active = _grants(gbot, ALICE)[0]
    assert "sent to the approvers" in gbot.ask(ALICE, f"extend {grant.id} 30m").text
    posted = _outbox(gbot, f"ext:{grant.id}:0:post")
    assert posted is not None
    assert posted.channel == APPROVALS
    _, key2, _, _ = _click(gbot, CAROL, gb.EXT_APPROVE, f"{grant.id}:0")
    done = gbot.slack.wait_for(lambda: (gbot.slack.responses(key2) or [None])[-1])
    assert done.replace_original
    assert f"approved by <@{CAROL}>" in (done.text or "")
    assert _grants(gbot, ALICE)[0].expires_at == active.expires_at + 1800


def test_option_loader_filters_by_the_typed_text(gbot: RunningBot) -> None:
    """The external_select loader answers with option groups matching what the user typed."""
    payload = {
        "type": "block_suggestion",
        "user": {"id": ALICE, "username": "alice", "name": "alice", "team_id": TEAM},
        "team": {"id": TEAM, "domain": "test"},
        "api_app_id": "A0TEST0001",
        "token": "x",
        "action_id": forms.CHOICE_ACTION,
        "block_id": forms.CHOICE_BLOCK,
        "value": "checkout",
        "view": {"id": "V0TEST", "type": "modal", "callback_id": forms.REQUEST_CALLBACK, "private_metadata": ""},
    }
    response = gbot.post_signed(interaction_body(payload))
    assert response.status_code == 200
    groups = response.json()["option_groups"]
    labels = [o["text"]["text"] for g in groups for o in g["options"]]
    assert labels
    assert all("checkout" in label for label in labels)


def test_grants_channel_gets_one_message_per_grant_edited_in_place(
    make_bot: Callable[..., contextlib.AbstractContextManager[RunningBot]], rancher: RancherEmulator
) -> None:
    """Request, activation and revocation of one grant leave a single grants-channel message, edited in place."""
    rancher.reset()
    with make_bot(
        rancher_url=rancher.url, rancher_token=BOT_KEY, overrides={"schedule": {"outbox_interval": "1s"}}
    ) as bot:
        store = bot.store()
        subject, groups = SUBJECTS[ALICE]
        bot.slack.add_user(ALICE, "alice@example.com", "alice")
        factories.link(store.links, ALICE, subject, groups, now=int(time.time()), email="alice@example.com")
        store.database.close()
        bot.ask(ALICE, "request dev-eu/payments project-member for 1h")
        (grant,) = _grants(bot, ALICE)
        bot.slack.wait_for(lambda: bot.slack.dms(ALICE), timeout=8)
        bot.ask(ALICE, f"revoke {grant.id}")

        def revoked_message() -> Any:
            found = [m for m in bot.slack.messages("CGRANTS001") if grant.id in (m.text or "")]
            return found if found and "revoked" in (found[-1].text or "") else None

        messages = bot.slack.wait_for(revoked_message, timeout=8)
        assert len(messages) == 1
        assert messages[0].edits >= 1


def test_break_glass_from_the_text_command_is_active_and_announced(gbot: RunningBot, rancher: RancherEmulator) -> None:
    """`… breakglass because …` self-approves at once and queues posts to the approvals and security channels."""
    reply = gbot.ask(BOB, "request prod-eu cluster-owner for 30m breakglass because prod is down")
    assert "is active" in reply.text, reply.text
    (grant,) = _grants(gbot, BOB)
    assert grant.break_glass
    assert len(_tagged(rancher, grant.id)) == 1
    for channel in ("approvals", "security"):
        assert _outbox(gbot, f"breakglass:{grant.id}:{channel}") is not None


def test_approvals_card_ends_showing_the_active_grant(
    make_bot: Callable[..., contextlib.AbstractContextManager[RunningBot]], rancher: RancherEmulator
) -> None:
    """After Approve, the approvals card settles on the active grant, not on a stale queued 'approved' update."""
    from tests.conftest import link_users

    rancher.reset()
    with make_bot(
        rancher_url=rancher.url, rancher_token=BOT_KEY, overrides={"schedule": {"outbox_interval": "1s"}}
    ) as bot:
        link_users(bot, SUBJECTS)
        bot.ask(ALICE, "request prod-eu/payments project-member for 1h because INC-42")
        (grant,) = _grants(bot, ALICE)
        card = bot.slack.wait_for(
            lambda: next((m for m in bot.slack.messages(APPROVALS) if grant.id in json.dumps(m.blocks)), None),
            timeout=8,
        )
        key = uuid.uuid4().hex[:10]
        payload = block_actions_payload(
            BOB,
            "grant_approve",
            grant.id,
            response_url=bot.slack.response_url(key, channel=APPROVALS, message_ts=card.ts),
            channel_id=APPROVALS,
            message={"ts": card.ts, "text": card.text or "", "blocks": card.blocks},
        )
        assert bot.post_signed(interaction_body(payload)).status_code == 200

        def settled() -> bool:
            store = bot.store()
            try:
                done = store.grants.get(grant.id)
                return store.outbox.pending_count() == 0 and done is not None and done.state is GrantState.ACTIVE
            finally:
                store.database.close()

        wait_until(settled, timeout=10)
        time.sleep(0.5)
        final = bot.slack.message(card.ts)
        assert final is not None
        assert "active" in (json.dumps(final.blocks) + (final.text or "")).lower()


def test_each_linked_approver_gets_a_dm_with_approve_and_deny(gbot: RunningBot) -> None:
    """A request needing sre approval DMs Bob and Carol (sre) with both buttons; Alice (the requester) gets none."""
    gbot.ask(ALICE, "request prod-eu/checkout project-member because look")
    (grant,) = _grants(gbot, ALICE)
    for approver in (BOB, CAROL):
        dm = gbot.slack.wait_for(lambda a=approver: next(iter(gbot.slack.dms(a)), None), timeout=10)  # type: ignore[misc]
        assert "Your approval is asked" in json.dumps(dm.blocks)
        labels = [e["text"]["text"] for b in dm.blocks if b["type"] == "actions" for e in b["elements"]]
        assert labels == ["Approve", "Deny"]
        assert grant.id in json.dumps(dm.blocks)
    assert not any("Your approval is asked" in json.dumps(m.blocks) for m in gbot.slack.dms(ALICE))


def test_app_home_shows_requests_awaiting_your_approval(gbot: RunningBot) -> None:
    """Carol's Home lists Alice's request under "Awaiting your approval" with Approve/Deny; Alice's does not."""
    from accessbot_emulators.slack import app_home_opened_event, json_body
    from tests.conftest import TEAM

    gbot.ask(ALICE, "request prod-eu/checkout project-member because look")
    (grant,) = _grants(gbot, ALICE)
    for who in (CAROL, ALICE):
        gbot.post_signed(json_body(app_home_opened_event(who, team_id=TEAM)), content_type="application/json")
    carol = wait_until(lambda: gbot.slack.home(CAROL))
    text = json.dumps(carol.blocks)
    assert "Awaiting your approval* (1)" in text
    assert grant.id in text
    assert "grant_approve" in text
    alice = wait_until(lambda: gbot.slack.home(ALICE))
    assert "Awaiting your approval" not in json.dumps(alice.blocks)


def test_revoke_with_a_reason_tells_the_holder_who_and_why(gbot: RunningBot) -> None:
    """An admin revokes Alice's grant with a reason; her DM names the admin and the reason; it is audited."""
    admin = "UADMIN0001"
    gbot.ask(ALICE, "request dev-eu/payments project-member for 2h")
    (grant,) = _grants(gbot, ALICE)
    assert "revoked" in gbot.ask(admin, f"revoke {grant.id} because INC-9 is over").text
    dm = gbot.slack.wait_for(lambda: next((m for m in gbot.slack.dms(ALICE) if "revoked" in (m.text or "")), None), 10)
    assert f"was revoked by <@{admin}>: INC-9 is over" in (dm.text or "")
    (event,) = gbot.audit("grant.revoked")
    assert (event.actor, event.reason) == (admin, "INC-9 is over")


def test_withdrawing_a_pending_request_is_its_own_outcome(gbot: RunningBot) -> None:
    """Alice revoking her own undecided request withdraws it: state withdrawn, audited as such, not a denial."""
    gbot.ask(ALICE, "request prod-eu/checkout project-member because look")
    (grant,) = _grants(gbot, ALICE)
    reply = gbot.ask(ALICE, f"revoke {grant.id}")
    assert "withdrawn" in reply.text
    assert _grants(gbot, ALICE)[0].state is GrantState.WITHDRAWN
    assert gbot.audit("grant.withdrawn")
    assert gbot.audit("grant.denied") == []


def test_once_decided_the_other_approvers_dms_lose_their_buttons(gbot: RunningBot) -> None:
    """Carol approves from the channel; Bob's DM asking for the same approval is edited to the decided card."""
    gbot.ask(ALICE, "request prod-eu/checkout project-member because look")
    (grant,) = _grants(gbot, ALICE)
    gbot.slack.wait_for(lambda: next(iter(gbot.slack.dms(BOB)), None), timeout=10)
    _click(gbot, CAROL, gb.APPROVE, grant.id)

    def decided() -> Any:
        dm = next(iter(gbot.slack.dms(BOB)), None)
        return dm if dm is not None and dm.edits and "grant_approve" not in json.dumps(dm.blocks) else None

    dm = gbot.slack.wait_for(decided, timeout=15)
    assert f"approved by <@{CAROL}>" in json.dumps(dm.blocks)


def test_a_dm_to_a_deactivated_slack_user_is_parked_and_shown_in_metrics(gbot: RunningBot) -> None:
    """Alice deactivated in Slack: the DM about her revoked grant parks (user_disabled), /metrics counts it, the
    grants-channel message still goes out (the real bot, its scheduler and the emulator's conversations.open rule)."""
    now = int(time.time())
    store = gbot.store()
    try:
        grant = factories.grant(
            store,
            Grant(
                id="",
                slack_user=ALICE,
                subject=SUBJECTS[ALICE][0],
                target=Target("c-7xk2p", "c-7xk2p:p-4mz8q"),
                role_id="project-member",
                duration_s=7200,
                rule="dev-self-service",
                state=GrantState.ACTIVE,
                requested_at=now,
                activated_at=now,
                expires_at=now + 7200,
                self_service=True,
            ),
            now=now,
        )
    finally:
        store.database.close()
    gbot.slack.add_user(ALICE, "alice@example.com", "alice", deleted=True)
    try:
        assert "revoked" in gbot.ask("UADMIN0001", f"revoke {grant.id} because she left").text

        def parked() -> Any:
            return "accessbot_outbox_parked 1.0" in gbot.http.get(f"{gbot.url}/metrics").text

        gbot.slack.wait_for(parked, timeout=15, interval=0.3)
        status = gbot.slack.wait_for(
            lambda: next((m for m in gbot.slack.messages("CGRANTS001") if "revoked" in (m.text or "")), None), 10
        )
        assert grant.id in (status.text or "")
        (event,) = gbot.audit("outbox.parked")
        assert event.reason == "user_disabled"
    finally:
        gbot.slack.add_user(ALICE, "alice@example.com", "alice")
