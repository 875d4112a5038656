"""Linking with the email guard off asks the signed-in person first; unverified emails stay so: issue 10, item 9.

The attack: with `oidc.require_email_match: false`, Bob runs `/access link` and sends the button's URL to Alice; Alice
opens it and signs in at the IdP; without a question, Bob's Slack account would now carry Alice's identity. Every
step here is real HTTP on loopback: the signed slash command, /oauth/start, the dev IdP's login form, the callback and
the confirmation form, the dev IdP's RFC 7009 revocation endpoint (whose record the tests read), and the Slack
emulator's `users.info`, which answers `profile.display_name` and `real_name` as Slack does
(docs.slack.dev/reference/methods/users.info). `email_verified` is a JSON boolean in OpenID Connect Core 1.0 section
5.1, but providers and claim mappers also send strings (Amazon Cognito's userInfo response sample has
`"email_verified": "true"`, docs.aws.amazon.com/cognito/latest/developerguide/userinfo-endpoint.html) or numbers; the
dev IdP's `set_next_id_token` puts each form into a signed ID token.
"""

from __future__ import annotations

import contextlib
import html
import logging
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from accessbot_emulators.slack import SlackEmulator
from bot.cli import main
from bot.core import audit_actions
from bot.core.model import LinkStatus
from bot.demo import botconfig
from bot.services.held_logins import CONFIRM_TTL
from tests.conftest import SLACK_ALICE, SLACK_BOB, RunningBot, RunningIdP, wait_until
from tests.security.conftest import MovableClock, cli_config
from tests.slack.test_identity import sign_in

MakeBot = Callable[..., contextlib.AbstractContextManager[RunningBot]]
GUARD_OFF = {"oidc": {"require_email_match": False}, "schedule": {"sweep_interval": "1s", "outbox_interval": "1s"}}
SECURITY = botconfig.CHANNELS["security"]
BOB_SHOWN = 'Bob "<i>in</i>" Slack'  # a display name is the user's own text: the page must escape it


@pytest.fixture
def clock() -> MovableClock:
    """The bot's clock: wall time until a test moves it past the confirmation's lifetime."""
    return MovableClock()


@pytest.fixture
def open_bot(make_bot: MakeBot, idp: RunningIdP, slack: SlackEmulator, clock: MovableClock) -> Iterator[RunningBot]:
    """A bot on the dev IdP with `oidc.require_email_match: false`; Bob's Slack profile has a display name."""
    slack.add_user(SLACK_BOB, "bob@example.com", "bob", display_name=BOB_SHOWN)
    with make_bot(oidc_issuer=idp.url, overrides=GUARD_OFF, clock=clock) as running:
        yield running


def linked(bot: RunningBot, slack_user: str) -> Any:
    """The active link of a Slack account, or None."""
    store = bot.store()
    try:
        record = store.links.get(slack_user)
    finally:
        store.database.close()
    return record if record is not None and record.identity.status is LinkStatus.ACTIVE else None


def token_of(page: httpx.Response) -> str:
    """The one-time token in the confirmation form."""
    match = re.search(r'name="token" value="([^"]+)"', page.text)
    assert match is not None, page.text
    return match.group(1)


async def lured(bot: RunningBot, browser: httpx.AsyncClient) -> httpx.Response:
    """Bob's link button, opened and signed into by Alice in her browser: the callback's page."""
    _, page = await sign_in(bot, browser, SLACK_BOB, "alice")
    return page


async def answer(bot: RunningBot, browser: httpx.AsyncClient, token: str, decision: str) -> httpx.Response:
    """POST the confirmation form as the browser would."""
    return await browser.post(f"{bot.url}/oauth/confirm", data={"token": token, "decision": decision})


async def test_the_callback_asks_naming_the_slack_user_and_links_nothing_yet(open_bot: RunningBot) -> None:
    """The callback page names Bob's Slack account (display name and id) and Alice's IdP email; no link exists yet."""
    async with httpx.AsyncClient(timeout=5) as browser:
        page = await lured(open_bot, browser)
    assert page.status_code == 200
    assert 'id="confirm"' in page.text
    assert f"<strong>{html.escape(BOB_SHOWN)}</strong> (<code>{SLACK_BOB}</code>)" in page.text
    assert "alice@example.com" in page.text
    assert 'action="/oauth/confirm"' in page.text
    assert "form-action 'self'" in page.headers["content-security-policy"]
    assert linked(open_bot, SLACK_BOB) is None
    assert open_bot.audit(audit_actions.LINK_CREATED) == []


async def test_confirming_links(open_bot: RunningBot) -> None:
    """decision=link from the browser that signed in stores the link to Alice's subject."""
    async with httpx.AsyncClient(timeout=5) as browser:
        token = token_of(await lured(open_bot, browser))
        done = await answer(open_bot, browser, token, "link")
    assert done.status_code == 200, done.text
    assert 'id="linked"' in done.text
    link = linked(open_bot, SLACK_BOB)
    assert link is not None
    assert link.identity.subject == "sub-alice"


async def test_declining_links_nothing_revokes_the_token_and_reports_it(open_bot: RunningBot, idp: RunningIdP) -> None:
    """decision=decline links nothing, revokes the login's refresh token at the IdP, audits and reports a refusal."""
    async with httpx.AsyncClient(timeout=5) as browser:
        token = token_of(await lured(open_bot, browser))
        assert idp.idp.state()["revoked_refresh_families"] == 0
        done = await answer(open_bot, browser, token, "decline")
        again = await answer(open_bot, browser, token, "link")
    assert done.status_code == 400
    assert "Nothing was linked" in done.text
    assert linked(open_bot, SLACK_BOB) is None
    assert idp.idp.state()["revoked_refresh_families"] == 1
    assert idp.idp.state()["signals"].get("family_revoked:revocation") == 1
    (refusal,) = open_bot.audit(audit_actions.LOGIN_REFUSED)
    assert (refusal.target, refusal.reason) == (SLACK_BOB, "the person who signed in declined to link this Slack user")
    open_bot.slack.wait_for(
        lambda: [m for m in open_bot.slack.messages(SECURITY) if "declined to link" in (m.text or "")], timeout=10
    )
    assert again.status_code == 400  # the same token a second time
    assert "cannot be used" in again.text
    assert linked(open_bot, SLACK_BOB) is None


