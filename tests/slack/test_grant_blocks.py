"""Pure Block Kit builders for grants: escaping, buttons only while undecided, limits."""

from __future__ import annotations

import json
from datetime import timedelta

from bot.core.model import Approval, Cluster, Grant, GrantState, Project, Target
from bot.core.notices import GrantFacts, HolderEvent
from bot.core.policy import Option, ResolvedTarget, Rule
from bot.services.grants import RequestOutcome
from bot.slack import forms
from bot.slack import grant_blocks as gb

NOW = 1_800_000_000
EVIL = "<!channel> <https://evil|x> & <@U0EVIL>"
RULE = Rule("r", ("eng",), ("project-member",), timedelta(hours=4), timedelta(hours=1))


def _grant(**changes: object) -> Grant:
    base: dict[str, object] = {
        "id": "g-7",
        "slack_user": "U0ALICE001",
        "subject": "sub",
        "target": Target("c-1", "c-1:p-1"),
        "role_id": "project-member",
        "duration_s": 3600,
        "rule": "r",
        "state": GrantState.REQUESTED,
        "requested_at": NOW,
        "reason": EVIL,
        "approvals_required": 1,
        "request_expires_at": NOW + 3600,
    }
    base.update(changes)
    return Grant(**base)  # type: ignore[arg-type]


def _view(grant: Grant) -> GrantFacts:
    return GrantFacts(grant, "prod/<b>", "Project <Member>", NOW, RULE)


def test_approval_message_escapes_reason_and_names() -> None:
    """User text in the approval message is inert: no raw `<!channel>`, link or mention."""
    text, blocks = gb.RENDERER.approval(_view(_grant()))
    dumped = json.dumps(blocks) + text
    assert "<!channel>" not in dumped
    assert "<https://evil|x>" not in dumped
    assert "<@U0EVIL>" not in dumped
    assert "&lt;!channel&gt; &lt;https://evil|x&gt; &amp; &lt;@U0EVIL&gt;" in dumped
    assert "prod/&lt;b&gt;" in dumped


def test_undecided_request_has_approve_and_deny_buttons_carrying_only_the_id() -> None:
    """While requested, the message has Approve/Deny whose value is the grant id."""
    _, blocks = gb.RENDERER.approval(_view(_grant()))
    actions = [b for b in blocks if b["type"] == "actions"]
    assert len(actions) == 1
    buttons = actions[0]["elements"]
    assert [(b["action_id"], b["value"]) for b in buttons] == [(gb.APPROVE, "g-7"), (gb.DENY, "g-7")]


def test_decided_request_shows_who_and_when_without_buttons() -> None:
    """After approval the message names the approver and time and has no buttons."""
    grant = _grant(
        state=GrantState.ACTIVE,
        approvals=(Approval("U0BOB00001", "approve", NOW + 60),),
        activated_at=NOW + 61,
        expires_at=NOW + 3661,
    )
    _, blocks = gb.RENDERER.approval(_view(grant))
    dumped = json.dumps(blocks)
    assert not [b for b in blocks if b["type"] == "actions"]
    assert "approved by <@U0BOB00001>" in dumped
    assert f"<!date^{NOW + 60}^" in dumped


def test_expired_request_says_nobody_decided() -> None:
    """An expired request's message says so."""
    _, blocks = gb.RENDERER.approval(_view(_grant(state=GrantState.EXPIRED_REQUEST)))
    assert "nobody decided" in json.dumps(blocks)


def test_expiring_dm_has_an_extend_button() -> None:
    """The expiry warning offers Extend with the grant id (under a rule that allows one)."""
    grant = _grant(state=GrantState.ACTIVE, activated_at=NOW, expires_at=NOW + 300)
    rule = Rule("r", ("eng",), ("project-member",), timedelta(hours=4), timedelta(hours=1), max_extensions=1)
    _, blocks = gb.RENDERER.dm(GrantFacts(grant, "prod/<b>", "Project <Member>", NOW, rule), HolderEvent.EXPIRING)
    (actions,) = [b for b in blocks if b["type"] == "actions"]
    assert actions["elements"][0]["action_id"] == gb.EXTEND
    assert actions["elements"][0]["value"] == "g-7"


