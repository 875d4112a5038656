"""The group-source adapters against the dev IdP's Graph (entra) and Directory (google) endpoints over HTTP.

The endpoints' behaviour and its sources: accessbot_emulators/idp/graph.py and google.py.
"""

from __future__ import annotations

import copy
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from accessbot_emulators.idp.claims import entra_group_id, google_group_id, google_sub
from accessbot_emulators.serving import serve_in_thread
from bot.adapters.group_sources import GoogleDirectory, GraphGroups
from bot.core.errors import PermanentUpstreamError, TransientUpstreamError
from bot.core.model import Identity, VerifiedLogin
from bot.core.ports import AccountStatus
from tests.personas import ACCOUNTS, CLIENT_ID, CLIENT_SECRET, MANY_GROUPS, persona_server, service_account_file, start

__all__ = ["persona_server"]
Server = tuple[Any, str]


def _login(subject: str = "sub", **claims: object) -> VerifiedLogin:
    return VerifiedLogin("iss", subject, "a@example.com", True, "A", None, None, None, claims=claims)


def _graph(idp: Any, url: str | None = None, secret: str = CLIENT_SECRET) -> GraphGroups:
    async def token_endpoint() -> str:
        return f"{idp.issuer}/token"

    return GraphGroups(
        url=url or idp.base_url, token_endpoint=token_endpoint, client_id=CLIENT_ID, client_secret=secret
    )


@pytest.fixture
def entra(persona_server: Server) -> Any:
    """A fresh entra personality."""
    return start(persona_server, "entra")


async def test_graph_reads_every_transitive_group_with_its_display_name(entra: Any) -> None:
    """transitiveMemberOf is read page by page; directory roles are left out; names are kept beside the ids."""
    graph = _graph(entra)
    try:
        answer = await graph.groups(_login(oid=entra.store.accounts["carol"].object_id))
    finally:
        await graph.aclose()
    assert answer is not None
    assert len(answer.ids) == 1 + len(MANY_GROUPS)
    assert answer.ids[0] == entra_group_id("engineering")
    assert answer.names[entra_group_id("engineering")] == "engineering"


async def test_graph_token_is_reused_between_calls(entra: Any) -> None:
    """One client-credentials token serves many lookups until it nears expiry."""
    graph = _graph(entra)
    try:
        for _ in range(3):
            await graph.groups(_login(oid=entra.store.accounts["alice"].object_id))
    finally:
        await graph.aclose()
    assert len(entra.store.app_tokens) == 1


async def test_graph_cannot_tell_without_an_oid(entra: Any) -> None:
    """A login without the `oid` claim gives "cannot tell", never "no groups"."""
    graph = _graph(entra)
    try:
        assert await graph.groups(_login()) is None
    finally:
        await graph.aclose()


async def test_graph_without_permission_is_a_permanent_error_naming_the_code(persona_server: Server) -> None:
    """graph/errors: 403 Authorization_RequestDenied surfaces as a permanent error with that code."""
    accounts = copy.deepcopy(ACCOUNTS)
    accounts["clients"][0]["graph_permissions"] = ["User.Read"]
    idp = start(persona_server, "entra", accounts)
    graph = _graph(idp)
    try:
        with pytest.raises(PermanentUpstreamError) as info:
            await graph.groups(_login(oid=idp.store.accounts["alice"].object_id))
        with pytest.raises(PermanentUpstreamError):
            await graph.check()
    finally:
        await graph.aclose()
    assert info.value.code == "Authorization_RequestDenied"


async def test_graph_with_a_wrong_secret_fails_at_the_token_with_its_code(entra: Any) -> None:
    """AADSTS7000215 from the token endpoint is a permanent error (the credentials are wrong, not the network)."""
    graph = _graph(entra, secret="wrong")
    try:
        with pytest.raises(PermanentUpstreamError) as info:
            await graph.check()
    finally:
        await graph.aclose()
    assert info.value.code == "invalid_client"
    assert "wrong" not in repr(graph)


async def test_graph_unreachable_is_transient(entra: Any) -> None:
    """A Graph that cannot be reached may work later: transient."""
    graph = _graph(entra, url="http://127.0.0.1:9")
    try:
        with pytest.raises(TransientUpstreamError):
            await graph.groups(_login(oid="x"))
    finally:
        await graph.aclose()


@pytest.fixture
def hostile() -> Iterator[str]:
    """A server answering like Graph but hostile: a nextLink to another host, or a huge body."""

    async def member_of(request: Request) -> Response:
        if request.path_params["user"] == "huge":
            return Response(
                b'{"value": [' + b'{"id": "x"},' * 600_000 + b'{"id": "y"}]}', media_type="application/json"
            )
        return JSONResponse({"value": [], "@odata.nextLink": "http://evil.example/steal"})

    async def token(request: Request) -> Response:
        return JSONResponse({"access_token": "t", "expires_in": 3600})

    app = Starlette(
        routes=[Route("/v1.0/users/{user}/transitiveMemberOf", member_of), Route("/token", token, methods=["POST"])]
    )
    with serve_in_thread(app, lifespan="off") as url:
        yield url


