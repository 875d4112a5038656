"""The developer commands `accessbot dev-idp` and `accessbot dev-rancher`: the emulators' own command lines."""

from __future__ import annotations

from accessbot_emulators.idp import cli as idp_cli
from accessbot_emulators.rancher import cli as rancher_cli


def dev_idp(argv: list[str]) -> int:
    """`accessbot dev-idp --accounts FILE --port N`: serve the dev OpenID provider until interrupted."""
    return idp_cli.main(argv)


def dev_rancher(argv: list[str]) -> int:
    """`accessbot dev-rancher --fixture FILE --port N`: serve the Rancher v3 emulator until interrupted."""
    return rancher_cli.main(argv)
