"""Linking and identity sync with real adapters: dev IdP and Slack emulator on loopback, SQLite on disk."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import time_machine
from cryptography.fernet import Fernet

from accessbot_emulators.idp import complete_login
from accessbot_emulators.slack import SlackEmulator
from bot.adapters.clock import SystemClock
from bot.adapters.oidc import OidcClient
from bot.adapters.sealing import FernetSealer
from bot.adapters.slack_notifier import SlackNotifier, make_client
from bot.adapters.store import open_storage
from bot.core import audit_actions
from bot.core.errors import NotLinked, TokenRejected
from bot.core.model import AuditEvent, LinkStatus
from bot.core.storage import Storage
from bot.demo import botconfig
from bot.services.audit import AuditLog
from bot.services.identity_sync import IdentitySync, Offboarding, RefreshOutcome
from bot.services.link_outcomes import Failure, LinkRefused, LinkResult
from bot.services.linking import LinkingService
from bot.services.outbox import Outbox, OutboxSettings
from bot.services.refusals import Refusals
from bot.slack.notices import SlackNotices
from tests import factories
from tests.conftest import IDP_PASSWORDS, SLACK_ALICE, SLACK_ALICE_TWIN, SLACK_BOB, TEAM, RunningIdP

PUBLIC_URL = "http://127.0.0.1:9"


@dataclass
class Rig:
    """The service, its store and IdP, a browser, and what the hooks were called with."""

    service: LinkingService
    sync: IdentitySync
    store: Storage
    sealer: FernetSealer
    oidc: OidcClient
    idp: RunningIdP
    browser: httpx.AsyncClient
    db_path: Path
    offboarded: list[tuple[str, str]] = field(default_factory=list)
    groups_removed: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    def reconfigure(self, **changes: Any) -> None:
        """Replace the linking service with one built from the same parts and changed settings."""
        self.service = LinkingService(**{**self.settings, **changes})

    async def begin(self, slack_user: str, username: str, *, deny: bool = False) -> tuple[dict[str, str], str]:
        """Begin and start a link, sign in at the IdP; return the callback parameters and the cookie."""
        url = self.service.begin_link(slack_user, TEAM)
        attempt = parse_qs(urlsplit(url).query)["attempt"][0]
        begun = await self.service.start(attempt)
        location = await complete_login(self.browser, begun.redirect_url, username, IDP_PASSWORDS[username], deny=deny)
        params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        return params, begun.cookie

    async def callback(self, params: dict[str, str], cookie: str | None) -> LinkResult:
        """Deliver the IdP's callback to the service."""
        return await self.service.complete(
            state=params.get("state"), code=params.get("code"), error=params.get("error"), cookie=cookie
        )

    async def link(self, slack_user: str = SLACK_ALICE, username: str = "alice") -> LinkResult:
        """The whole flow in one go."""
        params, cookie = await self.begin(slack_user, username)
        return await self.callback(params, cookie)

    def audit(self, action: str) -> list[AuditEvent]:
        """Audit events of one action."""
        return [e for e in self.store.audit.events() if e.action == action]

    def outbox(self, channel: str) -> list[str]:
        """Texts queued in the outbox for a channel or DM user."""
        return factories.queued_texts(self.store, channel)

    def sealed_refresh_token(self, slack_user: str = SLACK_ALICE) -> str:
        """The stored (sealed) refresh token."""
        record = self.store.links.get(slack_user)
        assert record is not None
        assert record.sealed_refresh_token
        return record.sealed_refresh_token

    def plaintext_refresh_token(self, slack_user: str = SLACK_ALICE) -> str:
        """The stored refresh token, unsealed with the right key."""
        return self.sealer.unseal(self.sealed_refresh_token(slack_user))


@dataclass
class RecordingGrants:
    """The grants port of offboarding, recording what it was asked to revoke (linking is under test, not grants)."""

    offboarded: list[tuple[str, str]]
    groups_removed: list[tuple[str, tuple[str, ...]]]
    withdrawn: list[tuple[str, str]] = field(default_factory=list)

    async def revoke_all_for_user(self, slack_user: str, *, reason: str) -> int:
        """Record an offboarding."""
        self.offboarded.append((slack_user, reason))
        return 0

    async def revoke_for_removed_groups(self, slack_user: str, removed_groups: Sequence[str]) -> int:
        """Record lost groups."""
        self.groups_removed.append((slack_user, tuple(removed_groups)))
        return 0

    async def request_names(self, slack_user: str) -> dict[str, tuple[str, str]]:
        """No requests to name."""
        return {}

    def withdraw_requests(
        self, slack_user: str, reason: str, names: Mapping[str, tuple[str, str]] | None = None
    ) -> int:
        """Record a withdrawal (counted as an offboarding step)."""
        self.withdrawn.append((slack_user, reason))
        return 0


