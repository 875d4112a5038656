"""`accessbot review …` against the Rancher emulator and a real SQLite database: every command, and hostile input."""

from __future__ import annotations

import asyncio
import csv
import getpass
import io
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from accessbot_emulators.rancher import RancherEmulator, run_emulator, standing_estate
from bot.adapters.store import open_storage
from bot.cli import main
from bot.config import load_config
from bot.core import audit_actions as A
from bot.core.reviews import ItemState, Verdict
from bot.demo import botconfig
from bot.wiring import running
from tests import factories
from tests.conftest import BOT_KEY

SRE = "U0SRE00001"
ROLES = "cluster-owner,project-owner,project-member"
PROD, BOB = "c-m-9hb3n5kp", "u-kn3kwqn2hg"
STAGING_MEMBER = "c-m-4q8zt2wd-p-8vt6x:prtb-m7x2k"  # a user's project-member on staging-eu/payments (demo fixture)
STAGING_OWNERS = "c-m-4q8zt2wd:crtb-h6m3p"  # the sre group's cluster-owner on staging-eu: no rule governs it
PROD_OWNER = f"{PROD}:crtb-std01"  # Bob's cluster-owner on prod-eu: no rule he could request it by (admins review)
PROD_MEMBERS = "p-j5c2l:prtb-std02"  # devs' project-member on prod-eu/payments (prod-with-approval: sre reviews)


@pytest.fixture
def config_path(tmp_path: Path, rancher: RancherEmulator) -> Path:
    """A config pointing at the emulator; an SRE (the approvers of the prod rules) and Alice are linked."""
    rancher.reset()
    rancher.add_binding("crtb", name="crtb-std01", clusterId=PROD, roleTemplateId="cluster-owner", userId=BOB)
    rancher.add_binding(
        "prtb", name="prtb-std02", projectId=f"{PROD}:p-j5c2l", roleTemplateId="project-member",
        groupPrincipalId="genericoidc_group://devs", labels={"team": "payments"},
    )  # fmt: skip
    path = write_config(tmp_path, rancher.url)
    store = open_storage(tmp_path / "bot.db")
    now = int(time.time())
    factories.link(store.links, SRE, "5e4d3c2b-1a09-4f8e-9d7c-6b5a4f3e2d1c", ["sre"], now=now, name="Sam Sre")
    factories.link(
        store.links, "U0ALICE001", "3f2a9c1e-5b7d-4e8a-9c0f-1a2b3c4d5e6f", ["engineering"], now=now, name="Alice"
    )
    store.database.close()
    return path


def write_config(tmp_path: Path, rancher_url: str, overrides: dict[str, object] | None = None) -> Path:
    """A config file for a bot on `tmp_path/bot.db` and the Rancher at `rancher_url`."""
    data = botconfig.config_data(
        database=tmp_path / "bot.db",
        public_url="http://127.0.0.1:9",
        slack_api_url="http://127.0.0.1:9/api/",
        oidc_issuer="http://127.0.0.1:9",
        rancher_url=rancher_url,
        rancher_token=BOT_KEY,
        overrides=overrides,
    )
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def run(config: Path, *argv: str) -> int:
    """`accessbot --config CONFIG argv…`."""
    return main(["--config", str(config), *argv])


def start(config: Path, name: str = "q3") -> None:
    """Start a review of the governed owner and member roles on staging and prod."""
    assert run(config, "review", "start", "--name", name, "--roles", ROLES, "--targets", "prod-*,staging-*") == 0


def decide_all(config: Path, verdicts: dict[str, Verdict]) -> dict[str, int]:
    """The SRE decides items by binding id (as in Slack, through the decision service); returns item ids by binding."""

    async def go() -> dict[str, int]:
        async with running(load_config(config)) as bot:
            campaign = bot.reviews.directory.campaign("q3")
            ids = {}
            for item in bot.reviews.campaigns.items(campaign):
                ids[item.binding.id] = item.id
                if item.binding.id in verdicts:
                    await bot.reviews.decisions.decide(item.id, SRE, verdicts[item.binding.id], "reviewed by SRE")
            return ids

    return asyncio.run(go())