async def test_an_answer_from_another_browser_is_refused(open_bot: RunningBot) -> None:
    """A POST carrying the token but not the login cookie (another browser) is refused and links nothing."""
    async with httpx.AsyncClient(timeout=5) as browser, httpx.AsyncClient(timeout=5) as other:
        token = token_of(await lured(open_bot, browser))
        forged = await answer(open_bot, other, token, "link")
    assert forged.status_code == 400
    assert linked(open_bot, SLACK_BOB) is None
    assert "login cookie mismatch at confirmation" in [
        e.reason for e in open_bot.audit(audit_actions.LOGIN_STATE_MISMATCH)
    ]


async def test_a_late_answer_fails_and_revokes_the_token(
    open_bot: RunningBot, idp: RunningIdP, clock: MovableClock
) -> None:
    """Answering after CONFIRM_TTL gets "expired", links nothing and revokes the login's refresh token."""
    async with httpx.AsyncClient(timeout=5) as browser:
        token = token_of(await lured(open_bot, browser))
        clock.offset = CONFIRM_TTL + 1
        late = await answer(open_bot, browser, token, "link")
    assert late.status_code == 400
    assert "Confirmation expired" in late.text
    assert linked(open_bot, SLACK_BOB) is None
    assert idp.idp.state()["revoked_refresh_families"] == 1


async def test_the_expiry_job_discards_an_unanswered_confirmation(
    open_bot: RunningBot, idp: RunningIdP, clock: MovableClock
) -> None:
    """Nobody answers: after CONFIRM_TTL the expire_requests job revokes the held token; a later answer is refused."""
    async with httpx.AsyncClient(timeout=5) as browser:
        token = token_of(await lured(open_bot, browser))
        clock.offset = CONFIRM_TTL + 1
        wait_until(lambda: idp.idp.state()["revoked_refresh_families"] == 1, timeout=10)
        late = await answer(open_bot, browser, token, "link")
    assert late.status_code == 400
    assert "cannot be used" in late.text
    assert linked(open_bot, SLACK_BOB) is None


def test_the_guard_off_is_warned_by_check_config_and_at_start(
    make_bot: MakeBot, tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """`accessbot check-config` prints the warning, and the server logs it when it starts."""
    caplog.set_level(logging.WARNING, logger="bot.web.app")
    with make_bot(overrides=GUARD_OFF) as bot:
        path = cli_config(tmp_path / "c.yaml", bot.config, overrides=GUARD_OFF)
    logged = [r.getMessage() for r in caplog.records if r.name == "bot.web.app"]
    assert any(m.startswith("configuration: oidc.require_email_match: false") for m in logged), logged
    capsys.readouterr()
    assert main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "warning: oidc.require_email_match: false" in out


async def test_email_verified_is_read_strictly(make_bot: MakeBot, idp: RunningIdP) -> None:
    """email_verified 0, "false", "0" or "no" is refused as unverified (email guard on); 1 and "true" link."""
    with make_bot(oidc_issuer=idp.url) as bot:
        for flag, links in ((0, False), ("false", False), ("0", False), ("no", False), (1, True), ("true", True)):
            idp.idp.set_next_id_token(claims={"email_verified": flag})
            async with httpx.AsyncClient(timeout=5) as browser:
                _, page = await sign_in(bot, browser, SLACK_ALICE, "alice")
            assert page.status_code == (200 if links else 400), (flag, page.text)
            assert (linked(bot, SLACK_ALICE) is not None) is links, flag
        reasons = [e.reason for e in bot.audit(audit_actions.LOGIN_REFUSED)]
        assert reasons == ["email not verified at the identity provider"] * 4


HOSTILE_BODIES = {
    "empty": b"",
    "no token": b"decision=link",
    "huge token": b"decision=link&token=" + b"A" * 60_000,
    "many fields": b"&".join(b"token=x" for _ in range(5_000)),
    "not ascii": "token=é&decision=link".encode(),
    "percent junk": b"token=%ff%fe%00&decision=%zz",
    "binary": bytes(range(256)) * 100,
    "over the body cap": b"token=" + b"A" * (64 * 1024 + 1),
}


async def test_hostile_confirmation_posts_are_refused_quickly_and_link_nothing(open_bot: RunningBot) -> None:
    """Odd or oversized POST /oauth/confirm bodies each get a 400 or 413 page within 1 s (best of 3), never a 500."""
    async with httpx.AsyncClient(timeout=5) as browser:
        await lured(open_bot, browser)  # a pending confirmation with this browser's cookie exists meanwhile
        for name, body in HOSTILE_BODIES.items():
            best = float("inf")
            for _ in range(3):
                started = time.perf_counter()
                response = await browser.post(
                    f"{open_bot.url}/oauth/confirm",
                    content=body,
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                )
                best = min(best, time.perf_counter() - started)
                assert response.status_code in (400, 413), (name, response.status_code, response.text[:200])
                assert "Traceback" not in response.text
            assert best < 1.0, (name, best)
    assert linked(open_bot, SLACK_BOB) is None