@pytest.fixture
async def rig(tmp_path: Path, slack: SlackEmulator, idp: RunningIdP) -> AsyncIterator[Rig]:
    """A linking service wired to real adapters."""
    db_path = tmp_path / "linking.db"
    store = open_storage(db_path)
    clock = SystemClock()
    sealer = FernetSealer([Fernet.generate_key().decode()])
    audit = AuditLog(tx=store.tx, store=store.audit, clock=clock)
    notifier = SlackNotifier(make_client(botconfig.BOT_TOKEN, slack.api_url))
    outbox = Outbox(
        store=store.outbox,
        tx=store.tx,
        renderer=SlackNotices("/access"),
        notifier=notifier,
        clock=clock,
        audit=audit,
        channels=botconfig.CHANNELS,
        settings=OutboxSettings(lane_pace=0.0, rate=1000.0),
    )
    oidc = OidcClient(
        issuer=idp.url,
        client_id=botconfig.CLIENT_ID,
        client_secret=botconfig.CLIENT_SECRET,
        redirect_uri=f"{PUBLIC_URL}/oauth/callback",
        scopes=("openid", "email", "profile", "groups", "offline_access"),
        timeout=5.0,
    )
    offboarded: list[tuple[str, str]] = []
    removed: list[tuple[str, tuple[str, ...]]] = []
    offboarding = Offboarding(RecordingGrants(offboarded, removed))
    refusals = Refusals(tx=store.tx, audit=audit, outbox=outbox, clock=clock)
    settings: dict[str, Any] = {
        "tx": store.tx,
        "links": store.links,
        "attempts": store.attempts,
        "idp": oidc,
        "sealer": sealer,
        "notifier": notifier,
        "audit": audit,
        "outbox": outbox,
        "refusals": refusals,
        "offboarding": offboarding,
        "clock": clock,
        "public_url": PUBLIC_URL,
        "login_ttl": 600,
        "refresh_interval": 6 * 3600,
    }
    service = LinkingService(**settings)
    sync = IdentitySync(
        tx=store.tx,
        links=store.links,
        leases=store.leases,
        idp=oidc,
        sealer=sealer,
        audit=audit,
        outbox=outbox,
        refusals=refusals,
        offboarding=offboarding,
        clock=clock,
        refresh_interval=6 * 3600,
        retry_delays=(0.01, 0.01),
    )
    async with httpx.AsyncClient(timeout=5) as browser:
        yield Rig(service, sync, store, sealer, oidc, idp, browser, db_path, offboarded, removed, settings)
    await oidc.aclose()
    store.database.close()


# --- linking ------------------------------------------------------------------------------------------


async def test_full_link_stores_the_identity_and_notifies(rig: Rig) -> None:
    """A complete flow stores the link with groups, audits it, and queues a security post and a DM."""
    result = await rig.link()
    assert result.ok
    assert result.identity is not None
    assert result.identity.subject == "sub-alice"
    assert rig.service.identity(SLACK_ALICE).groups == ("engineering", "sre")
    assert rig.service.is_linked(SLACK_ALICE)
    assert [r.target for r in rig.audit(audit_actions.LINK_CREATED)] == [SLACK_ALICE]
    assert any("linked to `alice@example.com`" in t for t in rig.outbox(botconfig.CHANNELS["security"]))
    assert any("now linked" in t for t in rig.outbox(SLACK_ALICE))


async def test_email_comparison_ignores_case(rig: Rig) -> None:
    """Bob's IdP email `Bob@Example.com` matches his Slack email `bob@example.com`."""
    assert (await rig.link(SLACK_BOB, "bob")).ok


async def test_refresh_tokens_are_unreadable_in_the_database_file(rig: Rig) -> None:
    """The raw SQLite bytes hold only the sealed refresh token; another key cannot open it."""
    await rig.link()
    plaintext = rig.plaintext_refresh_token()
    sealed = rig.sealed_refresh_token()
    raw = b"".join(p.read_bytes() for p in rig.db_path.parent.glob(rig.db_path.name + "*"))
    assert sealed.encode() in raw
    assert plaintext.encode() not in raw
    with pytest.raises(TokenRejected):
        FernetSealer([Fernet.generate_key().decode()]).unseal(sealed)


