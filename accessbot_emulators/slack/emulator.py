"""The Slack emulator: Web API, response_url and file-upload endpoints on loopback, and what tests ask of it."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from accessbot_emulators.serving import serve_in_loop, serve_in_thread
from accessbot_emulators.slack.rates import slack_limits
from accessbot_emulators.slack.records import (
    Call,
    DirectoryUser,
    Ephemeral,
    Message,
    ResponsePost,
    UploadedFile,
    View,
)
from accessbot_emulators.slack.socket_mode import SocketModeServer
from accessbot_emulators.slack.state import Failure
from accessbot_emulators.slack.web_api import WebApi
from accessbot_emulators.slack.workspace import (
    APP_ID,
    APP_TOKEN,
    BOT_ID,
    BOT_NAME,
    BOT_TOKEN,
    BOT_USER_ID,
    TEAM_DOMAIN,
    TEAM_ID,
    TEAM_NAME,
    Workspace,
    dm_channel_id,
)

_T = TypeVar("_T")


class SlackEmulator:
    """Plays Slack's Web API, response_url and file-upload endpoints on 127.0.0.1 and records every call."""

    def __init__(
        self,
        *,
        bot_token: str = BOT_TOKEN,
        team_id: str = TEAM_ID,
        team_domain: str = TEAM_DOMAIN,
        team_name: str = TEAM_NAME,
        app_id: str = APP_ID,
        bot_id: str = BOT_ID,
        bot_user_id: str = BOT_USER_ID,
        bot_name: str = BOT_NAME,
        app_token: str = APP_TOKEN,
    ) -> None:
        """Configure the workspace; the server starts with `running()` or `serve_async()`."""
        self.bot_token = bot_token
        self.team_id = team_id
        self.team_domain = team_domain
        self.team_name = team_name
        self.app_id = app_id
        self.bot_id = bot_id
        self.bot_user_id = bot_user_id
        self.bot_name = bot_name
        self._lock = threading.RLock()
        self.app_token = app_token
        workspace = Workspace(
            bot_token, team_id, team_domain, team_name, app_id, bot_id, bot_user_id, bot_name, app_token
        )
        self.socket_mode = SocketModeServer(app_id)
        self._socket_running = False
        self._api = WebApi(workspace, lambda: self.base_url, self._socket_url)
        self._base_url: str | None = None
        self._loop_thread: int | None = None
        self.add_user(bot_user_id, None, bot_name, real_name=bot_name, is_bot=True, team_id=team_id)
        self.app = Starlette(
            routes=[
                Route("/api/{method}", self._api_endpoint, methods=["GET", "POST"]),
                Route("/response/{key}", self._response_endpoint, methods=["POST"]),
                Route("/upload/{file_id}", self._upload_endpoint, methods=["POST"]),
            ]
        )

    # ---- lifecycle ------------------------------------------------------------------------------------------

    @classmethod
    @contextlib.contextmanager
    def running(cls, **kwargs: Any) -> Iterator[SlackEmulator]:
        """Serve a new emulator from a background thread on 127.0.0.1 (random port) for the block's duration."""
        emulator = cls(**kwargs)
        with (
            serve_in_thread(emulator.app, lifespan="off", name="slack-emulator", timeout_graceful_shutdown=2) as url,
            emulator.socket_mode.running(),
        ):
            emulator._base_url = url
            emulator._socket_running = True
            yield emulator

    @classmethod
    @contextlib.asynccontextmanager
    async def serve_async(cls, **kwargs: Any) -> AsyncIterator[SlackEmulator]:
        """Serve a new emulator as a task in the running event loop on 127.0.0.1 (random port)."""
        emulator = cls(**kwargs)
        emulator._loop_thread = threading.get_ident()
        async with serve_in_loop(
            emulator.app, lifespan="off", name="slack-emulator", timeout_graceful_shutdown=2
        ) as url:
            emulator._base_url = url
            yield emulator

    # ---- addresses ------------------------------------------------------------------------------------------

    def _socket_url(self) -> str | None:
        return self.socket_mode.new_url() if self._socket_running else None

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT` (no trailing slash)."""
        if self._base_url is None:
            raise RuntimeError("the Slack emulator is not running")
        return self._base_url

    @property
    def api_url(self) -> str:
        """The Web API base URL to give AsyncWebClient(base_url=...), with its trailing slash."""
        return f"{self.base_url}/api/"

    def response_url(self, key: str | None = None, *, channel: str | None = None, message_ts: str | None = None) -> str:
        """Return a response_url served by this emulator; posts to it are recorded under `key`.

        Bound to a `channel` (and the `message_ts` holding the clicked button), posts also act as in Slack:
        `replace_original` edits that message, `delete_original` deletes it, `in_channel` posts a new one.
        """
        key = key or secrets.token_hex(8)
        if channel is not None:
            with self._lock:
                self._api.state.bindings[key] = (channel, message_ts)
        return f"{self.base_url}/response/{key}"

    # ---- test setup -----------------------------------------------------------------------------------------

    def add_user(
        self,
        user_id: str,
        email: str | None,
        name: str,
        *,
        real_name: str | None = None,
        is_bot: bool = False,
        team_id: str | None = None,
        deleted: bool = False,
        is_admin: bool = False,
        tz: str = "Europe/Berlin",
        display_name: str = "",
    ) -> DirectoryUser:
        """Add or replace a workspace member that users.info and conversations.open know."""
        user = DirectoryUser(
            id=user_id,
            email=email,
            name=name,
            real_name=real_name if real_name is not None else name,
            is_bot=is_bot,
            team_id=team_id or self.team_id,
            deleted=deleted,
            is_admin=is_admin,
            tz=tz,
            display_name=display_name,
        )
        with self._lock:
            self._api.directory[user_id] = user
        return user

    def remove_user(self, user_id: str) -> None:
        """Forget a workspace member (users.info then answers user_not_found)."""
        with self._lock:
            self._api.directory.pop(user_id, None)

    def fail_next(
        self,
        method: str,
        *,
        status: int = 429,
        retry_after: int = 1,
        count: int = 1,
        error: str | None = None,
    ) -> None:
        """Make the next `count` calls of `method` fail: 429 (Retry-After), another status, or 200 `error`.

        `method` is a Web API method name, or `response_url` / `upload` for those endpoints.
        """
        if error is not None:
            failure = Failure(status=200, error=error, retry_after=None, remaining=count)
        elif status == 429:
            failure = Failure(status=429, error="ratelimited", retry_after=retry_after, remaining=count)
        else:
            failure = Failure(status=status, error="service_unavailable", retry_after=None, remaining=count)
        with self._lock:
            self._api.state.failures.setdefault(method, []).append(failure)

    def enforce_rate_limits(self, *, per_channel_per_second: float = 1.0, burst: float = 1.0) -> None:
        """Answer 429 + Retry-After past Slack's documented rates (see rates.py) until the next `reset()`."""
        with self._lock:
            self._api.state.rates = slack_limits(per_channel_per_second=per_channel_per_second, burst=burst)

    def rate_limited(self) -> int:
        """How many calls were answered 429 because of `enforce_rate_limits` since the last reset."""
        with self._lock:
            return self._api.state.rates.limited if self._api.state.rates is not None else 0

    def truncated(self) -> int:
        """Messages whose text Slack would have cut at 40,000 characters since the last reset."""
        with self._lock:
            return self._api.state.truncated

    def seed_message(self, channel: str, text: str) -> str:
        """Put a message the bot posted earlier into `channel` (setup for edits); return its ts."""
        with self._lock:
            ts = self._api.state.next_ts()
            self._api.state.messages[ts] = {
                "channel": channel,
                "ts": ts,
                "text": text,
                "blocks": [],
                "thread_ts": None,
                "args": {},
                "edits": 0,
                "time": time.time(),
            }
            return ts

    def set_down(self, down: bool = True) -> None:
        """While down, every endpoint answers 503."""
        with self._lock:
            self._api.state.down = down

    def reset(self) -> None:
        """Forget recorded calls, messages, views, files, responses and pending failures (keeps the directory)."""
        with self._lock:
            self._api.reset()

    # ---- assertions -----------------------------------------------------------------------------------------

    def calls(self, method: str | None = None) -> list[Call]:
        """Every recorded Web API call, oldest first, optionally only those of `method`."""
        with self._lock:
            found = [c for c in self._api.state.calls if method is None or c.method == method]
            return copy.deepcopy(found)

    def messages(self, channel: str | None = None) -> list[Message]:
        """Messages posted by the bot in their latest state, in posting order, optionally in one channel."""
        with self._lock:
            records = [r for r in self._api.state.messages.values() if channel is None or r["channel"] == channel]
            return [self._message_snapshot(r) for r in records]

    def message(self, ts: str) -> Message | None:
        """The message with timestamp `ts` in its latest state, or None."""
        with self._lock:
            record = self._api.state.messages.get(ts)
            return None if record is None else self._message_snapshot(record)

    def dms(self, user: str) -> list[Message]:
        """Messages the bot posted in its direct-message channel with `user`."""
        return self.messages(dm_channel_id(user))

    def dm_channel(self, user: str) -> str:
        """The D-channel id conversations.open returns for `user`."""
        return dm_channel_id(user)

    def ephemerals(self, user: str | None = None) -> list[Ephemeral]:
        """Ephemeral messages sent with chat.postEphemeral, optionally only those shown to `user`."""
        with self._lock:
            return copy.deepcopy([e for e in self._api.state.ephemerals if user is None or e.user == user])

    def responses(self, key: str | None = None) -> list[ResponsePost]:
        """Bodies posted to response_urls, oldest first, optionally only those for `key`."""
        with self._lock:
            return copy.deepcopy([r for r in self._api.state.responses if key is None or r.key == key])

    def views(self, kind: str | None = None, user: str | None = None) -> list[View]:
        """Opened modals (`kind="modal"`) and published Home tabs (`kind="home"`) in their latest state."""
        with self._lock:
            return [
                self._view_snapshot(r)
                for r in self._api.state.views.values()
                if (kind is None or r["kind"] == kind) and (user is None or r["user"] == user)
            ]

    def home(self, user: str) -> View | None:
        """The Home tab currently published for `user`, or None."""
        with self._lock:
            view_id = self._api.state.home_view_ids.get(user)
            return None if view_id is None else self._view_snapshot(self._api.state.views[view_id])

    def files(self, channel: str | None = None) -> list[UploadedFile]:
        """Files uploaded through the external upload flow, optionally only those shared to `channel`."""
        with self._lock:
            return [
                UploadedFile(
                    id=r["id"],
                    filename=r["filename"],
                    length=r["length"],
                    content=r["content"],
                    title=r["title"],
                    channel=r["channel"],
                    initial_comment=r["initial_comment"],
                    thread_ts=r["thread_ts"],
                    completed=r["completed"],
                )
                for r in self._api.state.files.values()
                if channel is None or r["channel"] == channel
            ]

    def wait_for(self, predicate: Callable[[], _T], timeout: float = 5.0, interval: float = 0.02) -> _T:
        """Poll `predicate` until it returns something truthy and return it; TimeoutError after `timeout` s.

        Blocks the calling thread: from a coroutine whose event loop also runs the bot, use `wait_for_async`.
        """
        if self._loop_thread is not None and self._loop_thread == threading.get_ident():
            raise RuntimeError("this emulator runs in this thread's event loop: use `await wait_for_async(...)`")
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise TimeoutError(self._timeout_message(timeout))
            time.sleep(interval)

    async def wait_for_async(
        self,
        predicate: Callable[[], _T],
        timeout: float = 5.0,  # noqa: ASYNC109 - same signature as wait_for; a poll deadline, not a cancel
        interval: float = 0.02,
    ) -> _T:
        """Like `wait_for`, but sleeps with asyncio so the bot's tasks keep running in this loop."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise TimeoutError(self._timeout_message(timeout))
            await asyncio.sleep(interval)

    def _timeout_message(self, timeout: float) -> str:
        with self._lock:
            seen = [c.method for c in self._api.state.calls]
            responses = len(self._api.state.responses)
        return f"condition not met within {timeout} s; calls so far: {seen}; response_url posts: {responses}"

    def _message_snapshot(self, record: Mapping[str, Any]) -> Message:
        return Message(
            channel=record["channel"],
            ts=record["ts"],
            text=record["text"],
            blocks=copy.deepcopy(record["blocks"]),
            thread_ts=record["thread_ts"],
            args=copy.deepcopy(record["args"]),
            edits=record["edits"],
            time=record["time"],
        )

    def _view_snapshot(self, record: Mapping[str, Any]) -> View:
        return View(
            id=record["id"],
            kind=record["kind"],
            user=record["user"],
            trigger_id=record["trigger_id"],
            view=copy.deepcopy(record["view"]),
            hash=record["view"]["hash"],
            updates=record["updates"],
        )

    # ---- HTTP endpoints -------------------------------------------------------------------------------------

    async def _api_endpoint(self, request: Request) -> Response:
        method = request.path_params["method"]
        args: dict[str, Any] = dict(request.query_params)
        body_error: str | None = None
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        raw = await request.body()
        if raw:
            if content_type == "application/json":
                try:
                    decoded = json.loads(raw)
                except ValueError:
                    body_error = "invalid_json"
                else:
                    if isinstance(decoded, dict):
                        args.update(decoded)
                    else:
                        body_error = "invalid_json"
            elif content_type == "multipart/form-data":
                form = await request.form()
                args.update({k: v for k, v in form.items() if isinstance(v, str)})
            else:
                args.update(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
        headers = {k: ("(redacted)" if k.lower() == "authorization" else v) for k, v in request.headers.items()}
        with self._lock:
            status, payload, extra = self._api.handle(
                method, args, request.headers.get("authorization"), headers, body_error
            )
        return JSONResponse(payload, status_code=status, headers=extra)

    async def _response_endpoint(self, request: Request) -> Response:
        key = request.path_params["key"]
        raw = await request.body()
        with self._lock:
            failure = self._api.state.take_failure("response_url")
            if failure is not None:
                return self._plain_failure(failure)
            try:
                body = json.loads(raw)
            except ValueError:
                return PlainTextResponse("invalid_payload", status_code=400)
            if not isinstance(body, dict):
                return PlainTextResponse("invalid_payload", status_code=400)
            self._api.state.responses.append(ResponsePost(key=key, body=body, time=time.time()))
            binding = self._api.state.bindings.get(key)
            if binding is not None:
                self._apply_response(body, *binding)
        return PlainTextResponse("ok")

    def _apply_response(self, body: Mapping[str, Any], channel: str, message_ts: str | None) -> None:
        """Apply a response_url post to the bound conversation, as Slack does."""
        record = self._api.state.messages.get(message_ts) if message_ts is not None else None
        if record is not None and record["channel"] != channel:
            record = None
        flagged = ResponsePost(key="", body=body, time=0.0)
        if flagged.delete_original:
            if record is not None:
                del self._api.state.messages[record["ts"]]
        elif flagged.replace_original:
            if record is not None:
                record.update(
                    text=flagged.text,
                    blocks=flagged.blocks,
                    args=copy.deepcopy(dict(body)),
                    edits=record["edits"] + 1,
                    time=time.time(),
                )
        elif flagged.response_type == "in_channel":
            ts = self._api.state.next_ts()
            self._api.state.messages[ts] = {
                "channel": channel,
                "ts": ts,
                "text": flagged.text,
                "blocks": flagged.blocks,
                "thread_ts": body.get("thread_ts") or None,
                "args": copy.deepcopy(dict(body)),
                "edits": 0,
                "time": time.time(),
            }

    async def _upload_endpoint(self, request: Request) -> Response:
        file_id = request.path_params["file_id"]
        raw = await request.body()
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == "multipart/form-data":
            form = await request.form()
            upload = form.get("file") or form.get("filename")
            if upload is not None and not isinstance(upload, str):
                raw = await upload.read()
        with self._lock:
            failure = self._api.state.take_failure("upload")
            if failure is not None:
                return self._plain_failure(failure)
            record = self._api.state.files.get(file_id)
            if record is None:
                return PlainTextResponse("file_not_found", status_code=404)
            record["content"] = bytes(raw)
        return PlainTextResponse(f"OK - {len(raw)}")

    def _plain_failure(self, failure: Failure) -> Response:
        headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else None
        return PlainTextResponse(failure.error, status_code=failure.status, headers=headers)