def items_by_binding(config: Path) -> dict[str, tuple[ItemState, Verdict | None]]:
    """Every item of q3 as stored: (state, verdict) by binding id."""

    async def go() -> dict[str, tuple[ItemState, Verdict | None]]:
        async with running(load_config(config)) as bot:
            campaign = bot.reviews.directory.campaign("q3")
            return {i.binding.id: (i.state, i.verdict) for i in bot.reviews.campaigns.items(campaign)}

    return asyncio.run(go())


def audit_actions(config: Path) -> list[str]:
    """Every audited action, oldest first."""
    store = open_storage(load_config(config).database.reveal())
    try:
        return [e.action for e in store.audit.events()]
    finally:
        store.database.close()


def audit_actors(config: Path) -> dict[str, str]:
    """The actor of the latest event of each audited action."""
    store = open_storage(load_config(config).database.reveal())
    try:
        return {e.action: e.actor for e in store.audit.events()}
    finally:
        store.database.close()


def live_ids(rancher: RancherEmulator) -> set[str]:
    """Ids of every CRTB and PRTB Rancher holds."""
    return {b["id"] for t in ("clusterRoleTemplateBinding", "projectRoleTemplateBinding") for b in rancher.objects(t)}


# --- start, list, show --------------------------------------------------------------------------------------


