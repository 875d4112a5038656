"""Slack text safety: what user and Rancher text turns into before Slack shows it."""

from __future__ import annotations

import pytest

from bot.slack.mrkdwn import escape, plain, visible


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("pay\u202emoc.exe", "pay⟨U+202E⟩moc.exe"),  # right-to-left override
        ("a\u2066b\u2069", "a⟨U+2066⟩b⟨U+2069⟩"),  # isolates
        ("zero\u200bwidth", "zero⟨U+200B⟩width"),
        ("bell\x07", "bell⟨U+0007⟩"),
        ("line\u2028sep", "line⟨U+2028⟩sep"),
        ("blank\u3164letter\u2800", "blank⟨U+3164⟩letter⟨U+2800⟩"),
        ("tab\tand\nnewline", "tab\tand\nnewline"),
        ("plain ascii", "plain ascii"),
        ("é ü 日本", "é ü 日本"),
    ],
)
def test_invisible_characters_are_shown(text: str, shown: str) -> None:
    """Direction changers, zero-width, control and blank-rendering characters become ⟨U+XXXX⟩; the rest stays."""
    assert visible(text) == shown


def test_escape_makes_visible_then_neutralises_mentions() -> None:
    """`<!channel>` stays inert and an override is shown."""
    assert escape("<!channel>\u202e") == "&lt;!channel&gt;⟨U+202E⟩"


def test_plain_text_is_cut_without_halving_a_marker() -> None:
    """A plain_text cut at the limit never leaves half of a ⟨U+XXXX⟩ marker."""
    cut = plain("a" * 70 + "\u202eabc", 75)["text"]
    assert isinstance(cut, str)
    assert cut == "a" * 70 + "…"
    assert len(plain("b" * 200, 75)["text"]) == 75  # type: ignore[arg-type]
