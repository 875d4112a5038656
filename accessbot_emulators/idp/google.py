"""The Google Workspace side the google personality serves: a service account with domain-wide delegation, the
Admin SDK Directory API (groups of a user, a user's state).

- Token: POST the service account's `token_uri` with `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` and
  an RS256 assertion (`iss` the account's email, `sub` the admin it acts as, `aud` the token_uri, `scope`)
  (https://developers.google.com/identity/protocols/oauth2/service-account#delegatingauthority). Scopes not
  delegated to the client: 401 unauthorized_client "Client is unauthorized to retrieve access tokens using this
  method, or client not authorized for any of the scopes requested." (the documented DWD failure).
- `GET /admin/directory/v1/groups?userKey=&pageToken=&maxResults=` (default and maximum 200;
  https://developers.google.com/admin-sdk/directory/reference/rest/v1/groups/list); an unknown user key is 404
  "Resource Not Found: userKey"; `customer=my_customer` lists the domain's groups.
- `GET /admin/directory/v1/users/{userKey}` (`suspended`, `archived`; 404 once deleted;
  https://developers.google.com/admin-sdk/directory/reference/rest/v1/users/get).
"""

from __future__ import annotations

import json
import secrets
import time
from typing import TYPE_CHECKING, Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from accessbot_emulators.idp.accounts import Account
from accessbot_emulators.idp.claims import domain_of, google_group_id, google_sub
from accessbot_emulators.idp.signing import new_key

if TYPE_CHECKING:
    from accessbot_emulators.idp.provider import DevIdP

GROUP_SCOPE = "https://www.googleapis.com/auth/admin.directory.group.readonly"
USER_SCOPE = "https://www.googleapis.com/auth/admin.directory.user.readonly"
SERVICE_ACCOUNT = "accessbot@accessbot-dev.iam.gserviceaccount.com"
TOKEN_PATH = "/google/token"


def _google_error(status: int, message: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": status, "message": message, "errors": [{"message": message, "reason": "notFound"}]}},
        status_code=status,
    )


class GoogleWorkspace:
    """The service account, its delegation, and the Directory routes of one DevIdP."""

    def __init__(self, idp: DevIdP) -> None:
        self._idp = idp
        self._key: RSAKey = new_key()
        self.delegated_scopes: set[str] = {GROUP_SCOPE, USER_SCOPE}

    def routes(self) -> list[Route]:
        """The service-account token endpoint and the Directory API, at the server root."""
        return [
            Route(TOKEN_PATH, self._token, methods=["POST"]),
            Route("/admin/directory/v1/groups", self._groups, methods=["GET"]),
            Route("/admin/directory/v1/users/{key}", self._user, methods=["GET"]),
        ]

    def service_account(self, base_url: str) -> dict[str, Any]:
        """The service account's JSON key as the Google Cloud console downloads it."""
        return {
            "type": "service_account",
            "project_id": "accessbot-dev",
            "private_key_id": str(self._key.kid),
            "private_key": self._key.as_pem(private=True).decode(),
            "client_email": SERVICE_ACCOUNT,
            "client_id": "100000000000000000001",
            "token_uri": base_url.rstrip("/") + TOKEN_PATH,
        }

    async def _token(self, request: Request) -> Response:
        async with request.form() as form:
            grant, assertion = str(form.get("grant_type", "")), str(form.get("assertion", ""))
        if grant != "urn:ietf:params:oauth:grant-type:jwt-bearer" or not assertion:
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        try:
            claims = jwt.decode(assertion, self._key, algorithms=["RS256"]).claims
        except (JoseError, ValueError, TypeError):
            return JSONResponse({"error": "invalid_grant", "error_description": "Invalid JWT Signature."}, 400)
        now = time.time()
        if claims.get("iss") != SERVICE_ACCOUNT or not str(claims.get("aud", "")).endswith(TOKEN_PATH):
            return JSONResponse({"error": "invalid_grant", "error_description": "Invalid JWT: audience."}, 400)
        if not isinstance(claims.get("exp"), int) or claims["exp"] < now or claims["exp"] > now + 3700:
            return JSONResponse({"error": "invalid_grant", "error_description": "Invalid JWT: exp."}, 400)
        scopes = set(str(claims.get("scope", "")).split())
        if not scopes or not scopes <= self.delegated_scopes:
            return JSONResponse(
                {
                    "error": "unauthorized_client",
                    "error_description": "Client is unauthorized to retrieve access tokens using this method, or "
                    "client not authorized for any of the scopes requested.",
                },
                status_code=401,
            )
        admin = self._account(str(claims.get("sub", "")))
        if admin is None or not admin.admin:
            return JSONResponse({"error": "invalid_grant", "error_description": "Invalid email or User ID"}, 400)
        token = "ya29." + secrets.token_urlsafe(32)
        with self._idp.lock:
            self._idp.store.app_tokens[token] = (json.dumps(sorted(scopes)), now + 3599)
        return JSONResponse({"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    def _scopes(self, request: Request) -> set[str] | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        with self._idp.lock:
            entry = self._idp.store.app_tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if entry is None or entry[1] < time.time() or not entry[0].startswith("["):
            return None
        return set(json.loads(entry[0]))

    def _account(self, key: str) -> Account | None:
        with self._idp.lock:
            for account in self._idp.store.accounts.values():
                if not account.deleted and key and key in (google_sub(account), account.email):
                    return account
        return None

    async def _groups(self, request: Request) -> Response:
        scopes = self._scopes(request)
        if scopes is None:
            return _google_error(401, "Login Required.")
        if GROUP_SCOPE not in scopes:
            return _google_error(403, "Not Authorized to access this resource/api")
        params = request.query_params
        if params.get("userKey"):
            account = self._account(params["userKey"])
            if account is None:
                return _google_error(404, "Resource Not Found: userKey")
            names, domain = list(account.groups), domain_of(account)
        else:
            with self._idp.lock:
                names = sorted({g for a in self._idp.store.accounts.values() for g in a.groups})
            domain = "example.com"
        try:
            size = max(1, min(200, int(params.get("maxResults", "200"))))
            start = int(params.get("pageToken", "0") or "0")
        except ValueError:
            return _google_error(400, "Invalid Input")
        page = names[start : start + size]
        body: dict[str, Any] = {
            "kind": "admin#directory#groups",
            "groups": [
                {"kind": "admin#directory#group", "id": google_group_id(n), "email": f"{n}@{domain}", "name": n}
                for n in page
            ],
        }
        if start + size < len(names):
            body["nextPageToken"] = str(start + size)
        return JSONResponse(body)

    async def _user(self, request: Request) -> Response:
        scopes = self._scopes(request)
        if scopes is None:
            return _google_error(401, "Login Required.")
        if USER_SCOPE not in scopes:
            return _google_error(403, "Not Authorized to access this resource/api")
        account = self._account(request.path_params["key"])
        if account is None:
            return _google_error(404, "Resource Not Found: userKey")
        return JSONResponse(
            {
                "kind": "admin#directory#user",
                "id": google_sub(account),
                "primaryEmail": account.email,
                "suspended": account.disabled,
                "archived": False,
            }
        )
