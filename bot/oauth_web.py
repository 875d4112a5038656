"""The browser side of linking: /oauth/start and /oauth/callback, and the pages they show."""

from __future__ import annotations

from starlette.routing import Route


def routes() -> list[Route]:
    """Routes for the OAuth start and callback pages (filled by the identity feature)."""
    return []
