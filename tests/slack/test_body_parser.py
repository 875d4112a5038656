"""Our replacement for Bolt's body parser: forms stay forms, interactions decode."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import slack_bolt.request.async_request as bolt_async_request

from bot.slack.app import parse_body, patch_bolt_body_parser


def test_form_with_payload_in_text_stays_a_form() -> None:
    """A slash command whose text mentions `payload` parses as the form it is."""
    body = urlencode({"command": "/access", "text": "list prod-eu/payload-api", "channel_name": "payloads"})
    parsed = parse_body(body, "application/x-www-form-urlencoded")
    assert parsed["text"] == "list prod-eu/payload-api"
    assert parsed["channel_name"] == "payloads"


def test_interaction_payload_is_decoded() -> None:
    """A body whose only key is `payload` is decoded as JSON."""
    body = urlencode({"payload": json.dumps({"type": "block_actions", "actions": []})})
    assert parse_body(body, "application/x-www-form-urlencoded") == {"type": "block_actions", "actions": []}


def test_json_events_are_decoded() -> None:
    """Events API JSON bodies are decoded."""
    assert parse_body('{"type": "event_callback"}', "application/json") == {"type": "event_callback"}


def test_patch_replaces_bolts_parser() -> None:
    """After patching, Bolt's async request module uses our parser."""
    patch_bolt_body_parser()
    assert bolt_async_request.parse_body is parse_body  # type: ignore[attr-defined]
