"""Block Kit for `/access list` and App Home: grouping, escaping and Slack's limits."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from bot.core.effective_access import AccessReport, Right, Source, SourceKind
from bot.core.model import Grant, GrantState, PrincipalSet, RancherUser, Scope, Target
from bot.services.grants import Holder, HoldersReport
from bot.slack.access_blocks import access_list_blocks, access_list_message, app_home_view, mrkdwn_escape, who_blocks

NOW = 1_800_000_000
PSET = PrincipalSet(
    "genericoidc_user://a", ("genericoidc_group://sre",), "u-aaaaaaaaaa", group_names={"genericoidc_group://sre": "sre"}
)
USER = RancherUser("u-aaaaaaaaaa", "Alice", ("genericoidc_user://a", "local://u-aaaaaaaaaa"))


def right(cluster: str, project: str = "", role: str = "Cluster Member", source: str = "direct") -> Right:
    """A right on a cluster, or on a project when `project` is given."""
    scope = Scope.PROJECT if project else Scope.CLUSTER
    return Right(
        scope=scope,
        role_id="r",
        role_name=role,
        source=Source(SourceKind.DIRECT),
        source_text=source,
        cluster_id=f"c-{cluster}",
        cluster_name=cluster,
        project_id=f"c-{cluster}:p-{project}" if project else None,
        project_name=project,
    )


def report(rights: list[Right], user: RancherUser | None = USER, filter: str | None = None) -> AccessReport:
    """An access report around the given rights."""
    return AccessReport(principals=PSET, user=user, rights=tuple(rights), now=NOW, filter=filter)


def texts(blocks: list[dict[str, Any]]) -> list[str]:
    """Every text in the blocks, in order."""
    out = []
    for block in blocks:
        if "text" in block:
            out.append(block["text"]["text"])
        out.extend(e["text"] for e in block.get("elements", []))
    return out


def test_rights_are_grouped_by_cluster_with_projects_under_it() -> None:
    """One section per cluster; project rights sit under their cluster with the source."""
    blocks = access_list_blocks(
        report(
            [
                right("dev-eu"),
                right("dev-eu", "payments", "Project Owner", "via group sre"),
                right("prod-eu", role="Read"),
            ]
        )
    )
    body = texts(blocks)
    assert body[0] == "Your Rancher access"
    assert "*Alice*" in body[1]
    assert "sre" in body[1]
    assert body[2] == "*dev-eu*\n• Cluster Member · _direct_\n• payments › Project Owner · _via group sre_"
    assert body[3] == "*prod-eu*\n• Read · _direct_"


def test_text_from_rancher_is_escaped() -> None:
    """Names containing `<!channel>` or `&` are escaped for mrkdwn."""
    blocks = access_list_blocks(report([right("<!channel>", "a&b", "<@U123>")]))
    dumped = json.dumps(blocks)
    assert "<!channel>" not in dumped
    assert "<@U123>" not in dumped
    assert "&lt;!channel&gt;" in dumped
    assert "a&amp;b" in dumped
    assert mrkdwn_escape("<a & b>") == "&lt;a &amp; b&gt;"


def test_many_clusters_truncate_with_an_honest_count() -> None:
    """Past 50 blocks the list stops and says how many rights are hidden and how to narrow it."""
    rights = [right(f"cluster-{i:03d}", role="Cluster Member") for i in range(80)]
    rights += [right(f"cluster-{i:03d}", "web", "Read-only") for i in range(80)]
    rights.sort(key=lambda r: (r.cluster_name, r.project_name))
    blocks = access_list_blocks(report(rights))
    assert len(blocks) == 50
    shown = sum(t.count("• ") for t in texts(blocks))
    note = texts(blocks)[-1]
    assert note == f"…and {160 - shown} more rights, narrow with `/access list CLUSTER`"
    assert 160 - shown > 0


def test_long_cluster_section_is_split_under_3000_chars() -> None:
    """A cluster with hundreds of project rights is split into sections of at most 3000 chars."""
    rights = [
        right("big", f"project-with-a-rather-long-name-{i:04d}", "Project Member", "via group platform-engineers")
        for i in range(300)
    ]
    blocks = access_list_blocks(report(rights))
    assert len(blocks) <= 50
    assert all(len(t) <= 3000 for t in texts(blocks))
    shown = sum(t.count("• ") for t in texts(blocks))
    if shown < 300:
        assert texts(blocks)[-1].startswith(f"…and {300 - shown} more")
    assert texts(blocks)[3].startswith("*big* (continued)")


def test_unknown_user_and_no_rights() -> None:
    """No Rancher user yet is said plainly, and an empty list says how to ask for access."""
    blocks = access_list_blocks(report([], user=None))
    body = texts(blocks)
    assert body[1].startswith("No Rancher user yet")
    assert "`/access request`" in body[2]


def test_admin_and_filter_in_message() -> None:
    """A global admin is shown as everything; the fallback text and header name the filter."""
    admin = Right(Scope.GLOBAL, "admin", "Admin", Source(SourceKind.DIRECT), "direct", everything=True)
    message = access_list_message(report([admin], filter="prod-eu"))
    assert message["text"] == "You are a Rancher global admin (1 rights in prod-eu)."
    assert texts(message["blocks"])[0] == "Your Rancher access in prod-eu"
    assert "everything, in every cluster" in texts(message["blocks"])[2]


@pytest.mark.parametrize("n_rights", [0, 5, 1000])
def test_app_home_lists_grants_requests_and_access_within_100_blocks(n_rights: int) -> None:
    """The home view shows active grants with time left, pending requests, and rights, within 100 blocks."""
    active = Grant(
        id="g-12",
        slack_user="U1",
        subject="a",
        target=Target("c-prod", "c-prod:p-x"),
        role_id="project-owner",
        duration_s=7200,
        rule="r",
        state=GrantState.ACTIVE,
        requested_at=NOW - 600,
        expires_at=NOW + 4800,
    )
    pending = Grant(
        id="g-13",
        slack_user="U1",
        subject="a",
        target=Target("c-dev"),
        role_id="cluster-member",
        duration_s=3600,
        rule="r",
        state=GrantState.REQUESTED,
        requested_at=NOW - 300,
    )
    names = {"c-prod": "prod-eu", "c-prod:p-x": "payments", "c-dev": "dev-eu"}
    rights = [right(f"c{i // 10:03d}", f"p{i}") for i in range(n_rights)]
    rep = AccessReport(principals=PSET, user=USER, rights=tuple(rights), now=NOW, names=names)
    view = app_home_view(rep, active=[active], pending=[pending], now=NOW)
    assert view["type"] == "home"
    assert len(view["blocks"]) <= 100
    body = texts(view["blocks"])
    assert "• *g-12* project-owner on prod-eu/payments · 1h 20m left" in body
    assert "• *g-13* cluster-member on dev-eu · asked 5m ago, waiting for approval" in body
    assert all(len(t) <= 3000 for t in body)
    if n_rights == 1000:
        assert body[-1].startswith("…and ")


def test_app_home_when_rancher_is_down() -> None:
    """Without a report the home view still shows grants and a short problem line."""
    view = app_home_view(None, active=[], pending=[], now=NOW, problem="Rancher is not answering <now>")
    body = texts(view["blocks"])
    assert ":warning: Rancher is not answering &lt;now&gt;" in body
    assert "No active grants." in body


def test_who_blocks_list_holders_and_truncate() -> None:
    """Holders are listed with role and source, escaped, and cut with a count past the block budget."""
    holders = tuple(Holder(f"user <{i}>", "user", "r", "Project Owner", "direct", f"ns:prtb-{i}") for i in range(2000))
    blocks = who_blocks(HoldersReport(Target("c-1", "c-1:p-1"), "dev-eu", "payments", holders), max_blocks=6)
    body = texts(blocks)
    assert body[0] == "Who has access to dev-eu/payments"
    assert body[1].startswith("• :bust_in_silhouette: user &lt;0&gt; · Project Owner · _direct_")
    assert len(blocks) <= 6
    assert body[-1].startswith("…and ")
    assert all(len(t) <= 3000 for t in body)
    empty = who_blocks(HoldersReport(Target("c-1"), "dev-eu", "", ()))
    assert texts(empty)[1] == "Nobody holds a role directly on dev-eu."


def test_a_right_names_what_it_includes_and_whether_it_covers_every_project() -> None:
    """Inherited roles (roleTemplateIds) and owner-like cluster roles are said in the line, escaped."""
    owner = replace(right("dev-eu", role="Cluster Owner"), all_projects=True)
    lead = replace(right("dev-eu", "payments", "Project Lead"), includes=("Project Member", "<b>"))
    lines = "\n".join(texts(access_list_blocks(report([owner, lead]))))
    assert "• Cluster Owner (every project) · _direct_" in lines
    assert "• payments › Project Lead (includes Project Member, &lt;b&gt;) · _direct_" in lines


def test_restricted_admin_on_2_7_reads_as_everything_but_local() -> None:
    """A downstream-only `everything` (restricted-admin, Rancher 2.7) does not claim the local cluster."""
    admin = replace(right("x", role="Restricted Admin"), scope=Scope.GLOBAL, everything=True, downstream_only=True)
    assert "everything, in every cluster but `local`" in "\n".join(texts(access_list_blocks(report([admin]))))


@pytest.mark.parametrize(
    ("as_of", "needle"),
    [("login", "as of your last Rancher login"), ("refresh", "Rancher's copy of your groups"), ("", None)],
)
def test_group_rights_say_which_groups_rancher_enforces(as_of: str, needle: str | None) -> None:
    """genericoidc never refreshes groups (genericoidc_provider.go): the answer says they are as of the last login."""
    base = report([right("dev-eu", source="via group sre")])
    identity = texts(access_list_blocks(replace(base, groups_as_of=as_of)))[1]
    if needle is None:
        assert "Rancher login" not in identity
        assert "Rancher's copy" not in identity
    else:
        assert needle in identity
