"""`review …` as typed: names, selectors, durations and options checked, refusals short and precise."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.core import commands
from bot.core.errors import UserError
from bot.core.review_commands import campaign_name, due, item_id, parse_start, role_selectors, target_selectors
from bot.core.reviews import Subjects, Verdict


def test_a_full_start_command_is_read() -> None:
    """Every option is read into the start request."""
    cmd = commands.parse(
        "review start q3-prod roles cluster-owner,project-owner targets prod-*,staging/pay* subjects groups "
        "due 14d on-timeout remove"
    )
    assert isinstance(cmd, commands.Review)
    assert cmd.start is not None
    start = cmd.start
    assert start.name == "q3-prod"
    assert start.roles == ("cluster-owner", "project-owner")
    assert start.targets == ("prod-*", "staging/pay*")
    assert (start.subjects, start.due, start.on_timeout) == (Subjects.GROUPS, timedelta(days=14), Verdict.REMOVE)


def test_review_alone_lists_what_awaits_the_caller() -> None:
    """`review` without arguments is the caller's own review list."""
    assert commands.parse("review") == commands.Review()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("review stop x", "takes nothing or `start"),
        ("review start", "needs a name"),
        ("review start bad/name", "not a campaign name"),
        ("review start q roles", "needs a value"),
        ("review start q colour red", "not a review option"),
        ("review start q due 14d due 3d", "given twice"),
        ("review start q due 5m", "between 1h and 365d"),
        ("review start q on-timeout explode", "not what happens on timeout"),
        ("review start q subjects robots", "not a kind of subject"),
        ("review start q roles Cluster_Owner!", "not one of the roles"),
    ],
)
def test_a_malformed_start_is_refused_with_its_reason(text: str, message: str) -> None:
    """Each mistake gets its own message."""
    with pytest.raises(UserError) as err:
        commands.parse(text)
    assert message in err.value.message


def test_too_many_selectors_are_refused() -> None:
    """At most 50 targets; globs say the rest."""
    with pytest.raises(UserError, match="at most 50"):
        target_selectors(",".join(f"c{i}" for i in range(51)))


def test_selectors_are_deduplicated_in_order() -> None:
    """A role named twice is one selector."""
    assert role_selectors("project-owner, cluster-owner,project-owner") == ("project-owner", "cluster-owner")


def test_a_hostile_name_is_quoted_short() -> None:
    """A refusal never echoes more than 40 characters of what was typed."""
    with pytest.raises(UserError) as err:
        campaign_name("<!channel>" + "x" * 5000)
    assert len(err.value.message) < 120


@pytest.mark.parametrize("text", ["0", "-3", "abc", "²", "9" * 20, ""])
def test_a_bad_item_number_is_refused(text: str) -> None:
    """Item numbers are positive ASCII digits."""
    with pytest.raises(UserError):
        item_id(text)


def test_item_numbers_may_carry_a_hash() -> None:
    """`#12` as shown by `review show` works."""
    assert item_id("#12") == 12


def test_due_reads_a_duration() -> None:
    """`30d` is thirty days."""
    assert due("30d") == timedelta(days=30)


def test_parse_start_defaults() -> None:
    """Without options: every target, both subjects, the configured deadline and timeout."""
    start = parse_start(["q1"])
    assert (start.roles, start.targets, start.subjects, start.due, start.on_timeout) == (
        (),
        ("*",),
        Subjects.BOTH,
        None,
        None,
    )
