"""`accessbot oidc check [--login]`: is the identity provider set up the way the bot needs it, and what would a
sign-in give (claims, principal, groups, refresh token, and whether the link would be made)."""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
from typing import TextIO
from urllib.parse import parse_qs, urlsplit

from bot.cli.context import EXIT_FAIL, EXIT_OK, Add, Subparsers, config_from
from bot.config import Config, warnings
from bot.core.errors import TokenRejected, UpstreamError
from bot.core.groups import label
from bot.core.link_rules import LinkRules
from bot.core.model import Identity

MAX_PASTE = 8192
"""Longest redirect address read from the terminal."""


def _printable(text: str) -> str:
    """Text from the provider, safe for a terminal (control and formatting characters become spaces)."""
    return "".join(ch if ch.isprintable() else " " for ch in text)


def _print_facts(facts: list[tuple[str, str]], out: TextIO) -> None:
    for name, value in facts:
        print(f"{name:<18} {_printable(value)}", file=out)


async def _check(config: Config, args: argparse.Namespace, out: TextIO, inp: TextIO) -> int:
    from bot.adapters.oidc.check import check_provider  # noqa: PLC0415 - only this command reads discovery
    from bot.wiring import build_group_sources, build_oidc  # noqa: PLC0415

    oc = config.oidc
    client = build_oidc(config)
    sources = build_group_sources(config, client)
    try:
        report = await check_provider(client, require_refresh_token=oc.require_refresh_token)
        facts = [("provider", f"{oc.provider} at {oc.issuer}"), *report.facts]
        facts.append(("group source", await _group_source_line(config, sources, report.problems)))
        facts.append(("email", f"claim {oc.effective_email_claim}, email_verified {oc.effective_email_verified}"))
        principal = f"{config.rancher.auth_provider} from claim {config.rancher.user_principal_claim}"
        facts.append(("rancher principal", principal))
        _print_facts(facts, out)
        ok = report.ok
        if args.login and ok:
            ok = await _login(config, client, sources, out, inp)
    finally:
        await client.aclose()
        for closer in sources.closers:
            await closer()
    for problem in report.problems:
        print(f"problem: {_printable(problem)}", file=out)
    for warning in [*report.warnings, *warnings(config)]:
        print(f"warning: {_printable(warning)}", file=out)
    print("OK" if ok else "NOT OK", file=out)
    return EXIT_OK if ok else EXIT_FAIL


async def _group_source_line(config: Config, sources: object, problems: list[str]) -> str:
    """The group source in effect, and whether its directory answers with the configured credentials."""
    oc = config.oidc
    source = oc.effective_group_source
    directory = getattr(sources, "graph", None) or getattr(sources, "google", None)
    if directory is None:
        claim = f"claim {oc.effective_groups_claim!r}, {oc.effective_group_format}"
        return "none (every user has no groups)" if source == "none" else f"{source} ({claim})"
    mode = f" ({oc.graph.mode})" if source == "graph" else ""
    try:
        return f"{source}{mode}: {await directory.check()}"
    except UpstreamError as err:
        problems.append(f"group source {source}: {err.message}")
        return f"{source}{mode}: NOT reachable"


async def _login(config: Config, client: object, sources: object, out: TextIO, inp: TextIO) -> bool:
    """A live sign-in: print the claims received and what the bot would do with them."""
    from bot.adapters.oidc import OidcClient  # noqa: PLC0415
    from bot.wiring import GroupSources, principal_mapping  # noqa: PLC0415

    assert isinstance(client, OidcClient)
    assert isinstance(sources, GroupSources)
    state, nonce, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48)
    url = await client.authorization_url(state, nonce, verifier)
    print("\nSign in: open this address in a browser, sign in, then paste the address the browser ends on", file=out)
    print(f"({config.redirect_uri}?code=…):\n{url}", file=out, flush=True)
    pasted = (await asyncio.to_thread(inp.readline, MAX_PASTE)).strip()
    params = {k: v[0] for k, v in parse_qs(urlsplit(pasted).query).items()}
    if "error" in params:
        refused = f"{params['error']} {params.get('error_description', '')}"[:300]
        print(f"problem: the provider refused the sign-in: {_printable(refused)}", file=out)
        return False
    if params.get("state") != state or not params.get("code"):
        print("problem: that is not the address this sign-in ends on (state or code missing)", file=out)
        return False
    try:
        login = await client.exchange_code(params["code"], verifier, nonce)
    except TokenRejected as err:
        print(f"problem: the ID token was refused: {err.reason}", file=out)
        return False
    except UpstreamError as err:
        print(f"problem: the code exchange failed: {err.message}", file=out)
        return False
    print("\nclaims received", file=out)
    for name in sorted(login.claims):
        print(f"  {_printable(name):<16} {json.dumps(login.claims[name])[:200]}", file=out)
    answer = await sources.source.groups(login)
    names = dict(answer.names) if answer else {}
    oc = config.oidc
    ids = answer.ids if answer else ()
    identity = Identity(
        "",
        "",
        login.issuer,
        login.subject,
        login.email,
        login.name,
        ids,
        0,
        0,
        principal_subject=login.principal_subject,
    )
    rules = LinkRules(
        email_verified=oc.effective_email_verified,
        require_email_match=oc.require_email_match,
        allowed_email_domains=oc.allowed_email_domains,
        require_refresh_token=oc.require_refresh_token,
        principal_claim=config.rancher.user_principal_claim,
    )
    refusals = rules.refusals(login)
    groups = ", ".join(label(g, names) for g in answer.ids) if answer else "unknown (the group source did not say)"
    facts = [
        ("subject", login.subject),
        ("email", f"{login.email or '-'} (email_verified {login.email_verified})"),
        ("groups", groups or "none"),
        ("refresh token", "yes" if login.refresh_token else "no"),
    ]
    if login.principal_subject:
        facts.append(("rancher principal", principal_mapping(config).of(identity).user_principal_id))
    facts.append(("would", "link (once the Slack profile email matches)" if not refusals else "refuse the link"))
    print("", file=out)
    _print_facts(facts, out)
    for why in refusals:
        print(f"problem: {why}", file=out)
    if login.refresh_token:
        try:
            await client.revoke(login.refresh_token)  # the check keeps nothing
        except (UpstreamError, TokenRejected):
            print("warning: could not revoke the refresh token this check received", file=out)
    return not refusals


def cmd_oidc_check(args: argparse.Namespace, out: TextIO | None = None, inp: TextIO | None = None) -> int:
    """Check discovery, algorithms, scopes, token auth, refresh tokens and the group source; --login signs in."""
    config = config_from(args)
    return asyncio.run(_check(config, args, out or sys.stdout, inp or sys.stdin))


def register(sub: Subparsers, add: Add) -> None:
    """Add `accessbot oidc check [--login]`."""
    parser = add("oidc", cmd_oidc_check, "check the identity provider against the configuration")
    oidc_sub = parser.add_subparsers(dest="oidc_command", required=True, metavar="check")
    check = oidc_sub.add_parser(
        "check", help="discovery, issuer, algorithms, scopes, token auth, refresh tokens, group source"
    )
    check.add_argument(
        "--login", action="store_true", help="sign in once and print the claims and what the bot would do"
    )