async def test_relinking_moves_the_identity_and_offboards_the_old_slack_user(rig: Rig) -> None:
    """The same IdP subject linked from a second Slack account revokes the first link, audited and notified."""
    await rig.link(SLACK_ALICE, "alice")
    result = await rig.link(SLACK_ALICE_TWIN, "alice")
    assert result.ok
    assert result.relinked
    assert not rig.service.is_linked(SLACK_ALICE)
    assert rig.service.identity(SLACK_ALICE_TWIN).subject == "sub-alice"
    assert (SLACK_ALICE, "identity linked to another Slack user") in rig.offboarded
    assert {r.target for r in rig.audit(audit_actions.LINK_REPLACED)} == {SLACK_ALICE, SLACK_ALICE_TWIN}
    assert any("linked to another Slack account" in t for t in rig.outbox(SLACK_ALICE))


async def test_relinking_the_same_identity_keeps_the_idp_session(rig: Rig) -> None:
    """Linking the same identity again replaces the link without revoking at the IdP, and refresh still works."""
    await rig.link()
    result = await rig.link()
    assert result.relinked
    assert rig.idp.idp.state()["active_refresh_families"] == 2
    assert rig.offboarded == []
    assert await rig.sync.refresh_one(SLACK_ALICE) is RefreshOutcome.REFRESHED
    details = rig.audit(audit_actions.LINK_REPLACED)[0].details
    assert details["previous_subject"] == "sub-alice"


async def test_email_domain_outside_the_allow_list_is_refused(rig: Rig) -> None:
    """With allowed_email_domains set, an identity from another domain cannot link."""
    rig.reconfigure(allowed_email_domains=("corp.example",))
    result = await rig.link()
    assert result.failure is Failure.DOMAIN_NOT_ALLOWED
    assert [r.reason for r in rig.audit(audit_actions.LOGIN_REFUSED)] == ["email domain not allowed"]


# --- refusals -----------------------------------------------------------------------------------------


async def test_replayed_state_is_refused_and_audited(rig: Rig) -> None:
    """A callback replayed with a used state is refused as a replay and audited."""
    params, cookie = await rig.begin(SLACK_ALICE, "alice")
    assert (await rig.callback(params, cookie)).ok
    again = await rig.callback(params, cookie)
    assert again.failure is Failure.STATE_REPLAYED
    assert [r.reason for r in rig.audit(audit_actions.LOGIN_STATE_MISMATCH)] == ["state already used"]
    assert any("state already used" in t for t in rig.outbox(botconfig.CHANNELS["security"]))


async def test_unknown_state_is_refused_and_audited(rig: Rig) -> None:
    """A callback with a state the bot never issued is refused and audited (as a tally row, nobody to name)."""
    result = await rig.callback({"state": "forged", "code": "x"}, "cookie")
    assert result.failure is Failure.STATE_UNKNOWN
    rig.settings["refusals"].tally.flush()
    assert [r.reason for r in rig.audit(audit_actions.LOGIN_STATE_MISMATCH)] == ["unknown state"]


async def test_expired_state_is_refused_and_audited(rig: Rig) -> None:
    """A callback arriving after the 10-minute login window is refused as expired."""
    params, cookie = await rig.begin(SLACK_ALICE, "alice")
    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=11), tick=True):
        result = await rig.callback(params, cookie)
    assert result.failure is Failure.STATE_EXPIRED
    assert [r.reason for r in rig.audit(audit_actions.LOGIN_STATE_MISMATCH)] == ["state expired"]
    assert not rig.service.is_linked(SLACK_ALICE)


@pytest.mark.parametrize(
    ("cookie", "failure", "why"),
    [
        (None, Failure.COOKIE_MISSING, "login cookie missing"),
        ("someone-elses-cookie", Failure.COOKIE_MISMATCH, "login cookie mismatch"),
    ],
    ids=["missing", "wrong"],
)
async def test_callback_without_the_starting_browsers_cookie_is_refused(
    rig: Rig, cookie: str | None, failure: Failure, why: str
) -> None:
    """A callback from a browser that did not open the start link is refused, audited and notified."""
    params, _ = await rig.begin(SLACK_ALICE, "alice")
    result = await rig.callback(params, cookie)
    assert result.failure is failure
    assert [r.reason for r in rig.audit(audit_actions.LOGIN_STATE_MISMATCH)] == [why]
    assert any(why in t for t in rig.outbox(botconfig.CHANNELS["security"]))
    assert not rig.service.is_linked(SLACK_ALICE)


