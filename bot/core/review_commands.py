"""`review …` as people type it (in Slack and on the command line) → checked values, or a UserError saying why.

Everything here is outside input: names, selectors and durations are bounded and matched by linear patterns, and a
refusal quotes at most 40 characters of what was typed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from bot.core.durations import DURATION_HINT, parse_duration
from bot.core.errors import UserError, is_number, shown
from bot.core.reviews import CampaignScope, Subjects, Verdict

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_ROLE = re.compile(r"^[a-z0-9*?][a-z0-9.*?-]{0,252}$")
_TARGET = re.compile(r"^[A-Za-z0-9*?][A-Za-z0-9._:*?-]{0,252}(/[A-Za-z0-9*?][A-Za-z0-9._:*? -]{0,252})?$")
MAX_SELECTORS = 50
MIN_DUE, MAX_DUE = timedelta(hours=1), timedelta(days=365)
USAGE = (
    "review start NAME [roles ROLE,…] [targets TARGET,…] [subjects users|groups|both] [due DURATION] "
    "[on-timeout keep|remove|convert]"
)


@dataclass(frozen=True)
class ReviewStart:
    """A request to start a campaign; None fields take the configured defaults (roles: every governed role)."""

    name: str
    roles: tuple[str, ...] = ()
    targets: tuple[str, ...] = ("*",)
    subjects: Subjects = Subjects.BOTH
    due: timedelta | None = None
    on_timeout: Verdict | None = None

    def scope(self, default_roles: tuple[str, ...]) -> CampaignScope:
        """What the campaign covers (the default roles when none were named)."""
        return CampaignScope(roles=self.roles or default_roles, targets=self.targets, subjects=self.subjects)


def campaign_name(text: str) -> str:
    """A campaign name: letters, digits, `.`, `_`, `-`, at most 64 characters."""
    if not _NAME.match(text):
        raise UserError(
            f"`{shown(text)}` is not a campaign name",
            "use letters, digits, `.`, `_` and `-` (at most 64), like q3-prod",
        )
    return text


def _selectors(text: str, pattern: re.Pattern[str], what: str, example: str) -> tuple[str, ...]:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise UserError(f"no {what} given", f"name them separated by commas, like {example}")
    if len(parts) > MAX_SELECTORS:
        raise UserError(f"{len(parts)} {what} given (at most {MAX_SELECTORS})", "use globs, like prod-*")
    for part in parts:
        if not pattern.match(part):
            raise UserError(f"`{shown(part)}` is not one of the {what}", f"like {example}")
    return tuple(dict.fromkeys(parts))


def role_selectors(text: str) -> tuple[str, ...]:
    """Role template ids (globs allowed), comma-separated."""
    return _selectors(text.lower(), _ROLE, "roles", "cluster-owner,project-owner")


def target_selectors(text: str) -> tuple[str, ...]:
    """Cluster globs or CLUSTER/PROJECT globs, comma-separated."""
    return _selectors(text, _TARGET, "targets", "prod-*,staging-eu/payments")


def subjects(text: str) -> Subjects:
    """users, groups or both."""
    try:
        return Subjects(text.strip().lower())
    except ValueError:
        raise UserError(f"`{shown(text)}` is not a kind of subject", "use users, groups or both") from None


def verdict(text: str) -> Verdict:
    """keep, remove or convert."""
    try:
        return Verdict(text.strip().lower())
    except ValueError:
        raise UserError(f"`{shown(text)}` is not what happens on timeout", "use keep, remove or convert") from None


def due(text: str) -> timedelta:
    """A campaign's time to run: a duration between 1h and 365d."""
    value = parse_duration(text)
    if not MIN_DUE <= value <= MAX_DUE:
        raise UserError(f"a review runs between 1h and 365d, not {shown(text)}", DURATION_HINT)
    return value


def item_id(text: str) -> int:
    """A review item's number (as `accessbot review show` lists them)."""
    value = text.strip().removeprefix("#")
    if not is_number(value) or len(value) > 15 or int(value) < 1:
        raise UserError(
            f"`{shown(text)}` is not a review item number", "they are listed by `accessbot review show NAME`"
        )
    return int(value)


_OPTIONS = ("roles", "targets", "subjects", "due", "on-timeout")


def parse_start(words: list[str]) -> ReviewStart:
    """`start NAME [roles …] [targets …] [subjects …] [due …] [on-timeout …]` (each option once)."""
    if not words:
        raise UserError("a review needs a name", f"usage: {USAGE}")
    name = campaign_name(words[0])
    seen: dict[str, str] = {}
    rest = words[1:]
    if len(rest) % 2:
        raise UserError(f"`{shown(rest[-1])}` needs a value after it", f"usage: {USAGE}")
    for key, value in zip(rest[::2], rest[1::2], strict=True):
        option = key.lower()
        if option not in _OPTIONS:
            raise UserError(f"`{shown(key)}` is not a review option", f"usage: {USAGE}")
        if option in seen:
            raise UserError(f"`{option}` is given twice", f"usage: {USAGE}")
        seen[option] = value
    return ReviewStart(
        name=name,
        roles=role_selectors(seen["roles"]) if "roles" in seen else (),
        targets=target_selectors(seen["targets"]) if "targets" in seen else ("*",),
        subjects=subjects(seen["subjects"]) if "subjects" in seen else Subjects.BOTH,
        due=due(seen["due"]) if "due" in seen else None,
        on_timeout=verdict(seen["on-timeout"]) if "on-timeout" in seen else None,
    )
