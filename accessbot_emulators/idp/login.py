"""The browser side of a dev-IdP login, for tests and the demo: open the form, submit it, return the redirect."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlencode, urljoin

import httpx


class LoginFailedError(Exception):
    """The dev IdP's login form did not redirect (wrong credentials, disabled account, bad request)."""


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.hidden: list[tuple[str, str]] = []
        self.error: str | None = None
        self._in_error = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Note the form's action, its hidden fields and where the error text starts."""
        a = dict(attrs)
        if tag == "form" and self.action is None:
            self.action = a.get("action") or ""
        elif tag == "input" and a.get("type") == "hidden" and a.get("name"):
            self.hidden.append((a["name"] or "", a.get("value") or ""))
        elif a.get("id") == "error":
            self._in_error = True

    def handle_data(self, data: str) -> None:
        """Collect the error text."""
        if self._in_error:
            self.error = (self.error or "") + data

    def handle_endtag(self, tag: str) -> None:
        """The error text ends with its element."""
        self._in_error = False


async def complete_login(
    client: httpx.AsyncClient, authorize_url: str, username: str, password: str, *, deny: bool = False
) -> str:
    """Open the login form, submit the credentials (or Deny), and return the redirect Location unfollowed."""
    page = await client.get(authorize_url, follow_redirects=False)
    if page.is_redirect:
        return page.headers["location"]
    parser = _FormParser()
    parser.feed(page.text)
    if page.status_code != 200 or parser.action is None:
        raise LoginFailedError(f"authorization request refused ({page.status_code}): {parser.error or ''}".strip())
    fields = [*parser.hidden, ("username", username), ("password", password), ("action", "deny" if deny else "login")]
    result = await client.post(
        urljoin(str(page.url), parser.action),
        content=urlencode(fields),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )
    if not result.is_redirect:
        failed = _FormParser()
        failed.feed(result.text)
        raise LoginFailedError(f"login refused ({result.status_code}): {failed.error or ''}".strip())
    return result.headers["location"]
