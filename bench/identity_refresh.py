"""Benchmark: what refreshing one link costs on each provider, against the bare token refresh it is built on.

Run: python bench/identity_refresh.py [--runs 30]
For each case the dev IdP runs with that provider's personality on loopback (accessbot_emulators/idp), the bot is
wired from a config with only the preset, issuer and credentials set (bot.wiring.build, real SQLite), one user links
through the login form, then `IdentitySync.refresh_one` is timed `--runs` times (each refresh rotates where the
provider rotates, validates the new ID token, asks the group source and records the result). The baseline, measured
in the same process against the same provider, is the bare token-endpoint refresh (`OidcClient.refresh_tokens`,
nothing validated or stored). Cases: generic, entra (2 groups in the token), entra with 201 groups (Entra's overage
pointer: userinfo, then Microsoft Graph transitiveMemberOf), google (Admin SDK Directory), keycloak (paths).
Prints median and p95 of both and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from accessbot_emulators.idp import DevIdP, complete_login, run_in_thread
from bot import wiring
from bot.config import parse_config
from bot.demo import botconfig

SLACK_USER = "U0BENCH001"
ACCOUNTS: dict[str, Any] = {
    "clients": [{"client_id": "accessbot", "client_secret": "bench-secret", "redirect_uris": ["*"]}],
    "accounts": {
        "alice": {"password": "pw", "email": "alice@example.com", "email_verified": True, "groups": ["eng", "sre"]},
        "carol": {
            "password": "pw",
            "email": "carol@example.com",
            "email_verified": True,
            "groups": ["eng", *(f"team-{i:03d}" for i in range(200))],
        },
        "admin": {"password": "pw", "email": "admin@example.com", "email_verified": True, "admin": True},
    },
}
CASES = (("generic", "alice"), ("entra", "alice"), ("entra", "carol"), ("google", "alice"), ("keycloak", "alice"))


def p95(values: list[float]) -> float:
    """The 95th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[max(0, round(0.95 * len(ordered)) - 1)]


def config_for(name: str, idp: DevIdP, tmp: Path) -> Any:
    """Only the preset, issuer and credentials (plus where Graph and the Directory live on loopback)."""
    data = botconfig.config_data(
        database=tmp / f"{name}.db",
        public_url="http://127.0.0.1:9",
        slack_api_url="http://127.0.0.1:9/api/",
        oidc_issuer=idp.issuer,
        rancher_url="http://127.0.0.1:9",
        rancher_token="token-b9t4n:2jpfw5dxczjt4wr7nsxspmk8h57kdxmvtn6smzdfvrh7ngtrc4d7wx",
    )
    data["oidc"] = {
        "provider": name,
        "issuer": idp.issuer,
        "client_id": "accessbot",
        "client_secret": "bench-secret",
        "require_email_match": False,  # no Slack in this benchmark
        "scopes": ["openid", "email", "profile", "groups", "offline_access"] if name == "generic" else None,
    }
    if name == "entra":
        data["oidc"]["graph"] = {"url": idp.base_url}
    if name == "google":
        key = tmp / "sa.json"
        key.write_text(json.dumps(idp.google.service_account(str(idp.base_url))))
        data["oidc"]["google_directory"] = {"credentials_file": str(key), "admin_email": "admin@example.com"}
        data["oidc"]["google_directory"]["url"] = idp.base_url
    data["oidc"] = {k: v for k, v in data["oidc"].items() if v is not None}
    return parse_config(data)


async def measure(name: str, user: str, runs: int) -> dict[str, object]:
    """Link once, then time refresh_one and the bare refresh `runs` times each."""
    idp = DevIdP(json.loads(json.dumps(ACCOUNTS)), personality=name)
    with run_in_thread(idp), tempfile.TemporaryDirectory() as tmp:
        bot = wiring.build(config_for(name, idp, Path(tmp)))
        try:
            url = bot.linking.begin_link(SLACK_USER, "T0BENCH001")
            begun = await bot.linking.start(parse_qs(urlsplit(url).query)["attempt"][0])
            async with httpx.AsyncClient(timeout=10) as browser:
                location = await complete_login(browser, begun.redirect_url, user, "pw")
            params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
            result = await bot.linking.complete(
                state=params["state"], code=params["code"], error=None, cookie=begun.cookie
            )
            assert result.ok, result
            groups = len(bot.linking.identity(SLACK_USER).groups)
            await bot.identity_sync.refresh_one(SLACK_USER)  # warm keys, metadata and the directory token
            full: list[float] = []
            for _ in range(runs):
                started = time.perf_counter()
                outcome = await bot.identity_sync.refresh_one(SLACK_USER)
                full.append(time.perf_counter() - started)
                assert outcome.value == "refreshed", outcome
            record = bot.storage.links.get(SLACK_USER)
            assert record is not None
            assert record.sealed_refresh_token
            token = bot.linking._sealer.unseal(record.sealed_refresh_token)
            bare: list[float] = []
            for _ in range(runs):
                started = time.perf_counter()
                answer = await bot.oidc.refresh_tokens(token)
                bare.append(time.perf_counter() - started)
                token = answer.refresh_token or token
        finally:
            await bot.aclose()
    return {"case": f"{name} ({user})", "groups": groups, "full": full, "bare": bare}


def main() -> None:
    """Run every case and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    rows = [asyncio.run(measure(name, user, args.runs)) for name, user in CASES]
    print(f"refresh_one against the bare token refresh, {args.runs} runs each (ms)")
    print(f"{'case':<18} {'groups':>6} {'refresh p50':>12} {'p95':>7} {'bare p50':>9} {'p95':>7} {'ratio':>6}")
    for row in rows:
        full, bare = row["full"], row["bare"]
        assert isinstance(full, list)
        assert isinstance(bare, list)
        f50, b50 = statistics.median(full) * 1000, statistics.median(bare) * 1000
        print(
            f"{row['case']:<18} {row['groups']:>6} {f50:>12.1f} {p95(full) * 1000:>7.1f} "
            f"{b50:>9.1f} {p95(bare) * 1000:>7.1f} {f50 / b50:>6.2f}"
        )


if __name__ == "__main__":
    main()
