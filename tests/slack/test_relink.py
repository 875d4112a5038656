"""The re-sign-in DM's Link button and `whoami` for a link waiting for a new sign-in or without a refresh token,
through Slack-signed requests into the running bot."""

from __future__ import annotations

import time
import uuid

from accessbot_emulators.slack import block_actions_payload, interaction_body
from bot.core.model import LinkStatus
from bot.slack.notices import RELINK_ACTION
from tests import factories
from tests.conftest import ALICE, RunningBot


def test_link_button_in_the_re_sign_in_dm_answers_with_a_fresh_sign_in_button(bot: RunningBot) -> None:
    """Clicking Link in the DM replies with a one-time `Sign in to link` button (as `/access link` does)."""
    key = uuid.uuid4().hex[:10]
    payload = block_actions_payload(
        ALICE, RELINK_ACTION, "relink", response_url=bot.slack.response_url(key), channel_id="D0ALICEDM1"
    )
    assert bot.post_signed(interaction_body(payload)).status_code == 200
    reply = bot.reply(key)
    assert "/oauth/start?attempt=" in str(reply.blocks)
    assert not reply.replace_original


def test_whoami_tells_a_user_to_sign_in_again_before_the_deadline(bot: RunningBot) -> None:
    """A link waiting for a new sign-in shows the deadline and what to run."""
    store = bot.store()
    try:
        factories.link(store.links, ALICE, "sub-a", ["eng"], now=int(time.time()), sealed_refresh_token="x")
        assert store.links.mark_relink(ALICE, 1_900_000_000, "MFA required")
        record = store.links.get(ALICE)
        assert record is not None
        assert record.identity.status is LinkStatus.RELINK
    finally:
        store.database.close()
    reply = bot.ask(ALICE, "whoami")
    assert "sign in again" in reply.text
    assert "/access link" in reply.text
    assert "2030-03-17 17:46 UTC" in reply.text


def test_whoami_marks_an_unmonitored_link(bot: RunningBot) -> None:
    """A link without a refresh token says it is never re-checked at the IdP."""
    store = bot.store()
    try:
        factories.link(store.links, ALICE, "sub-a", ["eng"], now=int(time.time()))
    finally:
        store.database.close()
    assert "Unmonitored" in bot.ask(ALICE, "whoami").text