async def test_email_not_matching_the_slack_profile_is_refused(rig: Rig) -> None:
    """Signing in as Bob from Alice's Slack account is refused, audited, and Bob's token is revoked."""
    result = await rig.link(SLACK_ALICE, "bob")
    assert result.failure is Failure.EMAIL_MISMATCH
    refusals = rig.audit(audit_actions.LOGIN_REFUSED)
    assert [r.reason for r in refusals] == ["email does not match the Slack profile"]
    assert rig.idp.idp.state()["active_refresh_families"] == 0
    assert not rig.service.is_linked(SLACK_ALICE)


async def test_unverified_email_is_refused(rig: Rig) -> None:
    """An IdP account whose matching email is not verified cannot link."""
    result = await rig.link(SLACK_ALICE, "mallory")
    assert result.failure is Failure.EMAIL_UNVERIFIED
    assert [r.reason for r in rig.audit(audit_actions.LOGIN_REFUSED)] == ["email not verified at the identity provider"]


async def test_idp_access_denied_is_refused_with_its_error(rig: Rig) -> None:
    """`error=access_denied` from the IdP ends the attempt with that error, audited."""
    params, cookie = await rig.begin(SLACK_ALICE, "alice", deny=True)
    assert params["error"] == "access_denied"
    result = await rig.callback(params, cookie)
    assert (result.failure, result.reason) == (Failure.IDP_ERROR, "access_denied")
    assert [r.reason for r in rig.audit(audit_actions.LOGIN_REFUSED)] == ["identity provider error access_denied"]


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        ({"sign": "bad-signature"}, "bad signature"),
        ({"sign": "none"}, "algorithm none not allowed"),
        ({"sign": "hs256-public-key"}, "algorithm HS256 not allowed"),
        ({"claims": {"iss": "https://evil.example"}}, "issuer mismatch"),
        ({"claims": {"aud": "someone-else"}}, "audience mismatch"),
        ({"claims": {"aud": ["someone-else", "another"]}}, "audience mismatch"),
        ({"exp_offset": -300}, "token expired"),
        ({"claims": {"nonce": None}}, "nonce missing"),
        ({"claims": {"nonce": "forged"}}, "nonce mismatch"),
        ({"sign": "unknown-kid"}, "unknown signing key"),
    ],
    ids=[
        "bad-signature",
        "alg-none",
        "hs256-public-key",
        "wrong-issuer",
        "wrong-audience",
        "aud-list-without-us",
        "expired",
        "missing-nonce",
        "wrong-nonce",
        "unknown-kid",
    ],
)
async def test_rejected_id_token_is_refused_audited_and_notified(rig: Rig, tamper: dict[str, Any], reason: str) -> None:
    """Each ID-token refusal ends the link with its reason, an audit event and a security-channel post."""
    rig.idp.idp.set_next_id_token(**tamper)
    result = await rig.link()
    assert (result.failure, result.reason) == (Failure.TOKEN_REJECTED, reason)
    assert [r.reason for r in rig.audit(audit_actions.ID_TOKEN_REJECTED)] == [reason]
    assert any(reason in t for t in rig.outbox(botconfig.CHANNELS["security"]))
    assert not rig.service.is_linked(SLACK_ALICE)


# --- keeping links honest -----------------------------------------------------------------------------


async def test_refresh_rotates_and_stores_the_new_token(rig: Rig) -> None:
    """A refresh stores the rotated refresh token; only one token of the family stays active at the IdP."""
    await rig.link()
    before = rig.plaintext_refresh_token()
    assert await rig.sync.refresh_one(SLACK_ALICE) is RefreshOutcome.REFRESHED
    after = rig.plaintext_refresh_token()
    assert after != before
    assert rig.idp.idp.state()["active_refresh_tokens"] == 1
    assert rig.audit(audit_actions.TOKEN_REFRESHED)[0].target == SLACK_ALICE


