"""`accessbot manifest` and `accessbot gen-key`: what an operator pastes elsewhere while installing the bot."""

from __future__ import annotations

import argparse

import yaml

from bot.cli.context import EXIT_OK, Add, Subparsers, config_from


def cmd_manifest(args: argparse.Namespace) -> int:
    """Print a Slack app manifest for this configuration."""
    from bot.slack.manifest import build_manifest  # noqa: PLC0415

    config = config_from(args)
    manifest = build_manifest(
        public_url=config.public_url, command=config.slack.command, socket_mode=config.slack.app_token is not None
    )
    print(yaml.safe_dump(manifest, sort_keys=False), end="")
    return EXIT_OK


def cmd_gen_key(args: argparse.Namespace) -> int:
    """Print a new Fernet key for security.token_encryption_keys."""
    from cryptography.fernet import Fernet  # noqa: PLC0415

    print(Fernet.generate_key().decode())
    return EXIT_OK


def register(sub: Subparsers, add: Add) -> None:
    """Add `accessbot manifest` and `accessbot gen-key`."""
    add("manifest", cmd_manifest, "print a Slack app manifest (YAML) for this configuration")
    add("gen-key", cmd_gen_key, "print a new Fernet key for security.token_encryption_keys")
