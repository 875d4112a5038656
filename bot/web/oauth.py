"""The browser side of linking: /oauth/start, /oauth/callback and /oauth/confirm, and the plain pages they show."""

from __future__ import annotations

import html
import logging
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from bot.core.groups import label
from bot.services.held_logins import CONFIRM_TTL
from bot.services.link_outcomes import Failure, LinkRefused, LinkResult, PendingLink

if TYPE_CHECKING:
    from bot.services.linking import LinkingService

log = logging.getLogger(__name__)

COOKIE = "accessbot_login"
_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    ),
}

_AGAIN = "Go back to Slack and run the link command again to get a fresh button."
_SENTENCES: dict[Failure, tuple[str, str]] = {
    Failure.START_INVALID: ("This sign-in link cannot be used", "It is unknown, expired, or was already opened."),
    Failure.STATE_MISSING: ("Sign-in refused", "The answer from the identity provider had no state."),
    Failure.STATE_UNKNOWN: ("Sign-in refused", "This sign-in answer does not belong to any link request."),
    Failure.STATE_REPLAYED: ("Sign-in refused", "This sign-in answer was already used."),
    Failure.STATE_EXPIRED: ("Sign-in expired", "The link request expired before you finished signing in."),
    Failure.COOKIE_MISSING: (
        "Sign-in refused",
        "This browser did not start the link request (its sign-in cookie is missing). Open the button from Slack "
        "in the browser you sign in with.",
    ),
    Failure.COOKIE_MISMATCH: ("Sign-in refused", "This browser did not start the link request."),
    Failure.IDP_ERROR: ("Sign-in cancelled", "The identity provider did not sign you in"),
    Failure.CODE_MISSING: ("Sign-in refused", "The identity provider's answer had no authorization code."),
    Failure.CODE_REJECTED: ("Sign-in refused", "The identity provider did not accept the sign-in code."),
    Failure.TOKEN_REJECTED: ("Sign-in refused", "The identity provider's answer failed a security check"),
    Failure.EMAIL_MISSING: ("Link refused", "Your identity has no email address, so it cannot be matched to Slack."),
    Failure.EMAIL_UNVERIFIED: ("Link refused", "Your email address is not verified at the identity provider."),
    Failure.EMAIL_MISMATCH: (
        "Link refused",
        "The email of the identity you signed in with does not match the email of your Slack profile.",
    ),
    Failure.DOMAIN_NOT_ALLOWED: ("Link refused", "Your email domain is not allowed to link."),
    Failure.IDP_UNAVAILABLE: ("Try again later", "The identity provider is not answering right now."),
    Failure.SLACK_UNAVAILABLE: ("Try again later", "Slack is not answering right now."),
    Failure.CONFIRM_INVALID: ("This confirmation cannot be used", "It is unknown or was already answered."),
    Failure.CONFIRM_EXPIRED: ("Confirmation expired", "The link was not confirmed in time and was discarded."),
    Failure.LINK_DECLINED: ("Not linked", "Nothing was linked, and your sign-in was discarded."),
    Failure.NO_REFRESH_TOKEN: (
        "Link refused",
        "Your identity provider did not give the bot a refresh token, so it could never notice if your account were "
        "disabled there. Your administrator has to allow offline access for the bot (see docs/providers/).",
    ),
    Failure.PRINCIPAL_MISSING: (
        "Link refused",
        "Your identity provider did not send the claim Rancher knows you by (rancher.user_principal_claim)",
    ),
    Failure.OTHER_WORKSPACE: (
        "Link refused",
        "Your Slack account belongs to another workspace than the one this bot serves, so it cannot be linked. "
        "Link from your account in that workspace.",
    ),
}
_UNAVAILABLE = {Failure.IDP_UNAVAILABLE, Failure.SLACK_UNAVAILABLE}


def _page(title: str, body: str, status: int, *, ok: bool, page_id: str = "") -> HTMLResponse:
    """A small self-contained page (no scripts, no external assets; forms post only to this origin)."""
    accent = "#1a7f37" if ok else "#b42318"
    page_id = page_id or ("linked" if ok else "refused")
    text = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>
