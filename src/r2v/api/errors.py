"""Domain errors become HTTP responses here, and only here: one table, one envelope a door.

Every response error has the form `{"error": {"code", "message", "type", "param"}}`. On the
`/v1` door (and OpenAI's `/v1/videos`, whose envelope it already is) the code is r2v's own;
on Ark's door (`/api/v3/`) it is Ark's (`InvalidParameter`, `NotFound`…), which the Ark SDKs
read. An exception nobody expected becomes a bare 500 carrying the request id; the traceback
goes to the log, never into the body.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from r2v import errors
from r2v.api.paths import route_path
from r2v.protocol import FAST_MODEL, STANDARD_MODEL, ErrorBody, ErrorDetail

log = logging.getLogger("r2v.api")

# domain error → (HTTP status, error type), class by class: an error missing here (a new
# one, or one that should never reach a request) is a logged 500, not a guess
STATUS_OF: dict[type[errors.R2VError], tuple[int, str]] = {
    errors.InvalidRequest: (400, "invalid_request_error"),
    errors.InvalidTaskId: (400, "invalid_request_error"),
    errors.AuthenticationFailed: (401, "authentication_error"),
    errors.LinkInvalid: (403, "permission_error"),
    errors.NotFound: (404, "not_found_error"),
    errors.Conflict: (409, "conflict_error"),
    errors.LinkExpired: (410, "invalid_request_error"),
    errors.PayloadTooLarge: (413, "request_too_large_error"),
    errors.RateLimited: (429, "rate_limit_error"),
    errors.ServiceUnavailable: (503, "service_unavailable_error"),
}

TYPE_OF_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "request_too_large_error",
    429: "rate_limit_error",
    503: "service_unavailable_error",
}

Door = Literal["r2v", "ark", "openai"]
ARK_PREFIX = "/api/v3/"
OPENAI_PATH = "/v1/videos"


def door_of(path: str) -> Door:
    """Which API a path belongs to, and so which error envelope it answers with."""
    if path.startswith(ARK_PREFIX):
        return "ark"
    if path == OPENAI_PATH or (
        path.startswith(OPENAI_PATH + "/") and path != OPENAI_PATH + "/generations"
    ):
        return "openai"
    return "r2v"


# Ark's code and type for each status (an Ark-style code the route raised is kept as is)
ARK_ERRORS = {
    400: ("InvalidParameter", "BadRequest"),
    401: ("AuthenticationError", "Unauthorized"),
    403: ("AccessDenied", "Forbidden"),
    404: ("NotFound", "NotFound"),
    405: ("InvalidParameter", "MethodNotAllowed"),
    409: ("Conflict", "Conflict"),
    410: ("NotFound", "Gone"),
    413: ("InvalidParameter", "BadRequest"),
    429: ("RateLimitExceeded", "TooManyRequests"),
    500: ("InternalServiceError", "InternalServerError"),
    503: ("ServiceUnavailable", "ServiceUnavailable"),
}

# What to send instead, for fields whose type or range was wrong.
FIELD_HINTS = {
    "model": f"use {STANDARD_MODEL!r} or {FAST_MODEL!r}",
    "duration": "send an integer from 4 to 15, or -1 (not a float or a string)",
    "seed": "send an integer from -1 to 4294967295",
    "generate_audio": "send true or false (a JSON boolean)",
    "resolution": "send '480p' or '720p'",
    "aspect_ratio": "send one of 16:9, 4:3, 1:1, 3:4, 9:16, 21:9 or adaptive",
    "prompt": "send 1-5000 characters",
}


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    error_type: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
    door: Door = "r2v",
) -> JSONResponse:
    error_type = error_type or TYPE_OF_STATUS.get(status, "invalid_request_error")
    headers = dict(headers or {})
    if door == "ark":
        ark_code, error_type = ARK_ERRORS.get(status, ARK_ERRORS[500 if status >= 500 else 400])
        if code[:1].isupper():  # already one of Ark's codes (`MissingParameter`)
            ark_code = code
        code = ark_code
    elif door == "openai" and "Retry-After" in headers:
        headers["retry-after-ms"] = str(int(headers["Retry-After"]) * 1000)
    body = ErrorBody(error=ErrorDetail(code=code, message=message, type=error_type, param=param))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers or None)


def status_of(exc: errors.R2VError) -> tuple[int, str] | None:
    """The HTTP status and error type of a domain error, or None when it has none."""
    return STATUS_OF.get(type(exc))


def validation_response(exc: RequestValidationError, door: Door) -> JSONResponse:
    """The 400 of a body or query that does not parse (Ark: `MissingParameter` when a
    required field is absent)."""
    message, param = describe_validation(exc)
    code = "invalid_parameters"
    if door == "ark" and exc.errors()[0].get("type") == "missing":
        code = "MissingParameter"
    return error_response(400, code, message, param=param, door=door)


def describe_validation(exc: RequestValidationError) -> tuple[str, str | None]:
    """A message naming the first bad field and what to send, and that field's name."""
    first: dict[str, Any] = exc.errors()[0]
    loc = [part for part in first.get("loc", ()) if part not in ("body", "query", "path", "header")]
    kind = first.get("type", "")
    if kind == "json_invalid":
        return "the body is not valid JSON: send a JSON object", None
    if not loc:
        message = str(first.get("msg", "invalid body")).removeprefix("Value error, ")
        if kind in ("model_attributes_type", "dict_type", "model_type"):
            message = "the body must be a JSON object (send Content-Type: application/json)"
        return message, None
    param = str(loc[0])
    if kind == "missing":
        return f"{param} is required", param
    message = str(first.get("msg", "is invalid")).removeprefix("Value error, ")
    where = "".join(f"[{part}]" for part in loc[1:])
    hint = FIELD_HINTS.get(param)
    text = f"{param}{where}: {message}"
    if hint and hint not in message:
        text += f"; {hint}"
    return text, param