async def test_refresh_updates_groups_and_reports_removed_ones(rig: Rig) -> None:
    """Groups removed at the IdP are dropped from the link and handed to the groups-changed hook."""
    await rig.link()
    rig.idp.idp.set_groups("alice", ["engineering"])
    assert await rig.sync.refresh_one(SLACK_ALICE) is RefreshOutcome.REFRESHED
    assert rig.service.identity(SLACK_ALICE).groups == ("engineering",)
    assert rig.groups_removed == [(SLACK_ALICE, ("sre",))]


async def test_disabled_account_is_offboarded_on_refresh(rig: Rig) -> None:
    """invalid_grant for a disabled account revokes the link, calls the offboard hook, posts and DMs."""
    await rig.link()
    rig.idp.idp.set_disabled("alice", True)
    report = await rig.sync.refresh_all(int(datetime.now(UTC).timestamp()) + 7 * 3600)
    assert report.outcomes == {SLACK_ALICE: RefreshOutcome.REVOKED}
    row = rig.store.links.get(SLACK_ALICE)
    assert row is not None
    assert row.identity.status is LinkStatus.REVOKED
    assert row.sealed_refresh_token is None
    assert rig.offboarded
    assert rig.offboarded[0][0] == SLACK_ALICE
    assert [r.target for r in rig.audit(audit_actions.USER_DEACTIVATED)] == [SLACK_ALICE]
    assert any("no longer accepted" in t for t in rig.outbox(botconfig.CHANNELS["security"]))
    assert any("link was revoked" in t for t in rig.outbox(SLACK_ALICE))
    with pytest.raises(NotLinked):
        rig.service.identity(SLACK_ALICE)


async def test_refresh_token_reuse_is_detected_and_revokes_the_link(rig: Rig) -> None:
    """If someone else used the stored refresh token first, the IdP's reuse detection revokes the link."""
    await rig.link()
    await rig.oidc.refresh_tokens(rig.plaintext_refresh_token())  # a thief rotates the token first
    assert await rig.sync.refresh_one(SLACK_ALICE) is RefreshOutcome.REVOKED
    assert [r.target for r in rig.audit(audit_actions.TOKEN_REUSE_DETECTED)] == [SLACK_ALICE]
    assert any("reuse detected" in t for t in rig.outbox(botconfig.CHANNELS["security"]))


async def test_transient_idp_failure_backs_off_and_never_revokes(rig: Rig) -> None:
    """Repeated 503s leave the link active, count a failure, and schedule a later retry."""
    await rig.link()
    rig.idp.idp.fail_next("token", 503, count=3)
    now = int(datetime.now(UTC).timestamp())
    assert await rig.sync.refresh_one(SLACK_ALICE) is RefreshOutcome.RETRY
    row = rig.store.links.get(SLACK_ALICE)
    assert row is not None
    assert row.identity.status is LinkStatus.ACTIVE
    assert row.refresh_failures == 1
    assert row.next_refresh_at is not None
    assert now + 50 <= row.next_refresh_at <= now + 70
    assert [r.outcome for r in rig.audit(audit_actions.TOKEN_REFRESH_FAILED)] == ["failed"]
    assert not rig.offboarded
    assert (await rig.sync.refresh_all(now)).outcomes == {}
    report = await rig.sync.refresh_all(now + 3600)
    assert report.outcomes == {SLACK_ALICE: RefreshOutcome.REFRESHED}
    assert rig.store.links.get(SLACK_ALICE).refresh_failures == 0  # type: ignore[union-attr]


async def test_rejected_id_token_on_refresh_keeps_the_rotated_token(rig: Rig) -> None:
    """A tampered ID token on refresh is refused, but the rotated refresh token is stored first."""
    await rig.link()
    before = rig.plaintext_refresh_token()
    rig.idp.idp.set_next_id_token(claims={"aud": "someone-else"})
    assert await rig.sync.refresh_one(SLACK_ALICE) is RefreshOutcome.RETRY
    assert rig.plaintext_refresh_token() != before
    assert [r.reason for r in rig.audit(audit_actions.ID_TOKEN_REJECTED)] == ["audience mismatch"]
    assert await rig.sync.refresh_one(SLACK_ALICE) is RefreshOutcome.REFRESHED


# --- unlink -------------------------------------------------------------------------------------------