async def test_graph_refuses_a_pagination_link_to_another_host(hostile: str) -> None:
    """The bearer token is never sent off the Graph host: a foreign nextLink is an error."""

    async def token_endpoint() -> str:
        return f"{hostile}/token"

    graph = GraphGroups(url=hostile, token_endpoint=token_endpoint, client_id="c", client_secret="s")
    try:
        with pytest.raises(PermanentUpstreamError, match="another host"):
            await graph.groups(_login(oid="someone"))
    finally:
        await graph.aclose()


async def test_graph_refuses_an_oversized_answer_within_budget(hostile: str) -> None:
    """A 7 MB page is refused once 4 MB have arrived (MAX_BODY), quickly (best of 3, generous budgets)."""

    async def token_endpoint() -> str:
        return f"{hostile}/token"

    best = float("inf")
    tracemalloc.start()
    graph = GraphGroups(url=hostile, token_endpoint=token_endpoint, client_id="c", client_secret="s")
    try:
        for _ in range(3):
            started = time.perf_counter()
            with pytest.raises(PermanentUpstreamError, match="too large"):
                await graph.groups(_login(oid="huge"))
            best = min(best, time.perf_counter() - started)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        await graph.aclose()
    assert best < 2.0
    assert peak < 64 * 1024 * 1024


@pytest.fixture
async def google(persona_server: Server, tmp_path: Path) -> AsyncIterator[tuple[Any, GoogleDirectory]]:
    """A fresh google personality and a Directory client with its service account key."""
    idp = start(persona_server, "google")
    directory = GoogleDirectory(
        credentials_file=service_account_file(idp, tmp_path), admin_email="admin@example.com", url=idp.base_url
    )
    yield idp, directory
    await directory.aclose()


def _identity(idp: Any, username: str) -> Identity:
    return Identity("U1", "T1", "iss", google_sub(idp.store.accounts[username]), "", "", (), 0, 0)


async def test_google_directory_lists_groups_by_id_and_shows_them_by_email(google: tuple[Any, GoogleDirectory]) -> None:
    """groups.list?userKey=<sub>: ids kept (Rancher's googleoauth_group://<id>), emails shown and matched."""
    idp, directory = google
    answer = await directory.groups(_login(google_sub(idp.store.accounts["alice"])))
    assert answer is not None
    assert answer.ids == (google_group_id("engineering"), google_group_id("sre"))
    assert answer.names[google_group_id("sre")] == "sre@example.com"


async def test_google_directory_pages_through_many_groups(google: tuple[Any, GoogleDirectory]) -> None:
    """nextPageToken is followed (200 groups a page)."""
    idp, directory = google
    answer = await directory.groups(_login(google_sub(idp.store.accounts["carol"])))
    assert answer is not None
    assert len(answer.ids) == 1 + len(MANY_GROUPS)


async def test_google_directory_cannot_tell_for_an_unknown_account(google: tuple[Any, GoogleDirectory]) -> None:
    """A 404 for the user key (not a Workspace account) is "cannot tell", not "no groups"."""
    _, directory = google
    assert await directory.groups(_login("123456789")) is None


@pytest.mark.parametrize(
    ("event", "status"),
    [(None, AccountStatus.ACTIVE), ("disabled", AccountStatus.SUSPENDED), ("deleted", AccountStatus.DELETED)],
)
async def test_google_directory_says_whether_the_account_is_active(
    google: tuple[Any, GoogleDirectory], event: str | None, status: AccountStatus
) -> None:
    """users.get: `suspended` true → suspended; 404 → deleted; otherwise active."""
    idp, directory = google
    identity = _identity(idp, "alice")
    if event:
        idp.account_event("alice", event)
    assert await directory.account_status(identity) is status


async def test_google_directory_without_delegated_scopes_is_unauthorized_client(
    google: tuple[Any, GoogleDirectory],
) -> None:
    """service-account#delegatingauthority: scopes not delegated → unauthorized_client, a permanent error."""
    idp, directory = google
    idp.google.delegated_scopes = set()
    with pytest.raises(PermanentUpstreamError) as info:
        await directory.check()
    assert info.value.code == "unauthorized_client"


async def test_google_directory_check_passes_with_delegation(google: tuple[Any, GoogleDirectory]) -> None:
    """A token acting as an admin and one group read."""
    _, directory = google
    assert "can read groups" in await directory.check()
    assert "PRIVATE" not in repr(directory)


def test_unreadable_service_account_key_is_a_clear_error(tmp_path: Path) -> None:
    """A key file that is not a service account key fails with a message naming no key material."""
    bad = tmp_path / "key.json"
    bad.write_text('{"client_email": "x"}')
    with pytest.raises(PermanentUpstreamError, match="cannot be read"):
        GoogleDirectory(credentials_file=bad, admin_email="admin@example.com")
