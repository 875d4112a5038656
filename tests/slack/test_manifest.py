"""The Slack app manifest: valid against Slack's manifest schema, with every Web API method the code calls in scope.

The schema is SchemaStore's copy (tests/data/README.md says where from); the scopes per method are in
bot/slack/manifest.py with the Slack method page of each.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from bot.slack.manifest import BOT_SCOPES, WEB_API_SCOPES, build_manifest

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "tests/data/slack-app-manifest.schema.json").read_text())
_CALL = re.compile(r"""_call\(\s*"([a-zA-Z]+\.[a-zA-Z.]+)\"""")
_SDK = re.compile(r"\.((?:auth|chat|conversations|files|users|views|apps)_[a-zA-Z0-9_]+)\(")
_SDK_EXPANDS = {"files_upload_v2": ("files.getUploadURLExternal", "files.completeUploadExternal")}


def _called_methods() -> set[str]:
    """Web API methods named in the product code: `_call("x.y")` and slack_sdk's `client.x_y(...)`."""
    found: set[str] = {"auth.test"}  # Bolt calls it itself (SingleTeamAuthorization)
    for path in (ROOT / "bot").rglob("*.py"):
        text = path.read_text()
        found.update(_CALL.findall(text))
        for name in _SDK.findall(text):
            found.update(_SDK_EXPANDS.get(name, (name.replace("_", ".", 1),)))
    return found


@pytest.mark.parametrize("socket_mode", [False, True])
def test_manifest_is_valid_against_slacks_schema(socket_mode: bool) -> None:
    """Both manifests (HTTP and Socket Mode) validate against the manifest JSON schema."""
    jsonschema.validate(
        build_manifest(public_url="https://bot.example.com", command="/access", socket_mode=socket_mode), SCHEMA
    )


def test_options_load_url_is_set_in_http_mode() -> None:
    """The request form's external select needs an Options Load URL; it is the events URL (none in Socket Mode)."""
    http = build_manifest(public_url="https://bot.example.com", command="/access", socket_mode=False)
    assert http["settings"]["interactivity"]["message_menu_options_url"] == "https://bot.example.com/slack/events"
    socket = build_manifest(public_url="https://bot.example.com", command="/access", socket_mode=True)
    assert "message_menu_options_url" not in socket["settings"]["interactivity"]


def test_every_web_api_method_the_code_calls_is_covered_by_a_requested_scope() -> None:
    """Each method found in bot/ is in the scope table, and every scope it needs is requested by the manifest."""
    called = _called_methods()
    assert {"chat.postMessage", "chat.update", "conversations.open", "views.open", "views.publish"} <= called
    unknown = called - set(WEB_API_SCOPES)
    assert not unknown, f"add these methods and their scopes to WEB_API_SCOPES: {sorted(unknown)}"
    requested = set(
        build_manifest(public_url="https://b", command="/access", socket_mode=False)["oauth_config"]["scopes"]["bot"]
    )
    assert requested == set(BOT_SCOPES)
    for method in called:
        missing = set(WEB_API_SCOPES[method]) - requested
        assert not missing, f"{method} needs {sorted(missing)}"