def test_start_reviews_the_standing_bindings_of_the_scope(
    config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`review start` makes one item per standing binding of the roles and targets (the bot's own left out)."""
    start(config_path)
    out = capsys.readouterr().out
    assert out.startswith("started review q3: 4 standing bindings, 1 reviewer asked")
    assert "2 bindings have no reviewer but the admins" in out
    found = items_by_binding(config_path)
    assert found == dict.fromkeys((STAGING_MEMBER, STAGING_OWNERS, PROD_OWNER, PROD_MEMBERS), (ItemState.PENDING, None))
    assert A.REVIEW_STARTED in audit_actions(config_path)


def test_start_with_a_taken_name_exits_2_and_adds_nothing(
    config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A second review with the same name is refused on one line, and the first one is unchanged."""
    start(config_path)
    capsys.readouterr()
    assert run(config_path, "review", "start", "--name", "q3", "--roles", "cluster-owner") == 2
    err = capsys.readouterr().err
    assert err == "error: a review named q3 exists already (choose another name)\n"
    assert audit_actions(config_path).count(A.REVIEW_STARTED) == 1


def test_list_shows_each_review_with_its_outcome(config_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`review list` is a table (or JSON lines) with the counts of each review."""
    assert run(config_path, "review", "list") == 0
    assert capsys.readouterr().out == "no reviews\n"
    start(config_path)
    capsys.readouterr()
    assert run(config_path, "review", "list", "--json") == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (row["name"], row["status"], row["items"], row["undecided"]) == ("q3", "open", 4, 4)


def test_show_lists_numbered_items_and_filters_by_state(config_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`review show` prints the scope, the tally and one row per item; `--state` narrows it."""
    start(config_path)
    capsys.readouterr()
    assert run(config_path, "review", "show", "q3") == 0
    out = capsys.readouterr().out
    assert "review q3 (open)" in out
    assert "roles: cluster-owner, project-owner, project-member" in out
    assert "4 bindings: kept 0, converted 0, removed 0, undecided 4" in out
    assert out.count(" pending ") == 4
    assert run(config_path, "review", "show", "q3", "--state", "applied") == 0
    assert "no items in that state" in capsys.readouterr().out


# --- decide, plan, apply, undo, close, report -----------------------------------------------------------------


def test_plan_apply_and_undo_change_rancher_and_the_audit_chain(
    config_path: Path, rancher: RancherEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """Decided removals are planned, applied (gone from Rancher), one is undone (back in Rancher), all audited."""
    start(config_path)
    ids = decide_all(config_path, {PROD_MEMBERS: Verdict.REMOVE, STAGING_MEMBER: Verdict.KEEP})
    first, second = PROD_MEMBERS, STAGING_MEMBER
    capsys.readouterr()
    assert run(config_path, "review", "plan", "q3") == 0
    out = capsys.readouterr().out
    assert "plan: 1 binding would be deleted, 0 left alone (changed or gone); 1 kept, 2 undecided" in out
    assert first in out
    assert first in live_ids(rancher)
    assert run(config_path, "review", "apply", "q3") == 0
    assert "1 binding deleted, 0 left alone, 0 failed" in capsys.readouterr().out
    assert first not in live_ids(rancher)
    assert {second, STAGING_OWNERS, PROD_OWNER} <= live_ids(rancher)
    assert run(config_path, "review", "undo", str(ids[first])) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"item {ids[first]} restored:")
    restored = {b["id"]: b for b in rancher.objects("projectRoleTemplateBinding")}[first]
    assert restored["labels"]["team"] == "payments"  # recreated with its own name and the labels people set
    assert run(config_path, "review", "undo", str(ids[first])) == 2  # a second undo: nothing left to undo
    assert "is undone; only applied removals and conversions can be undone" in capsys.readouterr().err
    operator = f"cli:{getpass.getuser()}"
    actors = audit_actors(config_path)
    for action in (A.REVIEW_STARTED, A.REVIEW_APPLYING, A.REVIEW_APPLIED, A.REVIEW_RESTORING, A.REVIEW_RESTORED):
        assert actors.get(action) == operator, action


def test_apply_with_nothing_decided_exits_2_and_deletes_nothing(
    config_path: Path, rancher: RancherEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """Applying a review nobody decided is refused on one line; Rancher is untouched."""
    start(config_path)
    before = live_ids(rancher)
    capsys.readouterr()
    assert run(config_path, "review", "apply", "q3") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: review q3 has nothing to apply (4 undecided, 0 kept, 0 applied already)")
    assert err.count("\n") == 1
    assert live_ids(rancher) == before


def test_undo_of_an_item_that_was_not_removed_exits_2(config_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Undo of a pending item, of an unknown number and of a non-number: one line each, exit 2."""
    start(config_path)
    ids = decide_all(config_path, {})
    capsys.readouterr()
    pending = min(ids.values())
    assert run(config_path, "review", "undo", str(pending)) == 2
    assert "only applied removals and conversions can be undone" in capsys.readouterr().err
    assert run(config_path, "review", "undo", "999999") == 2
    assert capsys.readouterr().err.startswith("error: there is no review item 999999")
    assert run(config_path, "review", "undo", "12abc") == 2
    assert capsys.readouterr().err.startswith("error: `12abc` is not a review item number")
    assert items_by_binding(config_path) == dict.fromkeys(ids, (ItemState.PENDING, None))


def test_close_gives_undecided_items_the_on_timeout_verdict(
    config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`review close` on a remove-on-timeout review decides every undecided item as remove, audited."""
    name_args = ("--roles", ROLES, "--targets", "staging-*", "--on-timeout", "remove", "--due", "2d")
    assert run(config_path, "review", "start", "--name", "q3", *name_args) == 0
    capsys.readouterr()
    assert run(config_path, "review", "close", "q3") == 0
    out = capsys.readouterr().out
    assert "closed review q3: 2 bindings: kept 0, converted 0, removed 0, undecided 0, to apply 2" in out
    assert all(v == (ItemState.DECIDED, Verdict.REMOVE) for v in items_by_binding(config_path).values())
    assert run(config_path, "review", "close", "q3") == 2
    assert "is closed already" in capsys.readouterr().err
    assert A.REVIEW_CLOSED in audit_actions(config_path)


def test_report_csv_has_one_row_per_item_and_defuses_formulas(
    config_path: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The CSV report has the header and one row per item; a reason that looks like a formula is quoted as text."""
    start(config_path)
    ids = decide_all(config_path, {})
    first = PROD_MEMBERS

    async def decide() -> None:
        async with running(load_config(config_path)) as bot:
            await bot.reviews.decisions.decide(ids[first], SRE, Verdict.KEEP, '=HYPERLINK("http://evil","x")')

    asyncio.run(decide())
    capsys.readouterr()
    assert run(config_path, "review", "report", "q3", "--format", "csv") == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0][:3] == ["item", "target", "role"]
    assert len(rows) == 5
    reasons = [r[rows[0].index("reason")] for r in rows[1:]]
    assert '\'=HYPERLINK("http://evil","x")' in reasons
    out_file = tmp_path / "q3.md"
    assert run(config_path, "review", "report", "q3", "--format", "md", "--output", str(out_file)) == 0
    md = out_file.read_text(encoding="utf-8")
    assert md.startswith("# Access review q3\n")
    assert md.count("\n| ") == 5  # the header row and four items


def test_report_in_an_unknown_format_or_folder_exits_2(
    config_path: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`--format xls` and an `--output` in a folder that does not exist are one-line refusals."""
    start(config_path)
    capsys.readouterr()
    assert run(config_path, "review", "report", "q3", "--format", "xls") == 2
    assert "invalid choice: 'xls'" in capsys.readouterr().err
    assert run(config_path, "review", "report", "q3", "--output", str(tmp_path / "no" / "r.csv")) == 2
    assert capsys.readouterr().err.startswith("error: --output: there is no directory")


# --- hostile and malformed arguments ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (("review", "show", "nope"), "error: there is no review nope"),
        (("review", "plan", "nope"), "error: there is no review nope"),
        (("review", "apply", "nope"), "error: there is no review nope"),
        (("review", "close", "nope"), "error: there is no review nope"),
        (("review", "report", "nope"), "error: there is no review nope"),
        (("review", "start", "--name", "bad name"), "error: `bad name` is not a campaign name"),
        (("review", "start", "--name", "ok", "--due", "5x"), "error: `5x` is not a duration"),
        (("review", "start", "--name", "ok", "--due", "30m"), "error: a review runs between 1h and 365d, not 30m"),
        (("review", "start", "--name", "ok", "--roles", ",,"), "error: no roles given"),
        (("review", "start", "--name", "ok", "--roles", "Cluster Owner!"), "error: `cluster owner!` is not one of"),
        (("review", "start", "--name", "ok", "--subjects", "robots"), "error: `robots` is not a kind of subject"),
        (("review", "start", "--name", "ok", "--on-timeout", "x"), "error: `x` is not what happens on timeout"),
        (("review", "show", "q", "--state", "gone"), "error: `gone` is not an item state"),
        (("review", "list", "--limit", "0"), "error: --limit 0 is out of range"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(
    config_path: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], expected: str
) -> None:
    """Each malformed argument or unknown review is one line on stderr, exit 2, nothing written."""
    assert run(config_path, *argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(expected), err
    assert err.count("\n") == 1
    assert A.REVIEW_STARTED not in audit_actions(config_path)


def best_of_3(fn: Callable[[], None]) -> float:
    """The fastest of three runs of `fn()`, in seconds."""
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


@pytest.mark.parametrize(
    "argv",
    [
        ("review", "start", "--name", "n" * 10_000),
        ("review", "start", "--name", "ok", "--roles", "r," * 5_000),
        ("review", "start", "--name", "ok", "--targets", "a" * 10_000),
        ("review", "start", "--name", "ok", "--due", "9" * 10_000 + "d"),
        ("review", "start", "--name", "ok", "--due", "99999999999999d"),
        ("review", "start", "--name", "q3\x1b[31m\r\n"),
        ("review", "show", "\x1b]0;pwned\x07" + "x" * 10_000),
        ("review", "undo", "9" * 10_000),
        ("review", "undo", "-1"),
        ("review", "undo", "\x00"),
        ("review", "report", "=cmd|' /C calc'!A0"),
    ],
)
def test_hostile_arguments_are_refused_quickly_without_echoing_them(
    config_path: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    """Huge, control-character or formula-looking arguments: exit 2, one short line without escapes, fast."""

    def once() -> None:
        assert run(config_path, *argv) == 2

    assert best_of_3(once) < 2.0  # generous: loading the config and the database dominates
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 3
    assert len(set(lines)) == 1
    assert len(lines[0]) < 300
    assert "\x1b" not in err
    assert "\x00" not in err
    assert "\x07" not in err


def test_report_defuses_formula_and_markup_in_names_read_from_rancher(
    config_path: Path, rancher: RancherEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Rancher user named like a formula, with pipes, markup and a newline: CSV cell quoted as text, Markdown row
    escaped and kept on one line, the terminal table free of control characters."""
    hostile = '=HYPERLINK("http://x")|<b>\n@SUM(A1)\x1b[2J'
    rancher.add_user(id="u-hostile01", name=hostile)
    rancher.add_binding(
        "crtb", name="crtb-hostile", clusterId=PROD, roleTemplateId="cluster-member", userId="u-hostile01"
    )
    assert run(config_path, "review", "start", "--name", "q3", "--roles", "cluster-member", "--targets", "prod-*") == 0
    capsys.readouterr()
    assert run(config_path, "review", "report", "q3", "--format", "csv") == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    holders = [r[rows[0].index("holder")] for r in rows[1:]]
    assert any(h.startswith("'=HYPERLINK") for h in holders), holders
    assert not any(h.startswith(("=", "@", "+", "-")) for h in holders)
    assert run(config_path, "review", "report", "q3", "--format", "md") == 0
    md = capsys.readouterr().out
    (line,) = [x for x in md.splitlines() if "HYPERLINK" in x]
    assert "\\|&lt;b&gt;" in line
    assert line.count(" | ") == len(rows[0]) - 1  # the name's pipe does not add a column
    assert run(config_path, "review", "show", "q3") == 0
    assert "\x1b" not in capsys.readouterr().out


def test_a_review_of_a_large_estate_covers_every_standing_binding_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Over 2,500 generated bindings read in pages of 500 (`rancher.page_size`, marker pages as Rancher's): one item
    per standing binding of the roles,
    none made by the bot, none of Rancher's own crtb-grb-*; the CSV report has a row for each."""
    fixture = standing_estate(bindings=2_500, clusters=9, users=300, groups=40, seed=11)
    with run_emulator(fixture) as emu:
        config = write_config(tmp_path, emu.url, {"rancher": {"page_size": 500}})
        roles = {"cluster-owner", "project-owner"}
        expected = {
            b["id"]
            for t in ("clusterRoleTemplateBinding", "projectRoleTemplateBinding")
            for b in emu.objects(t)
            if b["roleTemplateId"] in roles
            and "accessbot.io/grant" not in b["labels"]
            and "authz.management.cattle.io/grb-owner" not in b["labels"]
        }
        emu.reset_counters()
        assert run(config, "review", "start", "--name", "big", "--roles", ",".join(sorted(roles))) == 0
        pages = emu.request_counts()["by_path"].get("GET /v3/projectroletemplatebindings", 0)
        report = tmp_path / "big.csv"
        assert run(config, "review", "report", "big", "--format", "csv", "--output", str(report)) == 0
    assert capsys.readouterr().out.startswith(f"started review big: {len(expected)} standing bindings")
    rows = list(csv.reader(io.StringIO(report.read_text(encoding="utf-8"))))
    binding_col = rows[0].index("binding")
    assert sorted(r[binding_col] for r in rows[1:]) == sorted(expected)
    assert pages >= 3  # the PRTBs alone span several pages


def test_apply_leaves_a_binding_changed_in_rancher_alone_and_says_why(
    config_path: Path, rancher: RancherEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """A binding deleted and created again since the campaign's read is reported by plan and apply, not deleted."""
    start(config_path)
    decide_all(config_path, {PROD_MEMBERS: Verdict.REMOVE})
    assert rancher.remove_binding(PROD_MEMBERS)
    rancher.add_binding(
        "prtb", name="prtb-std02", projectId=f"{PROD}:p-j5c2l", roleTemplateId="project-member",
        groupPrincipalId="genericoidc_group://devs",
    )  # fmt: skip
    capsys.readouterr()
    assert run(config_path, "review", "plan", "q3") == 0
    assert "0 bindings would be deleted, 1 left alone (changed or gone)" in capsys.readouterr().out
    assert run(config_path, "review", "apply", "q3") == 0
    out = capsys.readouterr().out
    assert "left alone: changed in Rancher since the campaign's read: it was deleted and created again" in out
    assert "0 bindings deleted, 1 left alone, 0 failed" in out
    assert PROD_MEMBERS in live_ids(rancher)
    assert items_by_binding(config_path)[PROD_MEMBERS][0] is ItemState.SKIPPED


def test_apply_when_rancher_refuses_exits_1_and_the_next_apply_finishes(
    config_path: Path, rancher: RancherEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rancher failing the deletion: exit 1, the item stays decided (nothing half-done); applying again deletes it."""
    start(config_path)
    decide_all(config_path, {PROD_MEMBERS: Verdict.REMOVE})
    rancher.fail_next("projectroletemplatebindings", 403, count=1, method="DELETE")  # permanent: no retry
    capsys.readouterr()
    assert run(config_path, "review", "apply", "q3") == 1
    out = capsys.readouterr().out
    assert "not applied: Rancher refused the deletion" in out
    assert "0 bindings deleted, 0 left alone, 1 failed" in out
    assert PROD_MEMBERS in live_ids(rancher)
    assert items_by_binding(config_path)[PROD_MEMBERS] == (ItemState.DECIDED, Verdict.REMOVE)
    assert run(config_path, "review", "apply", "q3") == 0
    assert PROD_MEMBERS not in live_ids(rancher)
    assert items_by_binding(config_path)[PROD_MEMBERS] == (ItemState.APPLIED, Verdict.REMOVE)


def test_start_when_rancher_cannot_be_read_exits_1_and_stores_nothing(
    config_path: Path, rancher: RancherEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """A failed read of Rancher: one line, exit 1, no campaign and no audit event (start writes after the read)."""
    rancher.fail_next("projectroletemplatebindings", 403, count=1, method="GET")
    assert run(config_path, "review", "start", "--name", "q3", "--roles", ROLES) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert err.count("\n") == 1
    assert run(config_path, "review", "list") == 0
    assert capsys.readouterr().out == "no reviews\n"
    assert A.REVIEW_STARTED not in audit_actions(config_path)


ARG_MAX_STRLEN = 131_072
"""Linux's longest single argument (MAX_ARG_STRLEN, 32 pages): the largest value a shell can hand the CLI."""


@pytest.mark.parametrize(
    "argv",
    [
        ("review", "start", "--name", "ok", "--roles", "r," * (ARG_MAX_STRLEN // 2)),
        ("review", "start", "--name", "ok", "--targets", "*/" * (ARG_MAX_STRLEN // 2)),
        ("review", "start", "--name", "n" * ARG_MAX_STRLEN),
        ("review", "show", "q3", "--state", "pending," * (ARG_MAX_STRLEN // 8)),
    ],
)
def test_the_longest_arguments_a_shell_can_pass_stay_within_a_memory_budget(
    config_path: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    """128 KiB arguments are refused (exit 2, one short line) using under 32 MiB of memory at the peak."""
    import tracemalloc

    tracemalloc.start()
    try:
        assert run(config_path, *argv) == 2
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 32 * 2**20
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert len(err) < 300
