"""`/access …` text → a Command value, or a UserError with the usage line and a suggestion."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from datetime import timedelta

from bot.core.durations import DURATION_HINT, parse_duration
from bot.core.errors import UserError, shown
from bot.core.review_commands import ReviewStart, parse_start


@dataclass(frozen=True)
class Bare:
    """No text: help for unlinked users, the access list for linked ones."""


@dataclass(frozen=True)
class Help:
    """Show the help text (optionally for one subcommand)."""

    topic: str = ""


@dataclass(frozen=True)
class Link:
    """Start linking the Slack user to the identity provider."""


@dataclass(frozen=True)
class Unlink:
    """Remove the link, revoke tokens and grants."""


@dataclass(frozen=True)
class Whoami:
    """Show the linked identity."""


@dataclass(frozen=True)
class ListAccess:
    """What can I access, optionally narrowed to `CLUSTER` or `CLUSTER/PROJECT`."""

    target: str | None = None


@dataclass(frozen=True)
class Request:
    """Ask for ROLE on TARGET; an empty target opens the request modal."""

    target: str = ""
    role: str = ""
    duration: timedelta | None = None
    reason: str = ""
    ticket: str = ""
    break_glass: bool = False

    @property
    def interactive(self) -> bool:
        """True when no target was given, so the modal should open."""
        return not self.target


@dataclass(frozen=True)
class Grants:
    """List my grants, or everyone's (`all`, approvers and admins)."""

    all: bool = False


@dataclass(frozen=True)
class Revoke:
    """End a grant early (or withdraw a request), with an optional reason shown to the holder."""

    grant_id: str
    reason: str = ""


@dataclass(frozen=True)
class Extend:
    """Extend a grant by a duration."""

    grant_id: str
    duration: timedelta


@dataclass(frozen=True)
class Who:
    """Who holds which role on a target."""

    target: str


@dataclass(frozen=True)
class Rules:
    """What the caller may request, and on which conditions."""


@dataclass(frozen=True)
class Review:
    """The access reviews awaiting the caller, or (admins) `review start NAME …`."""

    start: ReviewStart | None = None


Command = Bare | Help | Link | Unlink | Whoami | ListAccess | Request | Grants | Revoke | Extend | Who | Rules | Review

USAGE: dict[str, tuple[str, str]] = {
    "help": ("help [COMMAND]", "show this help"),
    "link": ("link", "link your Slack account to your company identity"),
    "whoami": ("whoami", "show your linked identity, groups and Rancher principals"),
    "list": ("list [CLUSTER[/PROJECT]]", "what you can access, and why"),
    "request": (
        "request TARGET ROLE [for DURATION] [ticket ID] [breakglass] [because REASON…]",
        "ask for a role for a while (no arguments: open a form)",
    ),
    "grants": ("grants [all]", "your time-boxed grants (all: everyone's, for approvers and admins)"),
    "revoke": ("revoke GRANT_ID [because REASON…]", "end a grant now (the holder is told who and why)"),
    "extend": ("extend GRANT_ID DURATION", "add time to a grant, within the rule's limits"),
    "who": ("who TARGET", "who holds which role on a cluster or project (approvers and admins)"),
    "rules": ("rules", "what you may request, and on which conditions"),
    "review": (
        "review [start NAME [roles R,…] [targets T,…] [subjects users|groups|both] [due 14d] [on-timeout keep]]",
        "the access reviews awaiting you (admins: start one)",
    ),
    "unlink": ("unlink", "remove your link; your tokens and grants are revoked"),
}
_ALIASES = {"ls": "list", "me": "whoami", "req": "request", "login": "link", "logout": "unlink", "?": "help"}
_GRANT_ID = re.compile(r"^g-\d{1,12}$")
_TARGET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:*-]{0,252}(/[A-Za-z0-9][A-Za-z0-9._:* -]{0,252})?$")
_ROLE = re.compile(r"^[a-z0-9][a-z0-9.-]{0,252}$")
MAX_REASON = 500
MAX_COMMAND_CHARS = 2000
"""Longest `/access` text read at all (a request with a 500-character reason fits with room to spare)."""
MAX_TICKET = 64
_BREAK_GLASS = ("breakglass", "break-glass")


def usage(name: str, command: str = "/access") -> str:
    """The usage line of one subcommand, e.g. "/access revoke GRANT_ID"."""
    return f"{command} {USAGE[name][0]}"


def _unknown(word: str) -> UserError:
    candidates = difflib.get_close_matches(word[:40], [*USAGE, *_ALIASES], n=1, cutoff=0.6)
    hint = f"did you mean `{_ALIASES.get(candidates[0], candidates[0])}`?" if candidates else ""
    return UserError(f"`{shown(word)}` is not a command I know", hint or "try `help` for the list of commands")


def _grant_id(text: str, name: str) -> str:
    gid = text.strip().lower()
    if not _GRANT_ID.match(gid):
        raise UserError(f"`{shown(text)}` is not a grant id (they look like g-12)", f"usage: {usage(name)}")
    return gid


def _target(text: str, name: str) -> str:
    if not _TARGET.match(text):
        raise UserError(f"`{shown(text)}` is not a cluster or CLUSTER/PROJECT", f"usage: {usage(name)}")
    return text