body{{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;background:#f6f7f9;color:#1f2328;margin:0}}
main{{max-width:34rem;margin:4rem auto;background:#fff;border-radius:12px;padding:2rem 2.25rem;
box-shadow:0 1px 3px rgba(0,0,0,.12);border-top:6px solid {accent}}}
h1{{font-size:1.4rem;margin:0 0 1rem}} p{{line-height:1.5}} ul{{padding-left:1.2rem}}
code{{background:#eef1f4;border-radius:4px;padding:.1rem .35rem}} .muted{{color:#59636e;font-size:.9rem}}
</style></head>
<body><main id="{page_id}"><h1>{html.escape(title)}</h1>
{body}
</main></body></html>"""
    return HTMLResponse(text, status_code=status, headers=_HEADERS)


def _confirm_page(pending: PendingLink) -> HTMLResponse:
    """Ask the signed-in person whether they meant to link this Slack user (shown when the email guard is off)."""
    slack = f"<strong>{html.escape(pending.slack_name)}</strong> (<code>{html.escape(pending.slack_user)}</code>)"
    if not pending.slack_name:
        slack = f"<code>{html.escape(pending.slack_user)}</code>"
    you = html.escape(pending.email or pending.name or "your identity")
    body = (
        f'<p id="question">Link Slack user {slack} to <strong>{you}</strong>?</p>\n'
        "<p>Whoever uses that Slack account gets your access. Link only if it is your own Slack account and you "
        "started this from Slack yourself; if someone sent you this page, do not link.</p>\n"
        '<form method="post" action="/oauth/confirm">'
        f'<input type="hidden" name="token" value="{html.escape(pending.token)}">'
        '<button type="submit" name="decision" value="decline">Do not link</button> '
        '<button type="submit" name="decision" value="link">Link my identity</button></form>\n'
        f'<p class="muted">This question expires in {CONFIRM_TTL // 60} minutes.</p>'
    )
    return _page("Confirm the link", body, 200, ok=True, page_id="confirm")


def _failure_page(failure: Failure, reason: str = "") -> HTMLResponse:
    title, sentence = _SENTENCES.get(failure, ("Sign-in refused", "The link could not be completed."))
    if reason:
        sentence += f" ({reason})."
    elif not sentence.endswith("."):
        sentence += "."
    hint = "Please try again in a minute." if failure in _UNAVAILABLE else _AGAIN
    body = f'<p id="reason">{html.escape(sentence)}</p>\n<p class="muted">{html.escape(hint)}</p>'
    return _page(title, body, 503 if failure in _UNAVAILABLE else 400, ok=False)


def _success_page(result: LinkResult) -> HTMLResponse:
    identity = result.identity
    assert identity is not None
    who = identity.name or identity.email or identity.subject
    groups = "".join(f"<li><code>{html.escape(label(g, identity.names))}</code></li>" for g in identity.groups)
    body = (
        f"<p>Your Slack account is now {'re' if result.relinked else ''}linked to "
        f"<strong>{html.escape(who)}</strong>"
        + (f" (<code>{html.escape(identity.email)}</code>)" if identity.email else "")
        + ".</p>\n"
        + (f'<p>Groups:</p><ul id="groups">{groups}</ul>' if groups else "<p>Groups: none.</p>")
        + '\n<p class="muted">You can close this tab and go back to Slack.</p>'
    )
    return _page("Linked", body, 200, ok=True)


def _service(request: Request) -> LinkingService | None:
    service: LinkingService | None = getattr(request.app.state, "linking", None)
    return service


async def start(request: Request) -> Response:
    """Bind the attempt to this browser with a cookie and send it to the identity provider."""
    service = _service(request)
    if service is None:
        return _page("Not available", "<p>Identity linking is not configured here.</p>", 503, ok=False)
    try:
        begun = await service.start(request.query_params.get("attempt", ""))
    except LinkRefused as refused:
        return _failure_page(refused.failure, refused.reason)
    except Exception:
        log.exception("link start failed")
        return _page("Something went wrong", "<p>The link could not be started. Please try again.</p>", 500, ok=False)
    response = RedirectResponse(begun.redirect_url, status_code=302, headers={"Cache-Control": "no-store"})
    response.set_cookie(
        COOKIE,
        begun.cookie,
        max_age=service.login_ttl,
        path="/oauth",
        httponly=True,
        secure=service.secure_cookies,
        samesite="lax",
    )
    return response


async def callback(request: Request) -> Response:
    """Finish the link and show the outcome; the login cookie is cleared either way."""
    service = _service(request)
    if service is None:
        return _page("Not available", "<p>Identity linking is not configured here.</p>", 503, ok=False)
    params = request.query_params
    try:
        result = await service.complete(
            state=params.get("state"),
            code=params.get("code"),
            error=params.get("error"),
            cookie=request.cookies.get(COOKIE),
            source=request.client.host if request.client else "",
        )
    except Exception:
        log.exception("link callback failed")
        response = _page(
            "Something went wrong", "<p>The link could not be completed. Please try again.</p>", 500, ok=False
        )
    else:
        if result.pending is not None:
            return _confirm_page(result.pending)  # the cookie stays: the answer must come from this browser
        response = (
            _success_page(result)
            if result.ok
            else _failure_page(result.failure or Failure.STATE_UNKNOWN, result.reason)
        )
    response.delete_cookie(COOKIE, path="/oauth", httponly=True, secure=service.secure_cookies, samesite="lax")
    return response


async def confirm(request: Request) -> Response:
    """The answer to the confirmation page (a form post from this browser, carrying its one-time token)."""
    service = _service(request)
    if service is None:
        return _page("Not available", "<p>Identity linking is not configured here.</p>", 503, ok=False)
    body = await request.body()  # at most server.max_body (BodyLimit)
    try:
        form = parse_qs(body.decode("ascii"), max_num_fields=4, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        form = {}
    decision = (form.get("decision") or [""])[0]
    try:
        result = await service.confirm(
            token=(form.get("token") or [""])[0],
            cookie=request.cookies.get(COOKIE),
            accept=decision == "link",
            source=request.client.host if request.client else "",
        )
    except Exception:
        log.exception("link confirmation failed")
        response = _page(
            "Something went wrong", "<p>The link could not be completed. Please try again.</p>", 500, ok=False
        )
    else:
        response = (
            _success_page(result)
            if result.ok
            else _failure_page(result.failure or Failure.CONFIRM_INVALID, result.reason)
        )
    response.delete_cookie(COOKIE, path="/oauth", httponly=True, secure=service.secure_cookies, samesite="lax")
    return response


def routes() -> list[Route]:
    """Routes for the OAuth start, callback and confirmation pages."""
    return [
        Route("/oauth/start", start, methods=["GET"]),
        Route("/oauth/callback", callback, methods=["GET"]),
        Route("/oauth/confirm", confirm, methods=["POST"]),
    ]
