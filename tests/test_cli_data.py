"""Moving and keeping data from the command line: `db copy`, `backup`, `migrate` on both engines, refusals."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.fernet import Fernet

from bot.adapters.clock import SystemClock
from bot.adapters.store import open_sql, open_storage
from bot.adapters.store.migrations import MIGRATIONS, Migration, Migrator
from bot.cli import main
from bot.core.audit_chain import ChainKey
from bot.core.model import Grant, GrantState, Target
from bot.core.storage import Storage
from bot.demo import botconfig
from bot.services.audit import AuditLog
from bot.wiring import audit_keys, audit_log
from tests import factories


def _config(tmp_path: Path, database: str, encryption_key: str | None = None) -> Path:
    """A configuration file for `database` (give the running bot's token key: its audit chain is keyed with it)."""
    data = botconfig.config_data(
        database=database,
        public_url="https://bot.example.com",
        slack_api_url="https://slack.com/api/",
        oidc_issuer="https://idp.example.com",
        rancher_url="https://rancher.example.com",
        rancher_token="token-abcde:clisecretvalue",
        encryption_key=encryption_key or Fernet.generate_key().decode(),
    )
    path = tmp_path / f"config-{len(list(tmp_path.glob('config-*')))}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _grant(storage: Storage, state: GrantState, **fields: Any) -> Grant:
    values: dict[str, Any] = {
        "id": storage.grants.new_id(),
        "slack_user": "U1",
        "subject": "s1",
        "target": Target("c-1", "c-1:p-1"),
        "role_id": "project-member",
        "duration_s": 3600,
        "rule": "r",
        "state": state,
        "requested_at": 100,
    }
    return Grant(**{**values, **fields})


def _fill(storage: Storage, events: int = 5, keys: tuple[ChainKey, ...] = ()) -> None:
    """A link, two grants, outbox messages and a few audit events, written through the ports (keyed with `keys`,
    as the bot that owns the database chains them)."""
    factories.link(storage.links, "U1", "s1", ["eng"], now=100)
    factories.grant(storage, _grant(storage, GrantState.ACTIVE, expires_at=9_999), now=100)
    factories.grant(storage, _grant(storage, GrantState.REQUESTED), now=101)
    storage.outbox.enqueue(key="k1", kind="dm", channel="U1", payload={"text": "hi"}, now=100)
    audit = AuditLog(tx=storage.tx, store=storage.audit, clock=SystemClock(), keys=keys)
    for i in range(events):
        audit.record("test.event", actor=f"U{i}", details={"n": i})


def _summary(storage: Storage) -> dict[str, Any]:
    return {
        "grants": sorted((g.id, g.state.value, g.expires_at) for g in storage.grants.find()),
        "links": [r.identity.slack_user for r in storage.links.active()],
        "events": [(e.id, e.hash) for e in storage.audit.events()],
        "head": storage.audit.head(),
        "outbox": storage.outbox.pending_count(),
    }


def test_db_copy_moves_everything_sqlite_to_postgresql_and_back(
    tmp_path: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """SQLite → PostgreSQL → SQLite keeps every row and the chain; new ids continue after the copied ones."""
    source = open_storage(tmp_path / "source.db")
    _fill(source)
    before = _summary(source)
    source.database.close()
    assert main(["db", "copy", "--from", str(tmp_path / "source.db"), "--to", postgres_url]) == 0
    out = capsys.readouterr().out
    assert "audit chain verified on the target: 5 events" in out
    assert postgres_url.split(":")[2].split("@", maxsplit=1)[0] not in out  # the password is masked
    on_pg = open_storage(postgres_url)
    assert _summary(on_pg) == before
    assert on_pg.grants.new_id() == "g-3"
    assert on_pg.outbox.enqueue(key="k2", kind="dm", channel="U1", payload={}, now=200)  # identity moved past ids
    AuditLog(tx=on_pg.tx, store=on_pg.audit, clock=SystemClock()).record("after.copy", actor="U9")
    after = _summary(on_pg)
    on_pg.database.close()
    assert main(["db", "copy", "--from", postgres_url, "--to", str(tmp_path / "back.db")]) == 0
    back = open_storage(tmp_path / "back.db")
    assert _summary(back) == after
    back.database.close()


def test_db_copy_into_a_database_holding_data_is_refused_and_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A target that already has rows is refused with one line and exit 2; it keeps exactly what it had."""
    for name in ("a.db", "b.db"):
        storage = open_storage(tmp_path / name)
        _fill(storage, events=2 if name == "a.db" else 3)
        storage.database.close()
    assert main(["db", "copy", "--from", str(tmp_path / "a.db"), "--to", str(tmp_path / "b.db")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: the target database already holds data (table links)")
    assert len(err.splitlines()) == 1
    target = open_storage(tmp_path / "b.db")
    assert target.audit.count() == 3
    target.database.close()


def test_db_copy_refuses_a_source_whose_chain_is_broken(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A tampered source is not copied: exit 1 naming the first broken event; the target stays absent."""
    from tests import attacker

    storage = open_storage(tmp_path / "a.db")
    _fill(storage, events=4)
    storage.database.close()
    attacker.execute(tmp_path / "a.db", "update audit_events set actor = 'mallory' where id = 3")
    assert main(["db", "copy", "--from", str(tmp_path / "a.db"), "--to", str(tmp_path / "b.db")]) == 1
    assert "broken at event 3" in capsys.readouterr().out
    assert not (tmp_path / "b.db").exists()


@pytest.mark.parametrize(
    ("source", "target", "message"),
    [
        ("mysql://u:p@h/db", "x.db", "--from: mysql URLs are not supported"),
        ("same.db", "same.db", "--from and --to name the same database"),
        ("missing.db", "x.db", "--from: missing.db is not a file"),
    ],
)
def test_db_copy_bad_arguments_get_one_line_and_exit_2(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    source: str,
    target: str,
    message: str,
) -> None:
    """Unsupported URLs, the same database twice and a missing file are each one clear line, exit 2."""
    monkeypatch.chdir(tmp_path)
    assert main(["db", "copy", "--from", source, "--to", target]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}")
    assert "Traceback" not in err


def test_backup_while_serving_is_consistent_and_restores(
    tmp_path: Path, make_bot: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """`backup FILE` beside a running bot writes a file that verifies; copied back, the bot's data is all there."""
    database = tmp_path / "live.db"
    with make_bot(database=database) as bot:
        store = bot.store()
        _fill(store, events=20, keys=audit_keys(bot.config))
        store.database.close()
        key = bot.config.security.token_encryption_keys[0].get_secret_value()
        config = _config(tmp_path, str(database), key)
        assert main(["--config", str(config), "backup", str(tmp_path / "backup.db")]) == 0
        assert "backed up to" in capsys.readouterr().out
        assert main(["--config", str(config), "backup", str(tmp_path / "backup.db")]) == 2
        assert "already exists" in capsys.readouterr().err
    restored = tmp_path / "restored.db"
    shutil.copy(tmp_path / "backup.db", restored)
    copy = open_storage(restored)
    live = open_storage(database)
    assert _summary(copy) == _summary(live)  # nothing was written after the backup
    assert audit_log(bot.config, copy, SystemClock()).verify().ok
    copy.database.close()
    live.database.close()


def test_backup_of_a_postgresql_configuration_points_to_pg_dump(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """On PostgreSQL `backup` says to use pg_dump (exit 2), without showing the password."""
    config = _config(tmp_path, "postgresql://bot:pg-Secret-Pa55@127.0.0.1:9/accessbot")
    assert main(["--config", str(config), "backup", str(tmp_path / "x.db")]) == 2
    err = capsys.readouterr().err
    assert "use pg_dump" in err
    assert "pg-Secret-Pa55" not in err


def test_migrate_and_serve_refuse_a_database_newer_than_this_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """After a newer version migrated the database, `migrate` and `serve` stop with one line and exit 2."""
    database = tmp_path / "newer.db"
    sql = open_sql(database)
    Migrator(sql, (*MIGRATIONS, Migration("m999_newer", ()))).apply(0)
    sql.close()
    config = _config(tmp_path, str(database))
    for command in (["migrate"], ["serve", "--port", "1"]):
        assert main(["--config", str(config), *command]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: the database was upgraded by a newer accessbot (it has migration m999_newer")
        assert err.endswith("(run the newer version, or restore the backup taken before the upgrade)")
        assert len(err.splitlines()) == 1


def test_migrate_on_postgresql_applies_then_reports_current_without_the_password(
    tmp_path: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`migrate` against a PostgreSQL URL applies every migration once and never prints the password."""
    config = _config(tmp_path, postgres_url)
    password = postgres_url.split(":")[2].split("@", maxsplit=1)[0]
    assert main(["--config", str(config), "migrate"]) == 0
    first = capsys.readouterr().out
    assert f"applied now: {', '.join(m.name for m in MIGRATIONS)}" in first
    assert main(["--config", str(config), "migrate"]) == 0
    second = capsys.readouterr().out
    assert "none applied now" in second
    assert password not in first + second
    assert ":***@" in second


def test_an_unreachable_postgresql_is_one_line_without_the_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A PostgreSQL URL nobody answers on gives `error: database: … is not reachable` and exit 1, masked."""
    config = _config(tmp_path, "postgresql://bot:pg-Secret-Pa55@127.0.0.1:9/accessbot?connect_timeout=2")
    assert main(["--config", str(config), "migrate"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: database: postgresql://bot:***@127.0.0.1:9/accessbot")
    assert "is not reachable" in err
    assert "pg-Secret-Pa55" not in err
    assert len(err.splitlines()) == 1
