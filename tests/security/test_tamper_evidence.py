"""Tamper evidence against whoever can write the database file: issue 10, item 6.

A real bot on loopback writes the log (Slack-signed commands, its own start-up and jobs); then the bot is stopped and
`tests/attacker.py` edits the SQLite file as someone holding the file but no key would, recomputing hashes exactly as
the README documents them. `accessbot audit verify` (the CLI, in process) must catch each rewrite it can see, and the
anchors the bot posted outside the database (the security channel of the Slack emulator) must catch truncation.
The Slack emulator only records the `chat.postMessage` the outbox makes
(docs.slack.dev/reference/methods/chat.postMessage); the anchor's text is the bot's own.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from accessbot_emulators.rancher import RancherEmulator
from bot.adapters.clock import SystemClock
from bot.adapters.store import open_storage
from bot.cli import main
from bot.config import Config
from bot.core import audit_actions, audit_chain
from bot.core.model import AuditEvent
from bot.demo import botconfig
from bot.services.audit import AuditLog
from tests import attacker
from tests.conftest import ALICE, BOT_KEY, SUBJECTS, RunningBot, link_users
from tests.security.conftest import MovableClock, cli_config

MakeBot = Callable[..., contextlib.AbstractContextManager[RunningBot]]
SECURITY = botconfig.CHANNELS["security"]
DAY = 86400


def _events(database: Path) -> list[AuditEvent]:
    store = open_storage(database, migrate=False)
    try:
        return list(store.audit.events())
    finally:
        store.database.close()


def verify(config: Path, capsys: pytest.CaptureFixture[str], *anchors: str) -> tuple[int, str]:
    """Run `accessbot --config FILE audit verify [--anchor …]`; return the exit code and what it printed."""
    capsys.readouterr()
    argv = ["--config", str(config), "audit", "verify"]
    for anchor in anchors:
        argv += ["--anchor", anchor]
    code = main(argv)
    return code, capsys.readouterr().out.strip()


def overrides(token_key: str, audit_keys: list[str] | None = None) -> dict[str, object]:
    """Config overrides that keep the keys fixed across restarts (and deliver the outbox every second)."""
    security: dict[str, object] = {"token_encryption_keys": [token_key]}
    if audit_keys is not None:
        security["audit_keys"] = audit_keys
    return {"security": security, "schedule": {"outbox_interval": "1s"}}


def record_activity(bot: RunningBot) -> None:
    """A self-service grant requested through Slack with the reason `INC-1`: a handful of audited events."""
    link_users(bot, SUBJECTS)
    reply = bot.ask(ALICE, "request dev-eu/payments project-member for 1h because INC-1")
    assert "is active" in reply.text, reply.text


def recorded(make_bot: MakeBot, rancher: RancherEmulator, tmp_path: Path, token_key: str) -> tuple[Path, Path, Config]:
    """A bot's database after `record_activity`, a CLI config for it, and the bot's config."""
    rancher.reset()
    database = tmp_path / "bot.db"
    with make_bot(
        database=database, rancher_url=rancher.url, rancher_token=BOT_KEY, overrides=overrides(token_key)
    ) as bot:
        bot.slack.reset()
        record_activity(bot)
        return database, cli_config(tmp_path / "cli.yaml", bot.config), bot.config


@pytest.fixture
def token_key() -> str:
    """The token encryption key every bot of a test shares (the audit key is derived from it by default)."""
    return Fernet.generate_key().decode()


def test_an_edited_reason_rechained_the_documented_way_is_named(
    make_bot: MakeBot, rancher: RancherEmulator, tmp_path: Path, token_key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Edit a reason, recompute every later hash as the README documents, move the head: verify names that event."""
    database, config, _ = recorded(make_bot, rancher, tmp_path, token_key)
    assert verify(config, capsys) == (0, f"OK: {len(_events(database))} events, chain intact (keyed)")
    edited = next(e for e in _events(database) if e.reason == "INC-1")
    attacker.execute(database, "update audit_events set reason = ? where id = ?", ["routine check", edited.id])
    attacker.rechain(database, start=edited.id)
    code, out = verify(config, capsys)
    assert code == 1
    assert out.startswith(f"BROKEN at event {edited.id}: contents do not match the hash"), out


