"""Microsoft Graph as the entra personality serves it: client-credentials tokens, group memberships, users.

- Token: `grant_type=client_credentials` at the tenant token endpoint with `scope=<graph>/.default`
  (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow); a wrong secret is
  401 invalid_client "AADSTS7000215: Invalid client secret provided." (reference-error-codes).
- `GET /v1.0/users/{id}/transitiveMemberOf` (https://learn.microsoft.com/graph/api/user-list-transitivememberof):
  directoryObjects with `@odata.type`, paged by `@odata.nextLink` ($top 1–999, default 100); needs the application
  permission GroupMember.Read.All or Directory.Read.All, else 403 Authorization_RequestDenied "Insufficient
  privileges to complete the operation."; an unknown user is 404 Request_ResourceNotFound
  (https://learn.microsoft.com/graph/errors).
- `GET /v1.0/users/{id}` (`accountEnabled`) and `GET /v1.0/groups`.
"""

from __future__ import annotations

import base64
import secrets
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from accessbot_emulators.idp.accounts import Account, Client
from accessbot_emulators.idp.claims import entra_group_id

if TYPE_CHECKING:
    from accessbot_emulators.idp.provider import DevIdP

READ_PERMISSIONS = frozenset({"GroupMember.Read.All", "Directory.Read.All", "Group.Read.All"})
DIRECTORY_ROLE = {"@odata.type": "#microsoft.graph.directoryRole", "id": "role-0001", "displayName": "Global Reader"}


def _graph_error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


class GraphApi:
    """The Graph routes and the client-credentials grant of one DevIdP."""

    def __init__(self, idp: DevIdP) -> None:
        self._idp = idp

    def routes(self) -> list[Route]:
        """Graph's routes, at the server root (Graph is its own host in reality: `oidc.graph.url`)."""
        return [
            Route("/v1.0/users/{user}/transitiveMemberOf", self._member_of, methods=["GET"]),
            Route("/v1.0/users/{user}", self._user, methods=["GET"]),
            Route("/v1.0/groups", self._groups, methods=["GET"]),
        ]

    # --- the client-credentials grant at the token endpoint --------------------------------------------

    def _client(self, request_headers: Any, form: dict[str, str]) -> Client | None:
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        auth = request_headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            try:
                client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                return None
        client = self._idp.store.clients.get(unquote(client_id))
        return client if client is not None and client.check_client_secret(unquote(secret)) else None

    def client_credentials(self, headers: Any, form: dict[str, str]) -> Response:
        """Issue an app token for Graph, or refuse as Entra does."""
        client = self._client(headers, form)
        if client is None:
            return JSONResponse(
                {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided.",
                    "error_codes": [7000215],
                },
                status_code=401,
            )
        if not form.get("scope", "").endswith("/.default"):
            return JSONResponse(
                {"error": "invalid_scope", "error_description": "AADSTS1002012: The provided value for scope is not "
                 "valid. Client credential flows must have a scope value with /.default suffixed."},
                status_code=400,
            )  # fmt: skip
        token = "graph-" + secrets.token_urlsafe(24)
        with self._idp.lock:
            self._idp.store.app_tokens[token] = (client.client_id, time.time() + 3599)
        return JSONResponse({"token_type": "Bearer", "expires_in": 3599, "access_token": token})

    # --- Graph -----------------------------------------------------------------------------------------

    def _authorized(self, request: Request) -> Client | Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        with self._idp.lock:
            entry = self._idp.store.app_tokens.get(token.strip()) if scheme.lower() == "bearer" else None
            client = self._idp.store.clients.get(entry[0]) if entry and entry[1] > time.time() else None
        if client is None:
            return _graph_error(401, "InvalidAuthenticationToken", "Access token validation failure.")
        if not READ_PERMISSIONS & set(client.graph_permissions):
            return _graph_error(
                403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
            )
        return client

    def _account(self, key: str) -> Account | None:
        with self._idp.lock:
            for account in self._idp.store.accounts.values():
                if not account.deleted and key in (account.object_id, account.email):
                    return account
        return None

    async def _member_of(self, request: Request) -> Response:
        client = self._authorized(request)
        if isinstance(client, Response):
            return client
        account = self._account(request.path_params["user"])
        if account is None:
            return _graph_error(
                404, "Request_ResourceNotFound", f"Resource '{request.path_params['user']}' does not exist."
            )
        items: list[dict[str, Any]] = [DIRECTORY_ROLE]
        items += [
            {"@odata.type": "#microsoft.graph.group", "id": entra_group_id(g), "displayName": g} for g in account.groups
        ]
        try:
            top = max(1, min(999, int(request.query_params.get("$top", "100"))))
            skip = max(0, int(request.query_params.get("$skiptoken", "0")))
        except ValueError:
            return _graph_error(400, "BadRequest", "Invalid query parameter.")
        page = items[skip : skip + top]
        body: dict[str, Any] = {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#directoryObjects"}
        body["value"] = page
        if skip + top < len(items):
            base = str(request.url.replace(query=""))
            body["@odata.nextLink"] = f"{base}?$select=id,displayName&$top={top}&$skiptoken={skip + top}"
        return JSONResponse(body)

    async def _user(self, request: Request) -> Response:
        client = self._authorized(request)
        if isinstance(client, Response):
            return client
        account = self._account(request.path_params["user"])
        if account is None:
            return _graph_error(404, "Request_ResourceNotFound", "Resource does not exist.")
        return JSONResponse(
            {"id": account.object_id, "accountEnabled": not account.disabled, "userPrincipalName": account.email}
        )

    async def _groups(self, request: Request) -> Response:
        client = self._authorized(request)
        if isinstance(client, Response):
            return client
        with self._idp.lock:
            names = sorted({g for a in self._idp.store.accounts.values() for g in a.groups})
        return JSONResponse({"value": [{"id": entra_group_id(n), "displayName": n} for n in names[:1]]})