def _parse_request(words: list[str]) -> Request:
    if not words:
        return Request()
    if len(words) < 2:
        raise UserError("a request needs a target and a role", f"usage: {usage('request')}")
    target, role, rest = _target(words[0], "request"), words[1].lower(), words[2:]
    if not _ROLE.match(role):
        raise UserError(
            f"`{shown(words[1])}` is not a role template id (like project-member)", f"usage: {usage('request')}"
        )
    duration: timedelta | None = None
    ticket = ""
    reason = ""
    break_glass = False
    i = 0
    while i < len(rest):
        word = rest[i].lower()
        if word == "for" and duration is None:
            # a duration may be written "2h", "1h30m" or "90 minutes"
            j = i + 1
            parts: list[str] = []
            while j < len(rest) and rest[j].lower() not in ("because", "ticket", "reason", *_BREAK_GLASS):
                parts.append(rest[j])
                j += 1
            if not parts:
                raise UserError("`for` needs a duration", DURATION_HINT)
            duration = parse_duration(" ".join(parts))
            i = j
        elif word == "ticket" and not ticket:
            if i + 1 >= len(rest):
                raise UserError("`ticket` needs an id, like `ticket OPS-123`", f"usage: {usage('request')}")
            ticket = rest[i + 1]
            if len(ticket) > MAX_TICKET:
                raise UserError(f"the ticket is {len(ticket)} characters long (at most {MAX_TICKET})")
            i += 2
        elif word in _BREAK_GLASS:
            break_glass = True
            i += 1
        elif word in ("because", "reason"):
            reason = " ".join(rest[i + 1 :]).strip()
            if not reason:
                raise UserError("`because` needs a reason after it", f"usage: {usage('request')}")
            break
        else:
            raise UserError(
                f"I did not understand `{shown(rest[i])}` in your request",
                f"usage: {usage('request')} (e.g. `request prod-eu/payments project-member for 2h because INC-42`)",
            )
    if len(reason) > MAX_REASON:
        raise UserError(f"the reason is {len(reason)} characters long (at most {MAX_REASON})")
    if not break_glass and any(w.lower().strip(".,;:!") in _BREAK_GLASS for w in reason.split()):
        raise UserError(
            "`breakglass` is inside your reason, so this would not be a break-glass request",
            f"put it before `because`: `request {target} {role} breakglass because {reason}`"
            if len(reason) < 200
            else "put `breakglass` before `because`",
        )
    if break_glass and not reason:
        raise UserError("break-glass access needs a reason", "add `because …` (it is posted to the security channel)")
    return Request(target=target, role=role, duration=duration, reason=reason, ticket=ticket, break_glass=break_glass)


def parse(text: str) -> Command:
    """Parse the text after the slash command into a Command, or raise UserError (linear in the text, capped)."""
    if len(text) > MAX_COMMAND_CHARS:
        raise UserError(
            f"that command is {len(text)} characters long (at most {MAX_COMMAND_CHARS})",
            "a reason can be up to 500 characters; put long explanations in a ticket",
        )
    words = text.split()
    if not words:
        return Bare()
    head, args = words[0].lower(), words[1:]
    head = _ALIASES.get(head, head)
    if head == "help":
        topic = args[0].lower() if args else ""
        topic = _ALIASES.get(topic, topic)
        if topic and topic not in USAGE:
            raise _unknown(topic)
        return Help(topic)
    if head not in USAGE:
        raise _unknown(words[0])
    if head in ("link", "unlink", "whoami", "rules"):
        if args:
            raise UserError(f"`{head}` takes no arguments", f"usage: {usage(head)}")
        simple: dict[str, Command] = {"link": Link(), "unlink": Unlink(), "whoami": Whoami(), "rules": Rules()}
        return simple[head]
    if head == "list":
        if len(args) > 1:
            raise UserError("`list` takes at most one CLUSTER or CLUSTER/PROJECT", f"usage: {usage('list')}")
        return ListAccess(_target(args[0], "list") if args else None)
    if head == "request":
        return _parse_request(args)
    if head == "review":
        if not args:
            return Review()
        if args[0].lower() != "start":
            raise UserError(f"`review` takes nothing or `start …`, not `{shown(args[0])}`", f"usage: {usage('review')}")
        return Review(parse_start(args[1:]))
    if head == "grants":
        if args and [a.lower() for a in args] != ["all"]:
            raise UserError("`grants` takes nothing or `all`", f"usage: {usage('grants')}")
        return Grants(all=bool(args))
    if head == "revoke":
        if not args or (len(args) > 1 and args[1].lower() not in ("because", "reason")):
            raise UserError("`revoke` needs one grant id, then optionally `because …`", f"usage: {usage('revoke')}")
        reason = " ".join(args[2:]).strip()
        if len(args) > 1 and not reason:
            raise UserError("`because` needs a reason after it", f"usage: {usage('revoke')}")
        if len(reason) > MAX_REASON:
            raise UserError(f"the reason is {len(reason)} characters long (at most {MAX_REASON})")
        return Revoke(_grant_id(args[0], "revoke"), reason)
    if head == "extend":
        if len(args) < 2:
            raise UserError("`extend` needs a grant id and a duration", f"usage: {usage('extend')}")
        rest = args[2:] if args[1].lower() == "by" else args[1:]
        if not rest:
            raise UserError("`extend` needs a duration", f"usage: {usage('extend')}")
        return Extend(_grant_id(args[0], "extend"), parse_duration(" ".join(rest)))
    # who
    if len(args) != 1:
        raise UserError("`who` needs exactly one CLUSTER or CLUSTER/PROJECT", f"usage: {usage('who')}")
    return Who(_target(args[0], "who"))
