"""The demo console: Slack commands, clicks and time travel as the demo's people, and what Slack then shows."""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import inspect
import re
import shlex
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

import httpx

from accessbot_emulators.idp import LoginFailedError, complete_login
from accessbot_emulators.slack import (
    ResponsePost,
    SlackSigner,
    app_home_opened_event,
    block_actions_payload,
    interaction_body,
    json_body,
    slash_command_body,
)
from bot.adapters.store import open_storage
from bot.core.durations import format_duration, parse_duration
from bot.core.errors import UserError
from bot.demo import botconfig
from bot.demo.feed import Clickable, SlackFeed
from bot.demo.stack import PEOPLE, TEAM_ID, Stack

HELP = """\
Console commands (everything else is ignored):
  /access …            send a slash command as the current user (e.g. /access list)
  :as NAME             become another user (alice, bob, carol)
  :click N             click button N of what was shown (Approve, Deny, Extend, …)
  :click-label TEXT    click the newest button labelled TEXT (e.g. :click-label Approve; robust in scripts)
  :login [NAME]        finish the last /access link of NAME in the IdP's login form
  :wait DURATION       move the clock forward (e.g. :wait 30m) and let the jobs run
  :disable NAME        disable NAME at the identity provider (see offboarding at the next refresh)
  :enable NAME         enable NAME again
  :home                open the App Home tab of the current user
  :audit [N]           show the last N audit events (default 15)
  :verify              verify the audit hash chain
  :digest              print the weekly digest for the last 7 days
  :review ARGS…        run `accessbot review ARGS…` as the operator (e.g. :review start --name q4 --roles
                       project-member --targets dev-*; :review plan q4; :review apply q4; :review undo 1)
  :rancher             list the bindings the bot created in the Rancher emulator
  :restart             restart the bot (same URL and database), as a deploy or crash would
  :users               who is who in this demo
  :expect TEXT         (scripts) fail unless TEXT appeared since the previous command (any run of spaces
                       matches any run of spaces)
  :expect-not TEXT     (scripts) fail if TEXT appeared since the previous command
  :help                this help
  :quit                stop everything"""


class ExpectationFailed(Exception):
    """An `:expect` line did not match what the demo showed (or a script line could not be run)."""


