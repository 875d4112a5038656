"""The Rancher v3 ("norman") API emulator, field for field per shared/reference/rancher-api.md."""

from accessbot_emulators.rancher.cli import main
from accessbot_emulators.rancher.emulator import RancherEmulator, run_emulator, serve_emulator
from accessbot_emulators.rancher.estate import DEMO_FIXTURE, generate_estate, load_fixture, standing_estate
from accessbot_emulators.rancher.naming import random_name, user_id_for_principal
from accessbot_emulators.rancher.schema import CRTB, GRB, PRTB, TYPES
from accessbot_emulators.rancher.settings import EmulatorSettings, version_tuple

__all__ = [
    "CRTB",
    "DEMO_FIXTURE",
    "GRB",
    "PRTB",
    "TYPES",
    "EmulatorSettings",
    "RancherEmulator",
    "generate_estate",
    "load_fixture",
    "main",
    "random_name",
    "run_emulator",
    "serve_emulator",
    "standing_estate",
    "user_id_for_principal",
    "version_tuple",
]
