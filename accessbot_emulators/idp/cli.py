"""`accessbot dev-idp`: serve the dev OpenID provider from an accounts file until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

import yaml

from accessbot_emulators.idp.accounts import load_accounts
from accessbot_emulators.idp.personalities import PERSONALITIES
from accessbot_emulators.idp.provider import DevIdP
from accessbot_emulators.serving import bind, serve_until_stopped


async def serve(
    source: DevIdP | str | os.PathLike[str],
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    admin_token: str | None = None,
    personality: str = "generic",
    service_account_out: str | None = None,
) -> None:
    """Serve the dev IdP (an accounts file path, or a built :class:`DevIdP`) until cancelled or interrupted."""
    idp = source if isinstance(source, DevIdP) else DevIdP(source, admin_token=admin_token, personality=personality)
    sock, base_url = bind(host, port)
    issuer = idp.bind_issuer(base_url)
    if service_account_out:
        key = json.dumps(idp.google.service_account(base_url), indent=2)
        await asyncio.to_thread(Path(service_account_out).write_text, key, encoding="utf-8")
    print(f"dev IdP ({idp.personality.name}) listening on {base_url} (issuer {issuer})", file=sys.stderr, flush=True)
    if service_account_out:
        print(f"service account key written to {service_account_out}", file=sys.stderr, flush=True)
    await serve_until_stopped(idp.app, sock)


def main(argv: list[str] | None = None) -> int:
    """CLI: ``accessbot dev-idp --accounts FILE --port N [--host 127.0.0.1] [--personality NAME]``."""
    parser = argparse.ArgumentParser(prog="accessbot dev-idp", description="Run the dev OpenID Connect provider.")
    parser.add_argument("--accounts", required=True, help="YAML accounts file (clients and accounts)")
    parser.add_argument("--port", type=int, default=9000, help="port to listen on (0 picks a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--admin-token",
        default=os.environ.get("ACCESSBOT_DEV_IDP_ADMIN_TOKEN"),
        help="value of X-Admin-Token for /_admin/ (default: $ACCESSBOT_DEV_IDP_ADMIN_TOKEN, else random and unused)",
    )
    parser.add_argument(
        "--personality",
        default="generic",
        choices=sorted(PERSONALITIES),
        help="behave like this provider (scopes, refresh tokens, groups, errors; docs/providers/)",
    )
    parser.add_argument(
        "--service-account-out",
        metavar="FILE",
        help="google: write the service account key (for oidc.google_directory.credentials_file) to FILE",
    )
    args = parser.parse_args(argv)
    try:
        load_accounts(args.accounts)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        print(f"dev-idp: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(
            serve(
                args.accounts,
                args.host,
                args.port,
                admin_token=args.admin_token,
                personality=args.personality,
                service_account_out=args.service_account_out,
            )
        )
    except KeyboardInterrupt:
        return 0
    except OSError as exc:
        print(f"dev-idp: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    return 0