def test_break_glass_mentions_the_approvers() -> None:
    """The break-glass announcement mentions each approver by id."""
    text, blocks = gb.RENDERER.break_glass(_view(_grant(break_glass=True)), ["U0BOB00001", "U0CAROL001"])
    assert "<@U0BOB00001>" in text
    assert "<@U0CAROL001>" in text
    assert "<@U0CAROL001>" in json.dumps(blocks)


def _options(n: int) -> list[Option]:
    cluster = Cluster("c-1", "dev")
    out = []
    for i in range(n):
        target = ResolvedTarget(cluster, Project(f"c-1:p-{i}", f"proj-{i}", "c-1"))
        out.append(
            Option(target, "project-member", "Project Member", RULE, RULE.max_duration, RULE.default_duration,
                   False, 0, False, False)
        )  # fmt: skip
    return out


def test_modal_uses_grouped_static_select_up_to_100_options() -> None:
    """Up to 100 options become a static_select with option groups."""
    view = forms.request_modal(_options(100))
    select = view["blocks"][0]["element"]
    assert select["type"] == "static_select"
    assert sum(len(g["options"]) for g in select["option_groups"]) == 100
    assert view["callback_id"] == forms.REQUEST_CALLBACK


def test_modal_switches_to_external_select_past_100_options() -> None:
    """More than 100 options use a searchable external_select; the loader filters and caps at 100."""
    options = _options(250)
    view = forms.request_modal(options)
    assert view["blocks"][0]["element"]["type"] == "external_select"
    filtered = forms.option_groups(options, "proj-24")
    labels = [o["text"]["text"] for g in filtered for o in g["options"]]
    assert labels
    assert all("proj-24" in label for label in labels)
    assert sum(len(g["options"]) for g in forms.option_groups(options)) == 100


def test_option_values_round_trip() -> None:
    """An option value parses back to target, role and break-glass; garbage is refused."""
    (option,) = _options(1)
    assert forms.parse_option_value(forms.option_value(option)) == ("c-1:p-0", "project-member", False)
    try:
        forms.parse_option_value("nonsense")
    except ValueError:
        pass
    else:
        raise AssertionError("garbage accepted")


def test_request_reply_for_denial_escapes_the_explanation() -> None:
    """A denial reply shows the policy's explanation escaped."""
    outcome = RequestOutcome("denied", "no rule for <!here>", "prod", "role")
    text, blocks = gb.request_reply(outcome)
    assert "denied" in text
    dumped = json.dumps(blocks)
    assert "&lt;!here&gt;" in dumped
    assert "<!here>" not in dumped


def _active(**changes: object) -> Grant:
    values: dict[str, object] = {"state": GrantState.ACTIVE, "activated_at": NOW - 3000, "expires_at": NOW + 600}
    return _grant(**{**values, **changes})


def test_expiry_dm_offers_extend_only_when_the_rule_allows_it() -> None:
    """Extend appears while the rule allows another extension with room left; otherwise the DM says so instead."""
    roomy = Rule("r", ("eng",), ("project-member",), timedelta(hours=4), timedelta(hours=1), max_extensions=1)
    none = Rule("r", ("eng",), ("project-member",), timedelta(hours=4), timedelta(hours=1), max_extensions=0)
    full = Rule("r", ("eng",), ("project-member",), timedelta(seconds=3600), timedelta(hours=1), max_extensions=2)
    for rule, offered in ((roomy, True), (none, False), (full, False)):
        _, blocks = gb.RENDERER.dm(GrantFacts(_active(), "dev-eu/p", "Member", NOW, rule), HolderEvent.EXPIRING)
        assert ("grant_extend" in json.dumps(blocks)) is offered, rule
        assert ("allows no more time" in json.dumps(blocks)) is not offered


def test_the_holders_dm_names_who_ended_the_grant_and_why() -> None:
    """A revocation DM names the person (a mention), or the command line, and the reason, escaped."""
    facts = GrantFacts(_active(state=GrantState.REVOKED), "dev-eu/p", "Member", NOW, RULE)
    text, _ = gb.RENDERER.dm(facts, HolderEvent.REVOKED, by="U0BOB00001", why="INC-9 <!channel>")
    assert "revoked by <@U0BOB00001>: INC-9 &lt;!channel&gt;" in text
    text, _ = gb.RENDERER.dm(facts, HolderEvent.REVOKED, by="cli:ops", why="audit")
    assert "by an operator on the command line (ops): audit" in text
