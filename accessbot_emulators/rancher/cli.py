"""`accessbot dev-rancher`: serve the Rancher emulator from a fixture or a synthetic estate until interrupted."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import yaml

from accessbot_emulators.rancher.emulator import KEEP_ALIVE, RancherEmulator
from accessbot_emulators.rancher.estate import DEMO_FIXTURE, generate_estate, load_fixture
from accessbot_emulators.rancher.profiles import SUPPORTED, profile_for
from accessbot_emulators.rancher.settings import EmulatorSettings
from accessbot_emulators.serving import bind, serve_forever


def main(argv: list[str] | None = None) -> int:
    """`accessbot dev-rancher --fixture FILE --port N [--version 2.9] [--latency S] [--page-size N]`: serve."""
    parser = argparse.ArgumentParser(prog="accessbot dev-rancher", description="Serve the Rancher v3 emulator.")
    parser.add_argument("--fixture", type=Path, default=DEMO_FIXTURE, help="YAML estate (default: the demo estate)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every /v3 request")
    parser.add_argument("--page-size", type=int, default=1000, help="default collection limit (Rancher: 1000)")
    parser.add_argument(
        "--version",
        "--server-version",
        dest="server_version",
        default=None,
        help=f"the Rancher version to play, {SUPPORTED[0]} to {SUPPORTED[-1]} (e.g. 2.9 or v2.14.4; default: the "
        "fixture's server_version)",
    )
    parser.add_argument(
        "--generate",
        metavar="C,P,B,G[,U[,SEED]]",
        default=None,
        help="serve a synthetic estate of C clusters, P projects, B bindings, G groups, U users (demo estate included)",
    )
    args = parser.parse_args(argv)
    try:
        if args.generate:
            sizes = [int(part) for part in args.generate.split(",")]
            sizes += [100, 0][len(sizes) - 4 :] if 4 <= len(sizes) < 6 else []
            clusters, projects, bindings, groups, users, seed = sizes
            fixture = generate_estate(
                clusters=clusters, projects=projects, bindings=bindings, groups=groups, users=users, seed=seed
            )
        else:
            fixture = load_fixture(args.fixture)
    except (OSError, ValueError, TypeError, yaml.YAMLError) as exc:
        print(f"cannot build the estate: {exc}")
        return 2
    settings = EmulatorSettings(latency=args.latency, page_size=args.page_size)
    settings.server_version = args.server_version or str(fixture.get("server_version", settings.server_version))
    try:
        profile = profile_for(settings.server_version)
    except ValueError as exc:
        print(f"cannot play that version: {exc}")
        return 2
    if re.fullmatch(r"\d+\.\d+", settings.server_version):
        settings.server_version = f"v{settings.server_version}.0"
    emulator = RancherEmulator(fixture, settings)
    sock, _ = bind(args.host, args.port)
    print(
        f"Rancher emulator on http://{args.host}:{sock.getsockname()[1]} (API at /v3, control at /_emulator), "
        f"playing Rancher {profile.label} ({settings.server_version})"
    )
    tokens = ", ".join(t["name"] for t in emulator.objects("token"))
    print(f"API keys from the fixture: {tokens}", flush=True)
    try:
        serve_forever(emulator.app, sock, timeout_keep_alive=KEEP_ALIVE)
    except KeyboardInterrupt:
        print("Rancher emulator stopped")
    finally:
        sock.close()
    return 0
