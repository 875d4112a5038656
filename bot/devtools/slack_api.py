"""Slack Web API emulator on loopback (methods, response_url, file uploads) and a Slack request signer."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import hmac
import json
import secrets
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

__all__ = [
    "APP_ID",
    "BOT_ID",
    "BOT_TOKEN",
    "BOT_USER_ID",
    "TEAM_DOMAIN",
    "TEAM_ID",
    "VERIFICATION_TOKEN",
    "Call",
    "DirectoryUser",
    "Ephemeral",
    "Message",
    "ResponsePost",
    "SlackEmulator",
    "SlackSigner",
    "UploadedFile",
    "View",
    "app_home_opened_event",
    "block_actions_payload",
    "dm_channel_id",
    "interaction_body",
    "json_body",
    "slash_command_body",
    "view_submission_payload",
]

TEAM_ID = "T0TEST0001"
TEAM_DOMAIN = "accessbot-test"
TEAM_NAME = "Access Bot Test"
APP_ID = "A0TEST0001"
BOT_ID = "B0TEST0001"
BOT_USER_ID = "U0BOT00001"
BOT_NAME = "accessbot"
BOT_TOKEN = "xoxb-test-bot-token"
VERIFICATION_TOKEN = "legacy-verification-token"

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_TEXT_CHARS = 40_000

_JSON_ARGS = ("blocks", "attachments", "view", "metadata", "files")
_T = TypeVar("_T")


def dm_channel_id(user_id: str) -> str:
    """Return the stable id of the bot's direct-message channel with `user_id` (same in emulator and builders)."""
    return "D" + hashlib.sha256(user_id.encode()).hexdigest()[:10].upper()


def _mpim_channel_id(user_ids: list[str]) -> str:
    """Return a stable id for a multi-person DM with these users."""
    joined = ",".join(sorted(user_ids))
    return "G" + hashlib.sha256(joined.encode()).hexdigest()[:10].upper()


def _trigger_id() -> str:
    """Return a trigger id shaped like Slack's (`<digits>.<digits>.<hex32>`)."""
    return f"{secrets.randbelow(10**12)}.{secrets.randbelow(10**11)}.{secrets.token_hex(16)}"


def _now_ts() -> str:
    """Return the current time as a Slack event timestamp string."""
    return f"{time.time():.6f}"


# --------------------------------------------------------------------------------------------------------------
# Recorded values (immutable snapshots handed to tests)
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One Web API call as the emulator received and answered it."""

    method: str
    args: Mapping[str, Any]
    headers: Mapping[str, str]
    time: float
    status: int
    response: Mapping[str, Any]

    @property
    def ok(self) -> bool:
        """Whether the emulator answered `ok: true`."""
        return bool(self.response.get("ok"))


@dataclass(frozen=True)
class Message:
    """A message posted by the bot, in its latest state after any chat.update."""

    channel: str
    ts: str
    text: str | None
    blocks: list[Any]
    thread_ts: str | None
    args: Mapping[str, Any]
    edits: int = 0
    time: float = 0.0


@dataclass(frozen=True)
class Ephemeral:
    """An ephemeral message sent with chat.postEphemeral."""

    channel: str
    user: str
    message_ts: str
    text: str | None
    blocks: list[Any]
    args: Mapping[str, Any]
    time: float = 0.0


@dataclass(frozen=True)
class ResponsePost:
    """One JSON body POSTed to a response_url served by the emulator."""

    key: str
    body: Mapping[str, Any]
    time: float

    @property
    def text(self) -> str | None:
        """The `text` field, if any."""
        value = self.body.get("text")
        return value if isinstance(value, str) else None

    @property
    def blocks(self) -> list[Any]:
        """The `blocks` field, or an empty list."""
        value = self.body.get("blocks")
        return list(value) if isinstance(value, list) else []

    @property
    def response_type(self) -> str | None:
        """`ephemeral`, `in_channel` or None when not sent (Slack then treats it as ephemeral)."""
        value = self.body.get("response_type")
        return value if isinstance(value, str) else None

    @property
    def replace_original(self) -> bool:
        """Whether the post asked to replace the original message."""
        return self.body.get("replace_original") in (True, "true")

    @property
    def delete_original(self) -> bool:
        """Whether the post asked to delete the original message."""
        return self.body.get("delete_original") in (True, "true")

    @property
    def is_ephemeral(self) -> bool:
        """Whether Slack would show this reply only to the user (the default unless `in_channel`)."""
        return self.response_type != "in_channel"


@dataclass(frozen=True)
class View:
    """A modal opened with views.open or a Home tab published with views.publish, in its latest state."""

    id: str
    kind: str
    user: str | None
    trigger_id: str | None
    view: Mapping[str, Any]
    hash: str
    updates: int = 0

    @property
    def blocks(self) -> list[Any]:
        """The view's blocks."""
        value = self.view.get("blocks")
        return list(value) if isinstance(value, list) else []