async def test_unlink_revokes_the_token_at_the_idp(rig: Rig) -> None:
    """Unlinking revokes the refresh token family at the IdP, drops the token, offboards and audits."""
    await rig.link()
    result = await rig.service.unlink(SLACK_ALICE)
    assert result.idp_revoked is True
    state = rig.idp.idp.state()
    assert (state["active_refresh_families"], state["revoked_refresh_families"]) == (0, 1)
    row = rig.store.links.get(SLACK_ALICE)
    assert row is not None
    assert row.sealed_refresh_token is None
    assert row.identity.status is LinkStatus.REVOKED
    assert rig.offboarded == [(SLACK_ALICE, "unlinked")]
    assert [r.outcome for r in rig.audit(audit_actions.LINK_REMOVED)] == ["ok"]


async def test_unlink_reports_a_failed_revocation(rig: Rig) -> None:
    """When the IdP refuses the revocation, unlink still completes and reports the failure."""
    await rig.link()
    rig.idp.idp.fail_next("revoke", 503, count=5)
    result = await rig.service.unlink(SLACK_ALICE)
    assert result.idp_revoked is None
    assert result.idp_error
    assert not rig.service.is_linked(SLACK_ALICE)
    assert [r.outcome for r in rig.audit(audit_actions.LINK_REMOVED)] == ["failed"]
    assert any("failed" in t for t in rig.outbox(botconfig.CHANNELS["security"]))


async def test_unlink_without_a_link_raises_not_linked(rig: Rig) -> None:
    """Unlinking an unlinked user is a NotLinked user error."""
    with pytest.raises(NotLinked):
        await rig.service.unlink(SLACK_BOB)


async def test_start_link_works_only_once(rig: Rig) -> None:
    """Opening the same start link twice is refused the second time."""
    url = rig.service.begin_link(SLACK_ALICE, TEAM)
    attempt = parse_qs(urlsplit(url).query)["attempt"][0]
    await rig.service.start(attempt)
    with pytest.raises(LinkRefused) as caught:
        await rig.service.start(attempt)
    assert caught.value.failure is Failure.START_INVALID


async def test_attempt_secrets_are_long_and_the_verifier_is_sealed(rig: Rig) -> None:
    """Attempt id and state carry at least 128 random bits; the PKCE verifier is stored sealed."""
    url = rig.service.begin_link(SLACK_ALICE, TEAM)
    attempt = rig.store.attempts.get(parse_qs(urlsplit(url).query)["attempt"][0])
    assert attempt is not None
    assert len(attempt.id) >= 22
    assert len(attempt.state) >= 22
    assert len(attempt.nonce) >= 22
    verifier = rig.sealer.unseal(attempt.sealed_verifier)
    assert 43 <= len(verifier) <= 128
    assert verifier not in attempt.sealed_verifier


async def test_anonymous_refusals_post_once_and_are_all_counted(rig: Rig) -> None:
    """Forged callbacks from anyone are all counted in one audit row per reason and minute (written when the minute
    is over), and reach the security channel once per 5 minutes."""
    for _ in range(3):
        assert (await rig.callback({"state": "forged"}, None)).failure is Failure.STATE_UNKNOWN
    assert rig.audit(audit_actions.LOGIN_STATE_MISMATCH) == []
    rig.settings["refusals"].tally.flush()
    assert [e.details["count"] for e in rig.audit(audit_actions.LOGIN_STATE_MISMATCH)] == [3]
    assert len([t for t in rig.outbox(botconfig.CHANNELS["security"]) if "unknown state" in t]) == 1


async def test_idp_supplied_text_cannot_ping_the_channel(rig: Rig) -> None:
    """A name or group from the IdP containing `<!channel>` is escaped in the DM and the security post."""
    rig.idp.idp.set_next_id_token(claims={"name": "<!channel> Alice", "groups": ["<!here>"]})
    assert (await rig.link()).ok
    texts = rig.outbox(SLACK_ALICE) + rig.outbox(botconfig.CHANNELS["security"])
    assert texts
    assert not any("<!channel>" in t or "<!here>" in t for t in texts)
    assert any("&lt;!channel&gt;" in t for t in texts)


async def test_a_slack_user_of_another_workspace_is_told_so(rig: Rig) -> None:
    """users.info answers user_not_found for someone outside the workspace: the link is refused as such, audited."""
    result = await rig.link("U0ELSEWHR1", "alice")
    assert result.failure is Failure.OTHER_WORKSPACE
    assert [r.reason for r in rig.audit(audit_actions.LOGIN_REFUSED)] == ["Slack user of another workspace"]
