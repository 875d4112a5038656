"""The dev OpenID provider (authlib server side, joserfc signing) for tests and `accessbot demo`.

Built on authlib's server classes: an ``AuthorizationServer`` with a small Starlette integration, the
``AuthorizationCodeGrant`` with PKCE (S256 only, always required) and the ``OpenIDCode`` extension, a
``RefreshTokenGrant`` with rotation and reuse detection, and the RFC 7009 ``RevocationEndpoint``. ID tokens are
signed with joserfc (RS256), never with the deprecated ``authlib.jose``. Everything lives in memory.

Test/demo controls live under ``/_admin/`` and need the ``X-Admin-Token`` header (see :class:`DevIdP`).
"""

from accessbot_emulators.idp.accounts import SUPPORTED_SCOPES, Account, AccountsFile, Client, load_accounts
from accessbot_emulators.idp.cli import main, serve
from accessbot_emulators.idp.login import LoginFailedError, complete_login
from accessbot_emulators.idp.provider import FAILABLE_ENDPOINTS, DevIdP, run_in_thread, running
from accessbot_emulators.idp.signing import SIGN_MODES

__all__ = [
    "FAILABLE_ENDPOINTS",
    "SIGN_MODES",
    "SUPPORTED_SCOPES",
    "Account",
    "AccountsFile",
    "Client",
    "DevIdP",
    "LoginFailedError",
    "complete_login",
    "load_accounts",
    "main",
    "run_in_thread",
    "running",
    "serve",
]
