"""The security-channel sentences about Rancher trouble: an abandoned activation, a revocation that lasts."""

from __future__ import annotations

from bot.core.model import Grant, GrantState, Target
from bot.core.notices import ActivationAbandoned, RevocationOverdue
from bot.slack.notices import SlackNotices

GRANT = Grant(
    id="g-7",
    slack_user="U0ALICE001",
    subject="s",
    target=Target("c-1", "c-1:p-1"),
    role_id="project-member",
    duration_s=3600,
    rule="r",
    state=GrantState.FAILED,
    requested_at=0,
    failure="Rancher is still removing the binding (its finalizers wait for the downstream cluster)",
)


def test_an_abandoned_activation_names_the_grant_the_wait_and_rancher_s_last_answer_escaped() -> None:
    """One alert: which grant, how long Rancher kept failing, its last answer (escaped), what happens next."""
    text, blocks = SlackNotices().render(ActivationAbandoned(GRANT, 600, "Rancher failed (500 <!channel>)"))
    assert blocks == []
    assert "Activation abandoned: grant `g-7`" in text
    assert "for 10m" in text
    assert "&lt;!channel&gt;" in text
    assert "<!channel>" not in text


def test_an_overdue_early_revocation_says_when_it_began_and_why_it_waits() -> None:
    """An early revocation left terminating says "was revoked … ago" and the finalizer note."""
    text, _ = SlackNotices().render(RevocationOverdue(GRANT, 180, early=True))
    assert "was revoked 3m ago" in text
    assert "finalizers wait for the downstream cluster" in text
    expired, _ = SlackNotices().render(RevocationOverdue(GRANT, 180))
    assert "expired 3m ago" in expired
