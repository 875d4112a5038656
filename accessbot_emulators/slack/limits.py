"""Slack's documented Block Kit limits, checked the way Slack checks them: the first problems, each with its pointer.

Every limit cites the page it comes from (docs.slack.dev/reference/block-kit/…). Messages over a limit are refused
with `invalid_blocks` and an `errors` list such as `must be less than 3001 characters
[json-pointer:/blocks/0/text/text]` (the shape chat.postMessage answers, quoted in slackapi/bolt-js#2509 and
#2867). Views are refused with `invalid_arguments` and the same texts in `response_metadata.messages`, e.g.
`[ERROR] no more than 100 items allowed [json-pointer:/view/blocks]` (reproduced in grafana/oncall PR #210):
views.open/publish/update list no `invalid_blocks` error (docs.slack.dev/reference/methods/views.open, "Errors").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MESSAGE_BLOCKS = 50  # blocks: "up to 50 blocks in each message" (reference/block-kit/blocks)
VIEW_BLOCKS = 100  # blocks: "and 100 blocks in modals or Home tabs" (reference/block-kit/blocks)
TEXT_OBJECT = 3000  # composition-objects/text-object: "maximum length … is 3000 characters"
SECTION_TEXT = 3000  # blocks/section-block: text "Maximum length … 3000 characters"
SECTION_FIELDS, SECTION_FIELD_TEXT = 10, 2000  # blocks/section-block: fields "Maximum number of items is 10", 2000
HEADER_TEXT = 150  # blocks/header-block: text "Maximum length … 150 characters"
CONTEXT_ELEMENTS = 10  # blocks/context-block: elements "Maximum number of items is 10"
ACTIONS_ELEMENTS = 25  # blocks/actions-block: "There is a maximum of 25 elements in each action block"
BLOCK_ID = 255  # blocks: block_id "Maximum length for this field is 255 characters"
BUTTON_TEXT, BUTTON_VALUE, BUTTON_URL = 75, 2000, 3000  # block-elements/button-element
ACTION_ID = 255  # block-elements/*: action_id "Maximum length … 255 characters"
SELECT_OPTIONS = 100  # block-elements/select-menu-element: options / option_groups "Maximum number … is 100"
OPTION_TEXT, OPTION_VALUE = 75, 150  # composition-objects/option-object: text 75, value 150
OPTION_GROUP_LABEL = 75  # composition-objects/option-group-object: label "Maximum length … 75 characters"
INPUT_LABEL = 2000  # blocks/input-block: label "Maximum length … 2000 characters"
PLACEHOLDER = 150  # block-elements/*: placeholder "Maximum length … 150 characters"
VIEW_TITLE = 24  # reference/views/modal-views (view object): title, submit, close "Maximum length … 24 characters"
PRIVATE_METADATA = 3000  # view object: private_metadata "Maximum length … 3000 characters"
CALLBACK_ID = 255  # view object: callback_id "Maximum length … 255 characters"
MESSAGE_TEXT = 40_000  # chat.postMessage: text longer than 40,000 characters is truncated (changelog 2018-04)

_MAX_PROBLEMS = 5


def _text(value: Any) -> str:
    if isinstance(value, Mapping):
        return str(value.get("text") or "")
    return ""


class _Checker:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def too_long(self, value: str, limit: int, pointer: str) -> None:
        if len(value) > limit:
            self.problems.append(f"must be less than {limit + 1} characters [json-pointer:{pointer}]")

    def too_many(self, items: Any, limit: int, pointer: str) -> None:
        if isinstance(items, list) and len(items) > limit:
            self.problems.append(f"no more than {limit} items allowed [json-pointer:{pointer}]")

    def element(self, element: Any, pointer: str) -> None:
        if not isinstance(element, Mapping):
            return
        self.too_long(str(element.get("action_id") or ""), ACTION_ID, f"{pointer}/action_id")
        self.too_long(_text(element.get("placeholder")), PLACEHOLDER, f"{pointer}/placeholder/text")
        kind = element.get("type")
        if kind == "button":
            self.too_long(_text(element.get("text")), BUTTON_TEXT, f"{pointer}/text/text")
            self.too_long(str(element.get("value") or ""), BUTTON_VALUE, f"{pointer}/value")
            self.too_long(str(element.get("url") or ""), BUTTON_URL, f"{pointer}/url")
        elif kind in ("mrkdwn", "plain_text"):
            self.too_long(str(element.get("text") or ""), TEXT_OBJECT, f"{pointer}/text")
        options, groups = element.get("options"), element.get("option_groups")
        self.options(options, f"{pointer}/options")
        self.too_many(groups, SELECT_OPTIONS, f"{pointer}/option_groups")
        for g, group in enumerate(groups if isinstance(groups, list) else []):
            if isinstance(group, Mapping):
                self.too_long(_text(group.get("label")), OPTION_GROUP_LABEL, f"{pointer}/option_groups/{g}/label/text")
                self.options(group.get("options"), f"{pointer}/option_groups/{g}/options")

    def options(self, options: Any, pointer: str) -> None:
        self.too_many(options, SELECT_OPTIONS, pointer)
        for o, option in enumerate(options if isinstance(options, list) else []):
            if isinstance(option, Mapping):
                self.too_long(_text(option.get("text")), OPTION_TEXT, f"{pointer}/{o}/text/text")
                self.too_long(str(option.get("value") or ""), OPTION_VALUE, f"{pointer}/{o}/value")

    def block(self, block: Any, pointer: str) -> None:
        if not isinstance(block, Mapping):
            self.problems.append(f"expected an object [json-pointer:{pointer}]")
            return
        self.too_long(str(block.get("block_id") or ""), BLOCK_ID, f"{pointer}/block_id")
        kind = block.get("type")
        if kind == "section":
            self.too_long(_text(block.get("text")), SECTION_TEXT, f"{pointer}/text/text")
            fields = block.get("fields")
            self.too_many(fields, SECTION_FIELDS, f"{pointer}/fields")
            for f, field in enumerate(fields if isinstance(fields, list) else []):
                self.too_long(_text(field), SECTION_FIELD_TEXT, f"{pointer}/fields/{f}/text")
            self.element(block.get("accessory"), f"{pointer}/accessory")
        elif kind == "header":
            self.too_long(_text(block.get("text")), HEADER_TEXT, f"{pointer}/text/text")
        elif kind == "context":
            self.too_many(block.get("elements"), CONTEXT_ELEMENTS, f"{pointer}/elements")
            for e, element in enumerate(block.get("elements") or []):
                self.element(element, f"{pointer}/elements/{e}")
        elif kind == "actions":
            self.too_many(block.get("elements"), ACTIONS_ELEMENTS, f"{pointer}/elements")
            for e, element in enumerate(block.get("elements") or []):
                self.element(element, f"{pointer}/elements/{e}")
        elif kind == "input":
            self.too_long(_text(block.get("label")), INPUT_LABEL, f"{pointer}/label/text")
            self.too_long(_text(block.get("hint")), INPUT_LABEL, f"{pointer}/hint/text")
            self.element(block.get("element"), f"{pointer}/element")

    def blocks(self, blocks: Any, limit: int, pointer: str) -> None:
        if not isinstance(blocks, list):
            self.problems.append(f"expected an array [json-pointer:{pointer}]")
            return
        self.too_many(blocks, limit, pointer)
        for i, block in enumerate(blocks):
            if len(self.problems) >= _MAX_PROBLEMS:
                return
            self.block(block, f"{pointer}/{i}")


def message_problems(blocks: Any) -> list[str]:
    """Why Slack would refuse these message blocks (`invalid_blocks`), at most five reasons; empty when valid."""
    checker = _Checker()
    checker.blocks(blocks, MESSAGE_BLOCKS, "/blocks")
    return checker.problems[:_MAX_PROBLEMS]


def view_problems(view: Mapping[str, Any]) -> list[str]:
    """Why Slack would refuse this modal or Home view (`invalid_arguments`), at most five; empty when valid."""
    checker = _Checker()
    if view.get("type") == "modal":
        for name in ("title", "submit", "close"):
            checker.too_long(_text(view.get(name)), VIEW_TITLE, f"/view/{name}/text")
    checker.too_long(str(view.get("private_metadata") or ""), PRIVATE_METADATA, "/view/private_metadata")
    checker.too_long(str(view.get("callback_id") or ""), CALLBACK_ID, "/view/callback_id")
    checker.blocks(view.get("blocks") or [], VIEW_BLOCKS, "/view/blocks")
    return checker.problems[:_MAX_PROBLEMS]