@dataclass(frozen=True)
class UploadedFile:
    """A file uploaded through files.getUploadURLExternal, the upload URL and files.completeUploadExternal."""

    id: str
    filename: str
    length: int
    content: bytes | None
    title: str | None
    channel: str | None
    initial_comment: str | None
    thread_ts: str | None
    completed: bool


@dataclass(frozen=True)
class DirectoryUser:
    """A workspace member known to users.info."""

    id: str
    email: str | None
    name: str
    real_name: str
    is_bot: bool = False
    team_id: str = TEAM_ID
    deleted: bool = False
    is_admin: bool = False
    tz: str = "Europe/Berlin"
    display_name: str = ""

    def to_slack(self) -> dict[str, Any]:
        """Return the user object exactly as users.info nests it."""
        profile: dict[str, Any] = {
            "real_name": self.real_name,
            "real_name_normalized": self.real_name,
            "display_name": self.display_name,
            "display_name_normalized": self.display_name,
            "team": self.team_id,
            "image_72": f"https://avatars.example.invalid/{self.id}_72.png",
        }
        if self.email is not None:
            profile["email"] = self.email
        if self.is_bot:
            profile["bot_id"] = BOT_ID
        return {
            "id": self.id,
            "team_id": self.team_id,
            "name": self.name,
            "deleted": self.deleted,
            "real_name": self.real_name,
            "tz": self.tz,
            "tz_label": self.tz,
            "tz_offset": 0,
            "profile": profile,
            "is_admin": self.is_admin,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "updated": 1_700_000_000,
        }


@dataclass
class _Failure:
    status: int
    error: str
    retry_after: int | None
    remaining: int


@dataclass
class _State:
    calls: list[Call] = field(default_factory=list)
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)  # ts -> record
    ephemerals: list[Ephemeral] = field(default_factory=list)
    responses: list[ResponsePost] = field(default_factory=list)
    views: dict[str, dict[str, Any]] = field(default_factory=dict)  # view id -> record
    home_view_ids: dict[str, str] = field(default_factory=dict)  # user -> view id
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # file id -> record
    opened: set[str] = field(default_factory=set)
    failures: dict[str, list[_Failure]] = field(default_factory=dict)
    bindings: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # response key -> (channel, ts)
    down: bool = False
    last_ts_us: int = 0
    counter: int = 0


class _SlackError(Exception):
    """An `ok: false` answer with HTTP 200."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


class _QuietServer(uvicorn.Server):
    """A uvicorn server that never touches the process's signal handlers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Do not install signal handlers: the emulator lives inside a test process."""
        yield