def test_a_downgrade_to_the_unkeyed_chain_is_detected(
    make_bot: MakeBot, rancher: RancherEmulator, tmp_path: Path, token_key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Keyed events rewritten as unkeyed (empty key id, plain SHA-256) fool an unkeyed check, never verify."""
    database, config, bot_config = recorded(make_bot, rancher, tmp_path, token_key)
    edited = next(e for e in _events(database) if e.reason == "INC-1")
    partly = tmp_path / "partly.db"
    shutil.copy(database, partly)
    for target in (database, partly):
        attacker.execute(target, "update audit_events set reason = ? where id = ?", ["routine check", edited.id])
    attacker.rechain(database, start=1, downgrade=True)  # the whole log claims to be from before keying
    store = open_storage(database, migrate=False)
    try:  # the attacker did exactly what the README documents: the unkeyed check of old accepts the result
        assert audit_chain.verify(store.audit.events(), head=store.audit.head()).ok
    finally:
        store.database.close()
    code, out = verify(config, capsys)
    assert code == 1
    assert "the chain is not keyed although a key is configured" in out, out
    attacker.rechain(partly, start=edited.id, downgrade=True)  # only the edited event and those after it
    code, out = verify(cli_config(tmp_path / "partly.yaml", bot_config, database=partly), capsys)
    assert code == 1
    assert out.startswith(f"BROKEN at event {edited.id}: an unkeyed event after the chain was keyed"), out


def test_truncation_passes_verify_alone_but_not_against_the_posted_anchor(
    make_bot: MakeBot, rancher: RancherEmulator, tmp_path: Path, token_key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Deleting the newest events and moving the head back fools verify; the next day's Slack anchor catches it."""
    database, config, _ = recorded(make_bot, rancher, tmp_path, token_key)
    bot_overrides = overrides(token_key)
    tomorrow = MovableClock(DAY)
    day = time.strftime("%Y-%m-%d", time.gmtime(tomorrow.now()))
    with make_bot(
        database=database, rancher_url=rancher.url, rancher_token=BOT_KEY, overrides=bot_overrides, clock=tomorrow
    ) as bot:  # a restart the next day: the daily anchor job posts the head to the security channel
        post = bot.slack.wait_for(
            lambda: next((m for m in bot.slack.messages(SECURITY) if f"anchor for {day}" in (m.text or "")), None),
            timeout=10,
        )
    match = re.search(r"--anchor (\d+):([0-9a-f]{64})", post.text or "")
    assert match is not None, post.text
    anchor, anchored_id = match.group(0).removeprefix("--anchor "), int(match.group(1))
    assert verify(config, capsys, anchor)[0] == 0
    requested = next(e for e in _events(database) if e.reason == "INC-1")
    assert requested.id <= anchored_id
    attacker.truncate_audit(database, keep_through=requested.id - 1)  # the grant never happened
    code, out = verify(config, capsys)
    assert code == 0, out  # what verify alone cannot see: the rows and the head kept beside them agree
    code, out = verify(config, capsys, anchor)
    assert code == 1
    assert f"anchored event {anchored_id} is missing" in out, out


def test_an_unkeyed_chain_is_keyed_by_a_recorded_event_and_verifies(
    make_bot: MakeBot, tmp_path: Path, token_key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A log written before keying gets an `audit.rekeyed` event at start, verifies, and its old rows are covered."""
    database = tmp_path / "old.db"
    store = open_storage(database)
    try:  # what the audit service wrote before the chain was keyed: no keys, plain SHA-256
        old = AuditLog(tx=store.tx, store=store.audit, clock=SystemClock())
        for n in range(3):
            old.record("grant.requested", actor=ALICE, target="dev-eu", reason=f"old {n}")
    finally:
        store.database.close()
    with make_bot(database=database, overrides=overrides(token_key)) as bot:
        config = cli_config(tmp_path / "cli.yaml", bot.config)
    events = _events(database)
    rekeyed = next(e for e in events if e.action == audit_actions.AUDIT_REKEYED)
    assert [e.key_id for e in events[:3]] == ["", "", ""]
    assert rekeyed.id == 4
    assert rekeyed.key_id
    assert (rekeyed.details["previous_key_id"], rekeyed.details["previous_head_id"]) == ("", 3)
    assert verify(config, capsys) == (0, f"OK: {len(events)} events, chain intact (keyed)")
    attacker.execute(database, "update audit_events set reason = ? where id = 2", ["rewritten"])
    attacker.rechain(database, start=2)  # the unkeyed rows can be recomputed, the keyed one after them cannot
    code, out = verify(config, capsys)
    assert code == 1
    assert out.startswith(f"BROKEN at event {rekeyed.id}: contents do not match the hash"), out


def test_a_rotated_audit_key_kept_under_its_id_still_verifies_old_events(
    make_bot: MakeBot, rancher: RancherEmulator, tmp_path: Path, token_key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """With `security.audit_keys: [new, old]` the bot re-keys at start and every event verifies; without old, not."""
    rancher.reset()
    database = tmp_path / "bot.db"
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    common = {"database": database, "rancher_url": rancher.url, "rancher_token": BOT_KEY}
    with make_bot(**common, overrides=overrides(token_key, [old_key])) as bot:
        record_activity(bot)
    with make_bot(**common, overrides=overrides(token_key, [new_key, old_key])) as bot:
        both = cli_config(tmp_path / "both.yaml", bot.config)
    only_new = cli_config(tmp_path / "new.yaml", bot.config, audit_keys=[new_key])
    events = _events(database)
    rekeyed = [e for e in events if e.action == audit_actions.AUDIT_REKEYED]
    assert len(rekeyed) == 2
    assert rekeyed[1].details["previous_key_id"] == rekeyed[0].key_id != rekeyed[1].key_id
    assert verify(both, capsys) == (0, f"OK: {len(events)} events, chain intact (keyed)")
    code, out = verify(only_new, capsys)
    assert code == 1
    assert f"BROKEN at event {rekeyed[0].id}: chained with key {rekeyed[0].key_id}, which is not configured" in out
