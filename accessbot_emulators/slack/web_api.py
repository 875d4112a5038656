"""The Web API methods the bot calls (auth, chat, conversations, users, views, files), answering as Slack does."""

from __future__ import annotations

import copy
import hmac
import json
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

from accessbot_emulators.slack import limits
from accessbot_emulators.slack.records import Call, DirectoryUser, Ephemeral
from accessbot_emulators.slack.state import State
from accessbot_emulators.slack.workspace import Workspace, dm_channel_id, mpim_channel_id, trigger_issued_at

TRIGGER_LIFETIME = 3.0
"""api.slack.com/docs/triggers: "Triggers expire in three seconds" and "may only be used once"; views.open answers
`expired_trigger_id` / `exchanged_trigger_id` (docs.slack.dev/reference/methods/views.open, "Errors")."""
MAX_VIEW_BYTES = 250_000
"""views.open "view_too_large": "greater than 250kb" (docs.slack.dev/reference/methods/views.open)."""
MAX_DM_USERS = 8
"""conversations.open "too_many_users": "Needs at most 8 users to open" (api.slack.com/methods/conversations.open)."""

_JSON_ARGS = ("blocks", "attachments", "view", "metadata", "files")


class SlackError(Exception):
    """An `ok: false` answer with HTTP 200 (`extra` adds fields such as `errors` or `response_metadata`)."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


class WebApi:
    """The workspace's Web API: its state, its member directory and one handler per method.

    Not thread-safe on its own: the emulator calls it under its lock.
    """

    def __init__(
        self, workspace: Workspace, base_url: Callable[[], str], socket_url: Callable[[], str | None] = lambda: None
    ) -> None:
        """Answer for `workspace`; `base_url` gives the emulator's address, `socket_url` a Socket Mode URL."""
        self.workspace = workspace
        self.state = State()
        self.directory: dict[str, DirectoryUser] = {}
        self._base_url = base_url
        self._socket_url = socket_url

    def reset(self) -> None:
        """Forget calls, conversations, views, files and pending failures; keep the directory."""
        self.state = State()

    def handle(
        self,
        method: str,
        args: dict[str, Any],
        authorization: str | None,
        headers: dict[str, str],
        body_error: str | None,
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Answer one Web API call and record it: (HTTP status, JSON body, extra headers)."""
        token = args.pop("token", None)
        if authorization and authorization.lower().startswith("bearer "):
            token = authorization[7:].strip()
        status = 200
        extra: dict[str, str] = {}
        failure = self.state.take_failure(method)
        if failure is not None:
            status = failure.status
            payload: dict[str, Any] = {"ok": False, "error": failure.error}
            if failure.retry_after is not None:
                extra["Retry-After"] = str(failure.retry_after)
        elif body_error is not None:
            payload = {"ok": False, "error": body_error}
        elif not token:
            payload = {"ok": False, "error": "not_authed"}
        elif method == "apps.connections.open":
            payload = self._connections_open(str(token))
        elif not hmac.compare_digest(str(token), self.workspace.bot_token):
            payload = {"ok": False, "error": "invalid_auth"}
        elif self.state.rates is not None and (wait := self.state.rates.check(method, str(args.get("channel") or ""))):
            status, payload = 429, {"ok": False, "error": "ratelimited"}  # rates.py cites the limits
            extra["Retry-After"] = str(wait)
        else:
            handler = self._methods().get(method)
            if handler is None:
                payload = {"ok": False, "error": "unknown_method", "req_method": method}
            else:
                try:
                    args = self._decode_json_args(args)
                    payload = {"ok": True, **handler(args)}
                except SlackError as exc:
                    payload = {"ok": False, "error": exc.error, **exc.extra}
        self.state.calls.append(
            Call(
                method=method,
                args=copy.deepcopy(args),
                headers=headers,
                time=time.time(),
                status=status,
                response=copy.deepcopy(payload),
            )
        )
        return status, payload, extra

    def _methods(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        return {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.update": self._chat_update,
            "conversations.open": self._conversations_open,
            "users.info": self._users_info,
            "views.open": self._views_open,
            "views.publish": self._views_publish,
            "views.update": self._views_update,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
        }

    def _connections_open(self, token: str) -> dict[str, Any]:
        """Socket Mode's WebSocket URL, for the app-level token only (socket_mode.py cites the method page)."""
        if hmac.compare_digest(token, self.workspace.bot_token):
            return {"ok": False, "error": "not_allowed_token_type"}
        if not hmac.compare_digest(token, self.workspace.app_token):
            return {"ok": False, "error": "invalid_auth"}
        url = self._socket_url()
        return {"ok": True, "url": url} if url else {"ok": False, "error": "internal_error"}

    @staticmethod
    def _decode_json_args(args: dict[str, Any]) -> dict[str, Any]:
        """Decode the arguments that form-encoded requests carry as JSON strings."""
        decoded = dict(args)
        for name in _JSON_ARGS:
            value = decoded.get(name)
            if isinstance(value, str):
                if value == "" and name != "view":
                    decoded[name] = []
                    continue
                try:
                    decoded[name] = json.loads(value)
                except ValueError:
                    raise SlackError("invalid_blocks_format" if name == "blocks" else "invalid_arguments") from None
        return decoded

    def _resolve_channel(self, channel: Any) -> str:
        """Return the conversation a message goes to; a user id means the bot's DM with that user."""
        if not isinstance(channel, str) or not channel:
            raise SlackError("channel_not_found")
        if channel[0] in "UW":
            if channel not in self.directory:
                raise SlackError("channel_not_found")
            return dm_channel_id(channel)
        return channel

    def _message_content(self, args: Mapping[str, Any]) -> tuple[str | None, list[Any]]:
        text = args.get("text")
        blocks = args.get("blocks") or []
        attachments = args.get("attachments") or []
        if not isinstance(blocks, list) or not isinstance(attachments, list):
            raise SlackError("invalid_blocks")
        if not text and not blocks and not attachments:
            raise SlackError("no_text")
        problems = limits.message_problems(blocks)
        if problems:
            messages = [f"[ERROR] {p}" for p in problems]
            raise SlackError("invalid_blocks", errors=problems, response_metadata={"messages": messages})
        if text is not None and len(str(text)) > limits.MESSAGE_TEXT:
            # Slack posts it cut to 40,000 characters with a warning (api.slack.com/changelog/
            # 2018-04-truncating-really-long-messages); recorded so tests can insist it never happens.
            text = str(text)[: limits.MESSAGE_TEXT]
            self.state.truncated += 1
        return (None if text is None else str(text)), blocks

    def _message_object(self, ts: str, text: str | None, blocks: list[Any], thread_ts: Any) -> dict[str, Any]:
        message: dict[str, Any] = {
            "user": self.workspace.bot_user_id,
            "type": "message",
            "ts": ts,
            "bot_id": self.workspace.bot_id,
            "app_id": self.workspace.app_id,
            "text": text or "",
            "team": self.workspace.team_id,
            "bot_profile": {
                "id": self.workspace.bot_id,
                "app_id": self.workspace.app_id,
                "name": self.workspace.bot_name,
                "deleted": False,
            },
        }
        if blocks:
            message["blocks"] = copy.deepcopy(blocks)
        if thread_ts:
            message["thread_ts"] = thread_ts
        return message

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": f"https://{self.workspace.team_domain}.slack.com/",
            "team": self.workspace.team_name,
            "user": self.workspace.bot_name,
            "team_id": self.workspace.team_id,
            "user_id": self.workspace.bot_user_id,
            "bot_id": self.workspace.bot_id,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(args.get("channel"))
        text, blocks = self._message_content(args)
        ts = self.state.next_ts()
        thread_ts = args.get("thread_ts") or None
        self.state.messages[ts] = {
            "channel": channel,
            "ts": ts,
            "text": text,
            "blocks": copy.deepcopy(blocks),
            "thread_ts": thread_ts,
            "args": copy.deepcopy(args),
            "edits": 0,
            "time": time.time(),
        }
        return {"channel": channel, "ts": ts, "message": self._message_object(ts, text, blocks, thread_ts)}

    def _chat_post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(args.get("channel"))
        user = args.get("user")
        if not isinstance(user, str) or not user:
            raise SlackError("user_not_in_channel")
        text, blocks = self._message_content(args)
        ts = self.state.next_ts()
        self.state.ephemerals.append(
            Ephemeral(
                channel=channel,
                user=user,
                message_ts=ts,
                text=text,
                blocks=copy.deepcopy(blocks),
                args=copy.deepcopy(args),
                time=time.time(),
            )
        )
        return {"message_ts": ts}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(args.get("channel"))
        ts = args.get("ts")
        record = self.state.messages.get(ts) if isinstance(ts, str) else None
        if record is None or record["channel"] != channel:
            raise SlackError("message_not_found")
        if "text" not in args and "blocks" not in args and "attachments" not in args:
            raise SlackError("no_text")
        merged = {"text": args.get("text", record["text"]), "blocks": args.get("blocks", record["blocks"])}
        text, blocks = self._message_content({**merged, "attachments": args.get("attachments")})
        record.update(
            text=text,
            blocks=copy.deepcopy(blocks),
            args=copy.deepcopy(args),
            edits=record["edits"] + 1,
            time=time.time(),
        )
        message = self._message_object(record["ts"], text, blocks, record["thread_ts"])
        return {"channel": channel, "ts": record["ts"], "text": text or "", "message": message}

    def _conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        existing = args.get("channel")
        if isinstance(existing, str) and existing:
            return {"no_op": True, "already_open": True, "channel": {"id": existing}}
        users = [u.strip() for u in str(args.get("users") or "").split(",") if u.strip()]
        if not users:
            raise SlackError("users_list_not_supplied")
        if len(users) > MAX_DM_USERS:
            raise SlackError("too_many_users")
        for user in users:
            if user not in self.directory:
                raise SlackError("user_not_found")
            if self.directory[user].deleted:  # "user_disabled: A specified user has been disabled" (same page)
                raise SlackError("user_disabled")
        channel_id = dm_channel_id(users[0]) if len(users) == 1 else mpim_channel_id(users)
        already = channel_id in self.state.opened
        self.state.opened.add(channel_id)
        channel: dict[str, Any] = {"id": channel_id}
        if str(args.get("return_im", "")).lower() in ("1", "true") and len(users) == 1:
            channel.update(
                created=int(time.time()),
                is_im=True,
                is_org_shared=False,
                user=users[0],
                is_user_deleted=self.directory[users[0]].deleted,
                priority=0,
            )
        result: dict[str, Any] = {"channel": channel}
        if already:
            result.update(no_op=True, already_open=True)
        return result

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self.directory.get(str(args.get("user") or ""))
        if user is None:
            raise SlackError("user_not_found")
        return {"user": user.to_slack()}

    def _view_hash(self) -> str:
        return f"{int(time.time())}.{secrets.token_hex(4)}"

    def _view_object(self, view_id: str, view: Mapping[str, Any], root_view_id: str) -> dict[str, Any]:
        return {
            "id": view_id,
            "team_id": self.workspace.team_id,
            "type": view.get("type"),
            "blocks": copy.deepcopy(view.get("blocks") or []),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": self._view_hash(),
            "title": copy.deepcopy(view.get("title")),
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "close": copy.deepcopy(view.get("close")),
            "submit": copy.deepcopy(view.get("submit")),
            "previous_view_id": None,
            "root_view_id": root_view_id,
            "app_id": self.workspace.app_id,
            "external_id": view.get("external_id", ""),
            "app_installed_team_id": self.workspace.team_id,
            "bot_id": self.workspace.bot_id,
        }

    @staticmethod
    def _valid_view(args: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
        view = args.get("view")
        if not isinstance(view, dict) or view.get("type") != kind:
            raise SlackError("invalid_arguments")
        if len(json.dumps(view)) > MAX_VIEW_BYTES:
            raise SlackError("view_too_large")
        if kind == "modal" and not isinstance(view.get("title"), dict):
            raise SlackError("invalid_arguments")
        problems = limits.view_problems(view)
        if problems:
            raise SlackError("invalid_arguments", response_metadata={"messages": [f"[ERROR] {p}" for p in problems]})
        return view

    def _exchange_trigger(self, trigger_id: str) -> None:
        """Refuse a trigger older than three seconds or used before (api.slack.com/docs/triggers)."""
        issued = trigger_issued_at(trigger_id)
        if issued is not None and time.time() - issued > TRIGGER_LIFETIME:
            raise SlackError("expired_trigger_id")
        if trigger_id in self.state.exchanged:
            raise SlackError("exchanged_trigger_id")
        self.state.exchanged.add(trigger_id)

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        trigger_id = args.get("trigger_id") or args.get("interactivity_pointer")
        if not trigger_id:
            raise SlackError("invalid_arguments")
        view = self._valid_view(args, "modal")
        self._exchange_trigger(str(trigger_id))
        view_id = self.state.next_id("V")
        obj = self._view_object(view_id, view, view_id)
        self.state.views[view_id] = {
            "id": view_id,
            "kind": "modal",
            "user": None,
            "trigger_id": str(trigger_id),
            "view": obj,
            "updates": 0,
        }
        return {"view": copy.deepcopy(obj)}

    def _views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        user = args.get("user_id")
        if not isinstance(user, str) or not user:
            raise SlackError("invalid_arguments")
        view = self._valid_view(args, "home")
        view_id = self.state.home_view_ids.get(user)
        record = self.state.views.get(view_id) if view_id else None
        if record is not None and args.get("hash") and args["hash"] != record["view"]["hash"]:
            raise SlackError("hash_conflict")
        if view_id is None:
            view_id = self.state.next_id("V")
            self.state.home_view_ids[user] = view_id
        obj = self._view_object(view_id, view, view_id)
        updates = 0 if record is None else record["updates"] + 1
        self.state.views[view_id] = {
            "id": view_id,
            "kind": "home",
            "user": user,
            "trigger_id": None,
            "view": obj,
            "updates": updates,
        }
        return {"view": copy.deepcopy(obj)}

    def _views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        record: dict[str, Any] | None = None
        if args.get("view_id"):
            record = self.state.views.get(str(args["view_id"]))
        elif args.get("external_id"):
            record = next(
                (r for r in self.state.views.values() if r["view"]["external_id"] == args["external_id"]), None
            )
        else:
            raise SlackError("invalid_arguments")
        if record is None:
            raise SlackError("not_found")
        if args.get("hash") and args["hash"] != record["view"]["hash"]:
            raise SlackError("hash_conflict")
        view = self._valid_view(args, record["kind"])
        obj = self._view_object(record["id"], view, record["view"]["root_view_id"])
        record.update(view=obj, updates=record["updates"] + 1)
        return {"view": copy.deepcopy(obj)}

    def _files_get_upload_url(self, args: dict[str, Any]) -> dict[str, Any]:
        filename = args.get("filename")
        try:
            length = int(args.get("length", ""))
        except ValueError:
            raise SlackError("invalid_arguments") from None
        if not filename or length < 0:
            raise SlackError("invalid_arguments")
        file_id = self.state.next_id("F")
        self.state.files[file_id] = {
            "id": file_id,
            "filename": str(filename),
            "length": length,
            "content": None,
            "title": None,
            "channel": None,
            "initial_comment": None,
            "thread_ts": None,
            "completed": False,
        }
        return {"upload_url": f"{self._base_url()}/upload/{file_id}", "file_id": file_id}

    def _files_complete_upload(self, args: dict[str, Any]) -> dict[str, Any]:
        items = args.get("files")
        if not isinstance(items, list) or not items:
            raise SlackError("invalid_arguments")
        records: list[tuple[dict[str, Any], Mapping[str, Any]]] = []
        for item in items:
            record = self.state.files.get(str(item.get("id"))) if isinstance(item, dict) else None
            if record is None or record["content"] is None or record["completed"]:
                raise SlackError("file_not_found")
            records.append((record, item))
        channel = args.get("channel_id") or (str(args.get("channels") or "").split(",")[0] or None)
        if channel is not None:
            channel = self._resolve_channel(channel)
        result = []
        now = int(time.time())
        for record, item in records:
            record.update(
                title=item.get("title") or record["filename"],
                channel=channel,
                initial_comment=args.get("initial_comment"),
                thread_ts=args.get("thread_ts"),
                completed=True,
            )
            result.append(
                {
                    "id": record["id"],
                    "created": now,
                    "timestamp": now,
                    "name": record["filename"],
                    "title": record["title"],
                    "mimetype": "application/octet-stream",
                    "filetype": "binary",
                    "user": self.workspace.bot_user_id,
                    "user_team": self.workspace.team_id,
                    "size": len(record["content"]),
                    "is_external": False,
                    "is_public": channel is not None and channel.startswith("C"),
                    "url_private": f"{self._base_url()}/files/{record['id']}/{record['filename']}",
                    "channels": [channel] if channel else [],
                    "shares": {},
                }
            )
        return {"files": result}