_UNREACHABLE = (
    "connection",
    "connect to server",
    "server closed",
    "terminating",
    "the database system is",
    "database is locked",
)


def database_unreachable(exc: DBAPIError) -> bool:
    """Whether a database error means "not reachable now" (503) rather than a bug (500)."""
    if exc.connection_invalidated:
        return True
    text = str(exc.orig).lower()
    return isinstance(exc, OperationalError) and any(words in text for words in _UNREACHABLE)


def domain_response(
    exc: errors.R2VError, request_id: str = "-", door: Door = "r2v"
) -> JSONResponse:
    """The envelope of a domain error, with `Retry-After` when rate limited (a logged 500,
    like any unexpected error, when the table does not name it)."""
    mapped = status_of(exc)
    if mapped is None:
        return unexpected_response(exc, request_id, door)
    status, error_type = mapped
    headers = None
    if isinstance(exc, errors.RateLimited):
        headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
    code = getattr(exc, "code", "error")
    param = getattr(exc, "param", None)
    return error_response(
        status, code, exc.message, error_type=error_type, param=param, headers=headers, door=door
    )


def unexpected_response(exc: Exception, request_id: str, door: Door = "r2v") -> JSONResponse:
    """A 503 while the database is unreachable; else a bare 500 naming the request id."""
    if isinstance(exc, DBAPIError) and database_unreachable(exc):
        log.warning("request %s: the database is unreachable: %s", request_id, exc.orig)
        return error_response(
            503,
            "database_unavailable",
            f"the database is unavailable; retry shortly (request id {request_id})",
            headers={"Retry-After": "2", "X-Request-ID": request_id},
            door=door,
        )
    log.error("request %s failed", request_id, exc_info=exc)
    return error_response(
        500,
        "internal_error",
        f"the server failed to handle this request (request id {request_id})",
        error_type="internal_server_error",
        headers={"X-Request-ID": request_id},
        door=door,
    )


def exception_response(exc: Exception, request_id: str, door: Door = "r2v") -> JSONResponse:
    """The envelope for any exception a handler raised (the one mapping of both paths)."""
    if isinstance(exc, errors.R2VError):
        return domain_response(exc, request_id, door)
    return unexpected_response(exc, request_id, door)


def _request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", "-"))


def _door(request: Request) -> Door:
    return door_of(route_path(request.scope))


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that turn every exception into the error envelope."""

    @app.exception_handler(errors.R2VError)
    async def _domain(request: Request, exc: errors.R2VError) -> JSONResponse:
        return domain_response(exc, _request_id(request), _door(request))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_response(exc, _door(request))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}.get(
            exc.status_code, "http_error"
        )
        headers = dict(exc.headers) if exc.headers else None
        return error_response(
            exc.status_code, code, str(exc.detail), headers=headers, door=_door(request)
        )

    # registered apart from Exception: Starlette sends that one's answer and then re-raises
    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        return _stored_or_not(
            request, unexpected_response(exc, _request_id(request), _door(request))
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return _stored_or_not(
            request, unexpected_response(exc, _request_id(request), _door(request))
        )


def _stored_or_not(request: Request, response: JSONResponse) -> JSONResponse:
    # A create that stored its task and then failed must not be sent again: the clients
    # built on Stainless (Ark's, OpenAI's) resend a 5xx unless told not to.
    if request.scope.get("r2v.stored"):
        response.headers["x-should-retry"] = "false"
    return response