# --------------------------------------------------------------------------------------------------------------
# The emulator
# --------------------------------------------------------------------------------------------------------------


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
        self._state = _State()
        self._directory: dict[str, DirectoryUser] = {}
        self._port: int | None = None
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
        sock = emulator._bind()
        server = _QuietServer(emulator._uvicorn_config())
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="slack-emulator", daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + 10.0
            while not server.started:
                if not thread.is_alive() or time.monotonic() > deadline:
                    raise RuntimeError("the Slack emulator did not start")
                time.sleep(0.005)
            yield emulator
        finally:
            server.should_exit = True
            thread.join(timeout=10.0)
            sock.close()

    @classmethod
    @contextlib.asynccontextmanager
    async def serve_async(cls, **kwargs: Any) -> AsyncIterator[SlackEmulator]:
        """Serve a new emulator as a task in the running event loop on 127.0.0.1 (random port)."""
        emulator = cls(**kwargs)
        sock = emulator._bind()
        server = _QuietServer(emulator._uvicorn_config())
        task = asyncio.create_task(server.serve(sockets=[sock]), name="slack-emulator")
        emulator._loop_thread = threading.get_ident()
        try:
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError("the Slack emulator did not start")
                await asyncio.sleep(0.005)
            yield emulator
        finally:
            server.should_exit = True
            await task
            sock.close()

    def _bind(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._port = int(sock.getsockname()[1])
        return sock

    def _uvicorn_config(self) -> uvicorn.Config:
        return uvicorn.Config(
            self.app,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            timeout_graceful_shutdown=2,
        )

    # ---- addresses ------------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT` (no trailing slash)."""
        if self._port is None:
            raise RuntimeError("the Slack emulator is not running")
        return f"http://127.0.0.1:{self._port}"

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
                self._state.bindings[key] = (channel, message_ts)
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
            self._directory[user_id] = user
        return user

    def remove_user(self, user_id: str) -> None:
        """Forget a workspace member (users.info then answers user_not_found)."""
        with self._lock:
            self._directory.pop(user_id, None)

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
            failure = _Failure(status=200, error=error, retry_after=None, remaining=count)
        elif status == 429:
            failure = _Failure(status=429, error="ratelimited", retry_after=retry_after, remaining=count)
        else:
            failure = _Failure(status=status, error="service_unavailable", retry_after=None, remaining=count)
        with self._lock:
            self._state.failures.setdefault(method, []).append(failure)

    def set_down(self, down: bool = True) -> None:
        """While down, every endpoint answers 503."""
        with self._lock:
            self._state.down = down

    def reset(self) -> None:
        """Forget recorded calls, messages, views, files, responses and pending failures (keeps the directory)."""
        with self._lock:
            self._state = _State()

    # ---- assertions -----------------------------------------------------------------------------------------

    def calls(self, method: str | None = None) -> list[Call]:
        """Every recorded Web API call, oldest first, optionally only those of `method`."""
        with self._lock:
            found = [c for c in self._state.calls if method is None or c.method == method]
            return copy.deepcopy(found)

    def messages(self, channel: str | None = None) -> list[Message]:
        """Messages posted by the bot in their latest state, in posting order, optionally in one channel."""
        with self._lock:
            records = [r for r in self._state.messages.values() if channel is None or r["channel"] == channel]
            return [self._message_snapshot(r) for r in records]

    def message(self, ts: str) -> Message | None:
        """The message with timestamp `ts` in its latest state, or None."""
        with self._lock:
            record = self._state.messages.get(ts)
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
            return copy.deepcopy([e for e in self._state.ephemerals if user is None or e.user == user])

    def responses(self, key: str | None = None) -> list[ResponsePost]:
        """Bodies posted to response_urls, oldest first, optionally only those for `key`."""
        with self._lock:
            return copy.deepcopy([r for r in self._state.responses if key is None or r.key == key])

    def views(self, kind: str | None = None, user: str | None = None) -> list[View]:
        """Opened modals (`kind="modal"`) and published Home tabs (`kind="home"`) in their latest state."""
        with self._lock:
            return [
                self._view_snapshot(r)
                for r in self._state.views.values()
                if (kind is None or r["kind"] == kind) and (user is None or r["user"] == user)
            ]

    def home(self, user: str) -> View | None:
        """The Home tab currently published for `user`, or None."""
        with self._lock:
            view_id = self._state.home_view_ids.get(user)
            return None if view_id is None else self._view_snapshot(self._state.views[view_id])

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
                for r in self._state.files.values()
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
            seen = [c.method for c in self._state.calls]
            responses = len(self._state.responses)
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
        status, payload, extra = self._handle_api(
            method, args, request.headers.get("authorization"), headers, body_error
        )
        return JSONResponse(payload, status_code=status, headers=extra)

    async def _response_endpoint(self, request: Request) -> Response:
        key = request.path_params["key"]
        raw = await request.body()
        with self._lock:
            failure = self._take_failure("response_url")
            if failure is not None:
                return self._plain_failure(failure)
            try:
                body = json.loads(raw)
            except ValueError:
                return PlainTextResponse("invalid_payload", status_code=400)
            if not isinstance(body, dict):
                return PlainTextResponse("invalid_payload", status_code=400)
            self._state.responses.append(ResponsePost(key=key, body=body, time=time.time()))
            binding = self._state.bindings.get(key)
            if binding is not None:
                self._apply_response(body, *binding)
        return PlainTextResponse("ok")

    def _apply_response(self, body: Mapping[str, Any], channel: str, message_ts: str | None) -> None:
        """Apply a response_url post to the bound conversation, as Slack does."""
        record = self._state.messages.get(message_ts) if message_ts is not None else None
        if record is not None and record["channel"] != channel:
            record = None
        flagged = ResponsePost(key="", body=body, time=0.0)
        if flagged.delete_original:
            if record is not None:
                del self._state.messages[record["ts"]]
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
            ts = self._next_ts()
            self._state.messages[ts] = {
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
            failure = self._take_failure("upload")
            if failure is not None:
                return self._plain_failure(failure)
            record = self._state.files.get(file_id)
            if record is None:
                return PlainTextResponse("file_not_found", status_code=404)
            record["content"] = bytes(raw)
        return PlainTextResponse(f"OK - {len(raw)}")

    def _plain_failure(self, failure: _Failure) -> Response:
        headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else None
        return PlainTextResponse(failure.error, status_code=failure.status, headers=headers)

    def _take_failure(self, method: str) -> _Failure | None:
        """Return the failure to apply to this call (503 while down), consuming an injected one."""
        if self._state.down:
            return _Failure(status=503, error="service_unavailable", retry_after=None, remaining=0)
        queue = self._state.failures.get(method)
        if not queue:
            return None
        failure = queue[0]
        failure.remaining -= 1
        if failure.remaining <= 0:
            queue.pop(0)
        return failure

    # ---- Web API dispatch -----------------------------------------------------------------------------------

    def _handle_api(
        self,
        method: str,
        args: dict[str, Any],
        authorization: str | None,
        headers: dict[str, str],
        body_error: str | None,
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        token = args.pop("token", None)
        if authorization and authorization.lower().startswith("bearer "):
            token = authorization[7:].strip()
        status = 200
        extra: dict[str, str] = {}
        with self._lock:
            failure = self._take_failure(method)
            if failure is not None:
                status = failure.status
                payload: dict[str, Any] = {"ok": False, "error": failure.error}
                if failure.retry_after is not None:
                    extra["Retry-After"] = str(failure.retry_after)
            elif body_error is not None:
                payload = {"ok": False, "error": body_error}
            elif not token:
                payload = {"ok": False, "error": "not_authed"}
            elif not hmac.compare_digest(str(token), self.bot_token):
                payload = {"ok": False, "error": "invalid_auth"}
            else:
                handler = self._methods().get(method)
                if handler is None:
                    payload = {"ok": False, "error": "unknown_method", "req_method": method}
                else:
                    try:
                        args = self._decode_json_args(args)
                        payload = {"ok": True, **handler(args)}
                    except _SlackError as exc:
                        payload = {"ok": False, "error": exc.error}
            self._state.calls.append(
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
                    raise _SlackError("invalid_blocks_format" if name == "blocks" else "invalid_arguments") from None
        return decoded

    def _next_ts(self) -> str:
        now_us = int(time.time() * 1_000_000)
        us = max(now_us, self._state.last_ts_us + 1)
        self._state.last_ts_us = us
        return f"{us // 1_000_000}.{us % 1_000_000:06d}"

    def _next_id(self, prefix: str) -> str:
        self._state.counter += 1
        return f"{prefix}0EMU{self._state.counter:06d}"

    def _resolve_channel(self, channel: Any) -> str:
        """Return the conversation a message goes to; a user id means the bot's DM with that user."""
        if not isinstance(channel, str) or not channel:
            raise _SlackError("channel_not_found")
        if channel[0] in "UW":
            if channel not in self._directory:
                raise _SlackError("channel_not_found")
            return dm_channel_id(channel)
        return channel

    @staticmethod
    def _message_content(args: Mapping[str, Any]) -> tuple[str | None, list[Any]]:
        text = args.get("text")
        blocks = args.get("blocks") or []
        attachments = args.get("attachments") or []
        if not isinstance(blocks, list) or not isinstance(attachments, list):
            raise _SlackError("invalid_blocks")
        if not text and not blocks and not attachments:
            raise _SlackError("no_text")
        if text is not None and len(str(text)) > MAX_TEXT_CHARS:
            raise _SlackError("msg_too_long")
        if len(blocks) > MAX_MESSAGE_BLOCKS:
            raise _SlackError("invalid_blocks")
        return (None if text is None else str(text)), blocks

    def _message_object(self, ts: str, text: str | None, blocks: list[Any], thread_ts: Any) -> dict[str, Any]:
        message: dict[str, Any] = {
            "user": self.bot_user_id,
            "type": "message",
            "ts": ts,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "text": text or "",
            "team": self.team_id,
            "bot_profile": {"id": self.bot_id, "app_id": self.app_id, "name": self.bot_name, "deleted": False},
        }
        if blocks:
            message["blocks"] = copy.deepcopy(blocks)
        if thread_ts:
            message["thread_ts"] = thread_ts
        return message

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_name,
            "user": self.bot_name,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(args.get("channel"))
        text, blocks = self._message_content(args)
        ts = self._next_ts()
        thread_ts = args.get("thread_ts") or None
        self._state.messages[ts] = {
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
            raise _SlackError("user_not_in_channel")
        text, blocks = self._message_content(args)
        ts = self._next_ts()
        self._state.ephemerals.append(
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
        record = self._state.messages.get(ts) if isinstance(ts, str) else None
        if record is None or record["channel"] != channel:
            raise _SlackError("message_not_found")
        if "text" not in args and "blocks" not in args and "attachments" not in args:
            raise _SlackError("no_text")
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
            raise _SlackError("users_list_not_supplied")
        for user in users:
            if user not in self._directory:
                raise _SlackError("user_not_found")
        channel_id = dm_channel_id(users[0]) if len(users) == 1 else _mpim_channel_id(users)
        already = channel_id in self._state.opened
        self._state.opened.add(channel_id)
        channel: dict[str, Any] = {"id": channel_id}
        if str(args.get("return_im", "")).lower() in ("1", "true") and len(users) == 1:
            channel.update(
                created=int(time.time()),
                is_im=True,
                is_org_shared=False,
                user=users[0],
                is_user_deleted=self._directory[users[0]].deleted,
                priority=0,
            )
        result: dict[str, Any] = {"channel": channel}
        if already:
            result.update(no_op=True, already_open=True)
        return result

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self._directory.get(str(args.get("user") or ""))
        if user is None:
            raise _SlackError("user_not_found")
        return {"user": user.to_slack()}

    def _view_hash(self) -> str:
        return f"{int(time.time())}.{secrets.token_hex(4)}"

    def _view_object(self, view_id: str, view: Mapping[str, Any], root_view_id: str) -> dict[str, Any]:
        return {
            "id": view_id,
            "team_id": self.team_id,
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
            "app_id": self.app_id,
            "external_id": view.get("external_id", ""),
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }

    @staticmethod
    def _valid_view(args: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
        view = args.get("view")
        if not isinstance(view, dict) or view.get("type") != kind:
            raise _SlackError("invalid_arguments")
        blocks = view.get("blocks") or []
        if not isinstance(blocks, list) or len(blocks) > MAX_VIEW_BLOCKS:
            raise _SlackError("invalid_blocks")
        if kind == "modal" and not isinstance(view.get("title"), dict):
            raise _SlackError("invalid_arguments")
        return view

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        trigger_id = args.get("trigger_id") or args.get("interactivity_pointer")
        if not trigger_id:
            raise _SlackError("invalid_arguments")
        view = self._valid_view(args, "modal")
        view_id = self._next_id("V")
        obj = self._view_object(view_id, view, view_id)
        self._state.views[view_id] = {
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
            raise _SlackError("invalid_arguments")
        view = self._valid_view(args, "home")
        view_id = self._state.home_view_ids.get(user)
        record = self._state.views.get(view_id) if view_id else None
        if record is not None and args.get("hash") and args["hash"] != record["view"]["hash"]:
            raise _SlackError("hash_conflict")
        if view_id is None:
            view_id = self._next_id("V")
            self._state.home_view_ids[user] = view_id
        obj = self._view_object(view_id, view, view_id)
        updates = 0 if record is None else record["updates"] + 1
        self._state.views[view_id] = {
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
            record = self._state.views.get(str(args["view_id"]))
        elif args.get("external_id"):
            record = next(
                (r for r in self._state.views.values() if r["view"]["external_id"] == args["external_id"]), None
            )
        else:
            raise _SlackError("invalid_arguments")
        if record is None:
            raise _SlackError("not_found")
        if args.get("hash") and args["hash"] != record["view"]["hash"]:
            raise _SlackError("hash_conflict")
        view = self._valid_view(args, record["kind"])
        obj = self._view_object(record["id"], view, record["view"]["root_view_id"])
        record.update(view=obj, updates=record["updates"] + 1)
        return {"view": copy.deepcopy(obj)}

    def _files_get_upload_url(self, args: dict[str, Any]) -> dict[str, Any]:
        filename = args.get("filename")
        try:
            length = int(args.get("length", ""))
        except ValueError:
            raise _SlackError("invalid_arguments") from None
        if not filename or length < 0:
            raise _SlackError("invalid_arguments")
        file_id = self._next_id("F")
        self._state.files[file_id] = {
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
        return {"upload_url": f"{self.base_url}/upload/{file_id}", "file_id": file_id}

    def _files_complete_upload(self, args: dict[str, Any]) -> dict[str, Any]:
        items = args.get("files")
        if not isinstance(items, list) or not items:
            raise _SlackError("invalid_arguments")
        records: list[tuple[dict[str, Any], Mapping[str, Any]]] = []
        for item in items:
            record = self._state.files.get(str(item.get("id"))) if isinstance(item, dict) else None
            if record is None or record["content"] is None or record["completed"]:
                raise _SlackError("file_not_found")
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
                    "user": self.bot_user_id,
                    "user_team": self.team_id,
                    "size": len(record["content"]),
                    "is_external": False,
                    "is_public": channel is not None and channel.startswith("C"),
                    "url_private": f"{self.base_url}/files/{record['id']}/{record['filename']}",
                    "channels": [channel] if channel else [],
                    "shares": {},
                }
            )
        return {"files": result}


# --------------------------------------------------------------------------------------------------------------
# Signing and request builders
# --------------------------------------------------------------------------------------------------------------


def slash_command_body(  # noqa: PLR0917 - the six fields every test sets, in Slack's order
    command: str,
    text: str,
    user_id: str,
    team_id: str,
    channel_id: str,
    response_url: str,
    *,
    trigger_id: str | None = None,
    user_name: str | None = None,
    channel_name: str | None = None,
    team_domain: str = TEAM_DOMAIN,
    api_app_id: str = APP_ID,
    token: str = VERIFICATION_TOKEN,
    is_enterprise_install: bool = False,
) -> str:
    """Return a slash command's form body with exactly the fields, in the order, Slack sends them."""
    if channel_name is None:
        channel_name = "directmessage" if channel_id.startswith("D") else "general"
    fields = [
        ("token", token),
        ("team_id", team_id),
        ("team_domain", team_domain),
        ("channel_id", channel_id),
        ("channel_name", channel_name),
        ("user_id", user_id),
        ("user_name", user_name if user_name is not None else user_id.lower()),
        ("command", command),
        ("text", text),
        ("api_app_id", api_app_id),
        ("is_enterprise_install", "true" if is_enterprise_install else "false"),
        ("response_url", response_url),
        ("trigger_id", trigger_id or _trigger_id()),
    ]
    return urlencode(fields)


def interaction_body(payload: Mapping[str, Any]) -> str:
    """Return an interaction's form body: one `payload` field holding the JSON."""
    return urlencode({"payload": json.dumps(payload, separators=(",", ":"))})


def json_body(envelope: Mapping[str, Any]) -> str:
    """Return an Events API body (JSON) for `envelope`."""
    return json.dumps(envelope, separators=(",", ":"))


def _user_object(user_id: str, user_name: str | None, team_id: str) -> dict[str, Any]:
    name = user_name if user_name is not None else user_id.lower()
    return {"id": user_id, "username": name, "name": name, "team_id": team_id}


def block_actions_payload(
    user_id: str,
    action_id: str,
    value: str,
    *,
    response_url: str | None = None,
    channel_id: str | None = None,
    message: Mapping[str, Any] | None = None,
    message_ts: str | None = None,
    is_ephemeral: bool = False,
    view: Mapping[str, Any] | None = None,
    block_id: str = "actions",
    button_text: str = "Button",
    action: Mapping[str, Any] | None = None,
    state_values: Mapping[str, Any] | None = None,
    team_id: str = TEAM_ID,
    team_domain: str = TEAM_DOMAIN,
    user_name: str | None = None,
    channel_name: str | None = None,
    trigger_id: str | None = None,
    api_app_id: str = APP_ID,
    token: str = VERIFICATION_TOKEN,
) -> dict[str, Any]:
    """Return a block_actions payload for a button click on a message (give response_url) or in a view."""
    clicked: dict[str, Any] = {
        "type": "button",
        "action_id": action_id,
        "block_id": block_id,
        "text": {"type": "plain_text", "text": button_text, "emoji": True},
        "value": value,
        "action_ts": _now_ts(),
    }
    if action is not None:
        clicked.update(action)
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": _user_object(user_id, user_name, team_id),
        "api_app_id": api_app_id,
        "token": token,
        "trigger_id": trigger_id or _trigger_id(),
        "team": {"id": team_id, "domain": team_domain},
        "enterprise": None,
        "is_enterprise_install": False,
    }
    if view is not None:
        payload["container"] = {"type": "view", "view_id": view.get("id")}
        payload["view"] = copy.deepcopy(dict(view))
        payload["state"] = {"values": copy.deepcopy(dict(state_values or {}))}
    else:
        if response_url is None or channel_id is None:
            raise ValueError("a message button click needs response_url and channel_id")
        ts = message_ts or (str(message["ts"]) if message is not None and "ts" in message else _now_ts())
        payload["container"] = {
            "type": "message",
            "message_ts": ts,
            "channel_id": channel_id,
            "is_ephemeral": is_ephemeral,
        }
        if channel_name is None:
            channel_name = "directmessage" if channel_id.startswith("D") else "general"
        payload["channel"] = {"id": channel_id, "name": channel_name}
        if not is_ephemeral:
            payload["message"] = (
                copy.deepcopy(dict(message))
                if message is not None
                else {"type": "message", "ts": ts, "text": "", "bot_id": BOT_ID, "user": BOT_USER_ID}
            )
        payload["state"] = {"values": copy.deepcopy(dict(state_values or {}))}
        payload["response_url"] = response_url
    payload["actions"] = [clicked]
    return payload


def _state_values(values: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Expand `{block: {action: "text"}}` into Slack's `{block: {action: {type, value}}}`; dicts pass through."""
    out: dict[str, dict[str, Any]] = {}
    for block_id, actions in values.items():
        out[block_id] = {}
        for action_id, value in actions.items():
            if isinstance(value, str) or value is None:
                out[block_id][action_id] = {"type": "plain_text_input", "value": value}
            else:
                out[block_id][action_id] = copy.deepcopy(value)
    return out


def view_submission_payload(
    user_id: str,
    callback_id: str,
    values: Mapping[str, Mapping[str, Any]],
    *,
    private_metadata: str = "",
    view_id: str | None = None,
    blocks: list[Any] | None = None,
    title: str = "Request access",
    external_id: str = "",
    response_urls: list[Mapping[str, Any]] | None = None,
    team_id: str = TEAM_ID,
    team_domain: str = TEAM_DOMAIN,
    user_name: str | None = None,
    trigger_id: str | None = None,
    api_app_id: str = APP_ID,
    token: str = VERIFICATION_TOKEN,
) -> dict[str, Any]:
    """Return a view_submission payload; `values` maps block_id → action_id → text (or a full state dict)."""
    view_id = view_id or "V" + secrets.token_hex(5).upper()
    return {
        "type": "view_submission",
        "team": {"id": team_id, "domain": team_domain},
        "user": _user_object(user_id, user_name, team_id),
        "api_app_id": api_app_id,
        "token": token,
        "trigger_id": trigger_id or _trigger_id(),
        "view": {
            "id": view_id,
            "team_id": team_id,
            "type": "modal",
            "blocks": copy.deepcopy(blocks or []),
            "private_metadata": private_metadata,
            "callback_id": callback_id,
            "state": {"values": _state_values(values)},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "title": {"type": "plain_text", "text": title, "emoji": True},
            "clear_on_close": False,
            "notify_on_close": False,
            "close": {"type": "plain_text", "text": "Cancel", "emoji": True},
            "submit": {"type": "plain_text", "text": "Submit", "emoji": True},
            "previous_view_id": None,
            "root_view_id": view_id,
            "app_id": api_app_id,
            "external_id": external_id,
            "app_installed_team_id": team_id,
            "bot_id": BOT_ID,
        },
        "response_urls": [dict(r) for r in response_urls or []],
        "is_enterprise_install": False,
        "enterprise": None,
    }


def app_home_opened_event(
    user_id: str,
    *,
    channel_id: str | None = None,
    tab: str = "home",
    view: Mapping[str, Any] | None = None,
    team_id: str = TEAM_ID,
    api_app_id: str = APP_ID,
    bot_user_id: str = BOT_USER_ID,
    event_ts: str | None = None,
    event_id: str | None = None,
    event_time: int | None = None,
    token: str = VERIFICATION_TOKEN,
) -> dict[str, Any]:
    """Return the Events API envelope Slack sends when a user opens the app's Home tab."""
    event: dict[str, Any] = {
        "type": "app_home_opened",
        "user": user_id,
        "channel": channel_id or dm_channel_id(user_id),
        "tab": tab,
        "event_ts": event_ts or _now_ts(),
    }
    if view is not None:
        event["view"] = copy.deepcopy(dict(view))
    return {
        "token": token,
        "team_id": team_id,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or "Ev" + secrets.token_hex(5).upper(),
        "event_time": event_time if event_time is not None else int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
    }


class SlackSigner:
    """Signs request bodies exactly as Slack does (`v0=` HMAC-SHA256 over `v0:{timestamp}:{body}`)."""

    slash_command_body = staticmethod(slash_command_body)
    interaction_body = staticmethod(interaction_body)
    json_body = staticmethod(json_body)
    block_actions_payload = staticmethod(block_actions_payload)
    view_submission_payload = staticmethod(view_submission_payload)
    app_home_opened_event = staticmethod(app_home_opened_event)

    def __init__(self, signing_secret: str, clock: Callable[[], float] = time.time) -> None:
        """Keep the signing secret; `clock` gives the default timestamp."""
        self._secret = signing_secret.encode("utf-8")
        self._clock = clock

    def __repr__(self) -> str:
        """Never show the secret."""
        return "SlackSigner(signing_secret=***)"

    def signature(self, body: bytes | str, timestamp: int | str) -> str:
        """Return `v0=<hex>` for this body and timestamp."""
        raw = body.encode("utf-8") if isinstance(body, str) else body
        base = b"v0:" + str(timestamp).encode("ascii") + b":" + raw
        return "v0=" + hmac.new(self._secret, base, hashlib.sha256).hexdigest()

    def sign(self, body: bytes | str, timestamp: int | None = None) -> dict[str, str]:
        """Return the X-Slack-Request-Timestamp and X-Slack-Signature headers for `body`."""
        ts = int(self._clock()) if timestamp is None else timestamp
        return {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": self.signature(body, ts)}

    def headers(
        self,
        body: bytes | str,
        *,
        content_type: str = "application/x-www-form-urlencoded",
        timestamp: int | None = None,
    ) -> dict[str, str]:
        """Return the signature headers plus Content-Type (use `application/json` for Events API bodies)."""
        return {"Content-Type": content_type, **self.sign(body, timestamp)}