@dataclass
class Console:
    """Drives the running stack with console commands and prints what Slack users would see."""

    stack: Stack
    out: TextIO
    user: str = "alice"
    settle: float = 4.0
    strict: bool = False
    transcript: list[str] = field(default_factory=list)
    traveller: Any = None
    signer: SlackSigner = field(default_factory=lambda: SlackSigner(botconfig.SIGNING_SECRET))
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=15))
    feed: SlackFeed = field(init=False)

    def __post_init__(self) -> None:
        self.feed = SlackFeed(self.stack, self.say, self.settle)

    def close(self) -> None:
        """Close the console's HTTP client (the stack is stopped by whoever started it)."""
        self.http.close()

    def say(self, text: str = "") -> None:
        """Print a line and keep it for `:expect`."""
        print(text, file=self.out, flush=True)
        self.transcript.append(text)

    # --- dispatch ------------------------------------------------------------------------------------

    def run_line(self, line: str) -> bool:
        """Run one console line; False means quit."""
        line = line.strip()
        if not line or line.startswith("#"):
            return True
        head, _, rest = line.partition(" ")
        if head in (":expect", ":expect-not"):
            self._expect(rest.strip(), present=head == ":expect")
            return True
        self.transcript = []
        if line.startswith("/"):
            self.slash(line)
            return True
        if not line.startswith(":"):
            self.problem("(type a slash command like /access help, or :help)")
            return True
        try:
            words = shlex.split(line[1:]) or [""]
        except ValueError as err:
            self.problem(f"cannot read that line: {err}")
            return True
        name, args = words[0], words[1:]
        if name in ("quit", "exit", "q"):
            return False
        handler = getattr(self, f"cmd_{name.replace('-', '_')}", None)
        if handler is None:
            self.problem(f"unknown console command :{name} (try :help)")
            return True
        try:
            inspect.signature(handler).bind(*args)
        except TypeError:
            self.problem(f"wrong arguments for :{name} (try :help)")
            return True
        handler(*args)
        return True

    def problem(self, text: str) -> None:
        """Say what went wrong; in a script (strict mode) stop with a failure."""
        self.say(text)
        if self.strict:
            raise ExpectationFailed(text)

    def _expect(self, text: str, *, present: bool = True) -> None:
        if not text:
            self.problem(f"{':expect' if present else ':expect-not'} needs a TEXT to look for")
            return
        shown = " ".join(text.split()) in " ".join(" ".join(self.transcript).split())
        if shown != present:
            verdict = "not shown" if present else "shown but should not be"
            print(f"EXPECTATION FAILED: {text!r} {verdict}", file=self.out, flush=True)
            raise ExpectationFailed(text)
        print(f"  ✓ {'expected' if present else 'absent as expected'}: {text}", file=self.out, flush=True)

    # --- Slack side ----------------------------------------------------------------------------------

    def _post(self, body: str, content_type: str = "application/x-www-form-urlencoded") -> httpx.Response:
        headers = self.signer.sign(body)
        headers["Content-Type"] = content_type
        return self.http.post(f"{self.stack.bot_url}/slack/events", content=body.encode(), headers=headers)

    def _uid(self, name: str | None = None) -> str:
        return PEOPLE[name or self.user][0]

    def slash(self, line: str) -> None:
        """Send a slash command as the current user and show the reply plus anything posted meanwhile."""
        command, _, text = line.partition(" ")
        if command != "/access":  # Slack itself says so for a command no app registered; never Bolt's internals
            guess = difflib.get_close_matches(command, ["/access"], n=1)
            hint = f" Did you mean `{(guess[0] + ' ' + text).strip()}`?" if guess else ""
            self.problem(f"`{command}` is not a command here.{hint} Try `/access help`, or :help for the console.")
            return
        key = uuid.uuid4().hex[:12]
        body = slash_command_body(
            command,
            text,
            self._uid(),
            TEAM_ID,
            "C0DEMO0001",
            self.stack.slack.response_url(key),
            user_name=self.user,
            channel_name="demo",
        )
        response = self._post(body)
        if response.status_code != 200:
            self.problem(f"(Slack would show: the app did not answer — HTTP {response.status_code})")
            return
        if response.content:  # an immediate response: the reply came in the acknowledgement itself
            post = ResponsePost(key, response.json(), time.time())
            self.feed.print_message(
                "only visible to you", post.blocks, post.text, user=self.user, channel=None, ts=None, ephemeral=True
            )
        else:
            self.feed.show_response(key, self.user)
        self.feed.show_new_messages(self.user)

    def cmd_click(self, number: str) -> None:
        """Click a numbered button as the current user."""
        if not number.isdigit() or not 1 <= int(number) <= len(self.feed.buttons):
            self.problem(f"there is no button {number} (buttons are numbered in square brackets)")
            return
        self._click(self.feed.buttons[int(number) - 1])

    def cmd_click_label(self, *words: str) -> None:
        """Click the newest button whose label is TEXT (case-insensitive; else the newest that contains it)."""
        wanted = " ".join(words).strip().casefold()
        if not wanted:
            self.problem("which button? e.g. :click-label Approve")
            return
        labels = [c.button.text.strip().casefold() for c in self.feed.buttons]
        for matches in (lambda label: label == wanted, lambda label: wanted in label):
            for index in range(len(self.feed.buttons) - 1, -1, -1):
                if matches(labels[index]):
                    self.say(f"(button [{index + 1}] {self.feed.buttons[index].button.text})")
                    self._click(self.feed.buttons[index])
                    return
        self.problem(f"no button labelled {' '.join(words)!r} was shown")

    def _click(self, target: Clickable) -> None:
        if target.button.url:
            self.problem(f"(that button opens {target.button.url} in a browser; use :login to finish it here)")
            return
        key = uuid.uuid4().hex[:12]
        response_url = self.stack.slack.response_url(key, channel=target.channel, message_ts=target.ts)
        payload = block_actions_payload(
            self._uid(),
            target.button.action_id,
            target.button.value,
            response_url=response_url,
            channel_id=target.channel or "C0DEMO0001",
            message=target.message,
            message_ts=target.ts if target.message is None else None,
            is_ephemeral=target.ephemeral,
            block_id=target.button.block_id or "actions",
            button_text=target.button.text,
            team_id=TEAM_ID,
            user_name=self.user,
        )
        response = self._post(interaction_body(payload))
        if response.status_code != 200:
            self.problem(f"(the click was refused: HTTP {response.status_code})")
            return
        self.say(f"({self.user} clicked “{target.button.text}”)")
        self.feed.show_response(key, self.user, timeout=2.0)
        self.feed.show_new_messages(self.user)

    def cmd_home(self) -> None:
        """Open the App Home tab."""
        body = json_body(app_home_opened_event(self._uid(), team_id=TEAM_ID))
        self._post(body, content_type="application/json")
        time.sleep(1.0)
        home = self.stack.slack.home(self._uid())
        if home is None:
            self.say("(no App Home published)")
            return
        self.feed.print_message(f"App Home of {self.user}", home.blocks, None, user=self.user, channel=None, ts=None)

    # --- identity side -------------------------------------------------------------------------------

    def cmd_as(self, name: str) -> None:
        """Switch the current user."""
        if name not in PEOPLE:
            self.problem(f"no such demo user {name!r} (alice, bob, carol)")
            return
        self.user = name
        self.say(f"you are now {name}")

    def cmd_login(self, name: str = "") -> None:
        """Complete the last link flow of a user by filling the IdP form with their password."""
        who = name or self.user
        url = self.feed.links.get(who)
        if not url:
            self.problem(f"{who} has no pending link; send /access link as {who} first")
            return
        page = asyncio.run(self._login(url, who))
        self.feed.links.pop(who, None)
        if page.startswith("login failed"):
            self.problem(f"(browser) {page}")
            return
        self.say(f"(browser) {page}")
        self.feed.show_new_messages(self.user)

    async def _login(self, start_url: str, who: str) -> str:
        async with httpx.AsyncClient(timeout=15, follow_redirects=False) as client:
            start = await client.get(start_url)
            if start.status_code not in (302, 303, 307):
                return _page_text(start.text)
            try:
                callback = await complete_login(client, start.headers["location"], who, who)
            except LoginFailedError as err:
                return f"login failed: {err}"
            page = await client.get(callback)
            return _page_text(page.text)

    def cmd_disable(self, name: str) -> None:
        """Disable an account at the IdP."""
        if name not in PEOPLE:
            self.problem(f"no such demo user {name!r} (alice, bob, carol)")
            return
        self.stack.idp.set_disabled(name, True)
        self.say(f"{name} is disabled at the identity provider; the next token refresh will notice")

    def cmd_enable(self, name: str) -> None:
        """Enable an account at the IdP again."""
        if name not in PEOPLE:
            self.problem(f"no such demo user {name!r} (alice, bob, carol)")
            return
        self.stack.idp.set_disabled(name, False)
        self.say(f"{name} is enabled again at the identity provider")

    # --- time, audit, digest -------------------------------------------------------------------------

    def cmd_wait(self, text: str = "1m") -> None:
        """Move the clock forward and give the scheduled jobs a moment to run."""
        try:
            delta = parse_duration(text)
        except UserError as err:
            self.problem(err.message)
            return
        if self.traveller is None:
            self.problem("(time travel needs the time-machine package: pip install 'rancher-access-bot[demo]')")
            return
        self.traveller.shift(delta)
        self.say(f"⏩ {format_duration(delta)} later: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
        self.feed.show_new_messages(self.user, jobs=True)

    def cmd_audit(self, count: str = "15") -> None:
        """Show the newest audit events."""
        if not count.isdigit():
            self.problem(f":audit takes a number of events, not {count!r}")
            return
        store = open_storage(self.stack.config.database.reveal(), migrate=False)
        try:
            events = list(store.audit.events())[-int(count) :]
        finally:
            store.database.close()
        for event in events:
            when = datetime.fromtimestamp(event.ts, UTC).strftime("%H:%M:%S")
            reason = f" — {event.reason}" if event.reason else ""
            self.say(f"  #{event.id:<4} {when} {event.action:<28} {event.actor:<12} {event.target}{reason}")

    def cmd_verify(self) -> None:
        """Verify the audit chain."""
        self._cli("audit", "verify")

    def cmd_review(self, *args: str) -> None:
        """Run `accessbot review …` as the operator (start, list, show, plan, apply, undo, report, close), then show
        what the bot posted because of it."""
        self._cli("review", *args)
        self.feed.show_new_messages(self.user)

    def cmd_digest(self) -> None:
        """Print the digest of the last 7 days."""
        self._cli("digest", "--since", "7d")

    def _cli(self, *argv: str) -> None:
        import io  # noqa: PLC0415

        from bot.cli import main  # noqa: PLC0415

        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            main(["--config", str(self.stack.config_path), *argv])
        for line in buffer.getvalue().splitlines():
            self.say(line)

    def cmd_rancher(self) -> None:
        """List the bindings the bot created in the Rancher emulator."""
        label = self.stack.config.rancher.grant_label
        found = False
        for kind in ("clusterRoleTemplateBinding", "projectRoleTemplateBinding"):
            for obj in self.stack.rancher.objects(kind):
                labels = obj.get("labels") or {}
                if label in labels:
                    found = True
                    scope = obj.get("projectId") or obj.get("clusterId")
                    subject = obj.get("userId") or obj.get("userPrincipalId")
                    self.say(
                        f"  {obj['id']}  {obj['roleTemplateId']} on {scope} for {subject}  [{label}={labels[label]}]"
                    )
        if not found:
            self.say("  (no bindings tagged by the bot)")

    def cmd_restart(self) -> None:
        """Restart the bot on the same URL and database; grants, requests and links survive."""
        self.stack.restart_bot()
        self.say(f"the bot restarted at {self.stack.bot_url} on the same database")
        self.feed.show_new_messages(self.user)

    def cmd_users(self) -> None:
        """Who is who."""
        for name, (uid, email, real) in PEOPLE.items():
            self.say(f"  {name:<6} {uid}  {email:<20} {real}")

    def cmd_help(self) -> None:
        """Print the console help."""
        for line in HELP.splitlines():
            self.say(line)


def _page_text(page: str) -> str:
    """The readable text of a small HTML page."""
    body = re.sub(r"(?is)<(script|style|head)\b.*?</\1>", " ", page)
    text = re.sub(r"<[^>]+>", " ", body)
    import html  # noqa: PLC0415

    return re.sub(r"\s+", " ", html.unescape(text)).strip()
