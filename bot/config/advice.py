"""What `accessbot check-config` warns about in a valid configuration: values that work but are probably mistakes."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from bot.config import pairing
from bot.config.root import Config
from bot.core.durations import to_spec

_LOOPBACK = {"localhost", "127.0.0.1", "::1"}


def _local(url: str) -> bool:
    return (urlsplit(url).hostname or "") in _LOOPBACK


def warnings(config: Config) -> list[str]:
    """One `field.path: what looks wrong (what it means)` line per suspicious or weakening value, and the auth
    pairings that depend on set-up elsewhere; empty when nothing is (printed by check-config, logged at start)."""
    out: list[str] = list(pairing.warnings(config.oidc, config.rancher))
    channels, rules, schedule = config.slack.channels, config.policy.rules, config.schedule
    asking = [r.name for r in rules if r.approval != "none" and not r.break_glass]
    if asking and not channels.approvals:
        out.append(
            f"slack.channels.approvals: not set, but rule(s) {', '.join(asking)} need approval "
            "(approvers are only DMed; nothing is posted for the team)"
        )
    if not channels.security:
        out.append("slack.channels.security: not set (break-glass, offboarding and overdue revocations go nowhere)")
    used: dict[str, str] = {}
    for name in ("grants", "approvals", "security", "digest"):
        channel = getattr(channels, name)
        if channel and channel in used and {name, used[channel]} & {"security", "approvals"}:
            out.append(f"slack.channels.{name}: the same channel as slack.channels.{used[channel]}")
        elif channel:
            used.setdefault(channel, name)
    if config.public_url.startswith("http://") and not _local(config.public_url):
        out.append("public_url: is not https (the sign-in cookie and the OAuth code travel in clear)")
    if not config.slack.api_url.startswith("https://") and not _local(config.slack.api_url):
        out.append("slack.api_url: is not https (the bot token travels in clear)")
    if not config.rancher.verify_tls:
        out.append("rancher.verify_tls: false (anyone between the bot and Rancher can read the API key)")
    if schedule.outbox_interval > timedelta(minutes=1):
        out.append(f"schedule.outbox_interval: {to_spec(schedule.outbox_interval)} (approval requests wait that long)")
    if schedule.sweep_interval > timedelta(minutes=5):
        out.append(
            f"schedule.sweep_interval: {to_spec(schedule.sweep_interval)} (grants outlive their expiry that long)"
        )
    for i, rule in enumerate(rules):
        if rule.max_duration > timedelta(days=1):
            out.append(
                f"policy.rules[{i}].max_duration: {to_spec(rule.max_duration)} in rule {rule.name} "
                "(long for time-boxed access)"
            )
    if not config.oidc.require_email_match:
        out.append(
            "oidc.require_email_match: false (the IdP email is not compared with the Slack profile email; whoever "
            "signs in through someone's link button is asked to confirm the Slack user instead)"
        )
    if not config.security.audit_keys:
        out.append(
            "security.audit_keys: not set (the audit chain is keyed with a key derived from the token encryption "
            "keys; dropping an old token key makes older events unverifiable)"
        )
    return out
