"""Parsing `/access` text into command values, and refusing malformed text with a precise message."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core import commands as c
from bot.core.errors import UserError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", c.Bare()),
        ("help", c.Help()),
        ("help request", c.Help("request")),
        ("link", c.Link()),
        ("login", c.Link()),
        ("unlink", c.Unlink()),
        ("whoami", c.Whoami()),
        ("list", c.ListAccess()),
        ("ls prod-eu", c.ListAccess("prod-eu")),
        ("list prod-eu/payload-api", c.ListAccess("prod-eu/payload-api")),
        ("request", c.Request()),
        ("request dev-eu cluster-member", c.Request("dev-eu", "cluster-member")),
        (
            "request prod-eu/payments project-member for 2h because INC-42 db is down",
            c.Request("prod-eu/payments", "project-member", timedelta(hours=2), "INC-42 db is down"),
        ),
        (
            "request prod-eu/payments project-member for 90 minutes ticket OPS-7 because x",
            c.Request("prod-eu/payments", "project-member", timedelta(minutes=90), "x", "OPS-7"),
        ),
        (
            "request prod-eu cluster-owner for 30m breakglass because INC-7 outage",
            c.Request("prod-eu", "cluster-owner", timedelta(minutes=30), "INC-7 outage", break_glass=True),
        ),
        ("grants", c.Grants()),
        ("grants all", c.Grants(all=True)),
        ("revoke g-12", c.Revoke("g-12")),
        ("revoke G-12", c.Revoke("g-12")),
        ("extend g-3 1h", c.Extend("g-3", timedelta(hours=1))),
        ("extend g-3 by 30m", c.Extend("g-3", timedelta(minutes=30))),
        ("who prod-eu/payments", c.Who("prod-eu/payments")),
        ("rules", c.Rules()),
    ],
)
def test_valid_text_parses_to_command(text: str, expected: c.Command) -> None:
    """Each supported form parses to its command value."""
    assert c.parse(text) == expected


@pytest.mark.parametrize(
    ("text", "message", "hint"),
    [
        ("lsit", "`lsit` is not a command I know", "did you mean `list`?"),
        ("reqest a b", "`reqest` is not a command I know", "did you mean `request`?"),
        ("frobnicate", "`frobnicate` is not a command I know", "try `help`"),
        ("link now", "`link` takes no arguments", "usage: /access link"),
        (
            "revoke",
            "`revoke` needs one grant id, then optionally `because …`",
            "usage: /access revoke GRANT_ID [because REASON…]",
        ),
        ("revoke 12", "`12` is not a grant id (they look like g-12)", "usage"),
        ("extend g-1", "`extend` needs a grant id and a duration", "usage"),
        ("extend g-1 soon", "`soon` is not a duration", "30m"),
        ("grants mine", "`grants` takes nothing or `all`", "usage"),
        ("request prod", "a request needs a target and a role", "usage"),
        ("request prod ROLE!", "`ROLE!` is not a role template id (like project-member)", "usage"),
        ("request prod r for", "`for` needs a duration", "30m"),
        ("request prod r because", "`because` needs a reason after it", "usage"),
        ("request prod r please", "I did not understand `please` in your request", "usage"),
        ("list a b", "`list` takes at most one CLUSTER or CLUSTER/PROJECT", "usage"),
        ("request prod-eu cluster-owner breakglass", "break-glass access needs a reason", "security channel"),
        ("who", "`who` needs exactly one CLUSTER or CLUSTER/PROJECT", "usage"),
        ("list <!channel>", "`<!channel>` is not a cluster or CLUSTER/PROJECT", "usage"),
    ],
)
def test_malformed_text_raises_user_error_with_hint(text: str, message: str, hint: str) -> None:
    """Malformed commands raise UserError naming the problem, with a usage line or suggestion."""
    with pytest.raises(UserError) as info:
        c.parse(text)
    assert info.value.message == message
    assert hint in info.value.hint


def test_long_reason_is_refused_with_the_limit() -> None:
    """A reason over 500 characters is refused, naming the limit."""
    with pytest.raises(UserError, match="at most 500"):
        c.parse("request dev r because " + "x" * 501)


@given(st.text(max_size=200))
def test_parse_never_raises_anything_but_user_error(text: str) -> None:
    """Whatever the text, parse returns a command or raises UserError."""
    try:
        result = c.parse(text)
    except UserError as err:
        assert err.message
    else:
        assert isinstance(result, c.Bare | c.Help | c.Link | c.Unlink | c.Whoami | c.ListAccess | c.Request
                          | c.Grants | c.Revoke | c.Extend | c.Who | c.Rules | c.Review)  # fmt: skip


def test_every_subcommand_has_usage() -> None:
    """The usage table covers every subcommand the parser accepts."""
    assert set(c.USAGE) == {
        "help",
        "link",
        "whoami",
        "list",
        "request",
        "grants",
        "revoke",
        "extend",
        "who",
        "rules",
        "unlink",
        "review",
    }
    assert c.usage("revoke") == "/access revoke GRANT_ID [because REASON…]"


def test_breakglass_anywhere_before_the_reason_is_recognised() -> None:
    """`breakglass` before `for` or after the duration both make a break-glass request."""
    first = c.parse("request prod-eu cluster-owner breakglass for 30m because INC-7")
    second = c.parse("request prod-eu cluster-owner for 30m breakglass because INC-7")
    assert first.break_glass  # type: ignore[union-attr]
    assert second.break_glass  # type: ignore[union-attr]


def test_breakglass_inside_the_reason_is_refused_with_a_hint() -> None:
    """`because INC-7 breakglass` would be a plain request with an odd reason: refused, saying where it goes."""
    with pytest.raises(UserError) as caught:
        c.parse("request prod-eu cluster-owner for 30m because INC-7 breakglass")
    assert "inside your reason" in caught.value.message
    assert "request prod-eu cluster-owner breakglass because INC-7 breakglass" in caught.value.hint


def test_a_ticket_over_64_characters_is_refused_with_its_limit() -> None:
    """`ticket` longer than 64 characters is refused, never silently cut."""
    with pytest.raises(UserError, match=r"65 characters long \(at most 64\)"):
        c.parse("request dev-eu project-member ticket " + "T" * 65)
