"""Norman's error answers (status, code, message, fieldName), the webhook's denials, and the body check raising them."""

from __future__ import annotations

import json

from starlette.responses import JSONResponse

from accessbot_emulators.rancher.schema import Obj, ResourceType

EXPIRES = "Wed 24 Feb 1982 18:42:00 GMT"
STATUS_CODES = {
    400: "BadRequest",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllow",
    409: "Conflict",
    422: "InvalidBodyContent",
    429: "TooManyRequests",
    500: "ServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


class ApiError(Exception):
    """A norman error answer (status, code, message, fieldName)."""

    def __init__(self, status: int, code: str, message: str = "", field_name: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field_name = field_name


def error_response(err: ApiError) -> JSONResponse:
    """The JSON answer norman gives for an error."""
    body: Obj = {"type": "error", "baseType": "error", "status": err.status, "code": err.code, "message": err.message}
    if err.field_name:
        body["fieldName"] = err.field_name
    return JSONResponse(body, status_code=err.status, headers={"Expires": EXPIRES})


def webhook_denial(status: int, code: str, type_spec: ResourceType, detail: str) -> ApiError:
    """The error the admission webhook gives when it denies a request on `type_spec`."""
    hook = f"rancher.cattle.io.{type_spec.plural.lower()}.management.cattle.io"
    return ApiError(status, code, f'admission webhook "{hook}" denied the request: {detail}')


def json_body(body: bytes) -> Obj:
    """A request body as a JSON object (empty → `{}`); anything else is 422 InvalidBodyContent."""
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise ApiError(422, "InvalidBodyContent", "Failed to parse body") from exc
    if not isinstance(data, dict):
        raise ApiError(422, "InvalidBodyContent", "Failed to parse body")
    return data
