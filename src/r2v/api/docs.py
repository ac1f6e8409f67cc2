"""The API's documentation: the OpenAPI document's finish, and the reference page at `/docs`.

The page is Swagger UI over `/openapi.json`. Its script and style ship in the
`fastapi-offline` package (a dependency that exists to carry them), so a server with no
internet serves the page whole; FastAPI's own `/docs` would load them from a CDN. The page
runs no inline script (its one script of ours is `docs/docs.js`), so it carries a strict
Content-Security-Policy.

The document says what each route can answer and nothing more: `answers(...)` declares a
route's error statuses, in the envelope and codes of its door, and `finish_schema` removes
FastAPI's 422 (r2v answers a body that does not parse with a 400 `invalid_parameters`).
"""

from __future__ import annotations

import gzip
import hashlib
import html
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Header, Request, Response

from r2v.api.errors import ARK_ERRORS, TYPE_OF_STATUS, Door
from r2v.errors import NotFound
from r2v.protocol import ErrorBody

_ERRORS: dict[int, tuple[str, str, str, str | None]] = {
    # status: (what it means, an example's code, its message, its param)
    400: (
        "The request is invalid: `error.param` names the field, parameter or header, and "
        "`error.message` says what to send.",
        "invalid_parameters",
        "duration: duration must be an integer from 4 to 15, or -1; got 20",
        "duration",
    ),
    401: (
        "No valid API key: send `Authorization: Bearer <key>`.",
        "invalid_api_key",
        "this API key is not valid: it is unknown or revoked",
        None,
    ),
    403: (
        "The link's signature is missing or wrong: use the link as the task gave it.",
        "invalid_signature",
        "this link's signature does not match: use the link as given",
        None,
    ),
    404: (
        "No such task or file for this API key (another key's ids answer 404 too).",
        "task_not_found",
        "no task task-unified-1757165031-uyujaw3d for this API key",
        None,
    ),
    409: (
        "The request does not fit the task's state: it has already ended.",
        "task_not_cancellable",
        "task task-unified-1757165031-uyujaw3d is already completed: only pending or "
        "processing tasks can be cancelled",
        None,
    ),
    410: (
        "Gone: the link has expired, or the video was deleted after the retention period.",
        "result_deleted",
        "this video was deleted after the retention period: create the task again",
        None,
    ),
    413: (
        "The body, or the key's stored uploads, are over their cap: send large references by URL.",
        "request_too_large",
        "the body is larger than 1,048,576 bytes: send large references by URL",
        None,
    ),
    429: (
        "A limit of the API key (tasks a minute, unfinished tasks, uploads, open event "
        "streams): retry after `Retry-After` seconds.",
        "rate_limited",
        "this API key may make 60 tasks a minute: slow down and retry after the time in "
        "Retry-After",
        None,
    ),
    503: (
        "The database or the storage does not answer: retry shortly.",
        "database_unavailable",
        "the database is unavailable; retry shortly (request id 5f3a9c2e81d04b67)",
        None,
    ),
}

_REUSED_KEY = (
    "This `Idempotency-Key` came with another body in the last 24 hours.",
    "idempotency_key_reused",
    "this Idempotency-Key was used with a different body in the last 24 hours: use a new key "
    "for a new request",
    None,
)
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer"},
    }
}


def answers(
    *statuses: int, door: Door = "r2v", ok: dict[str, Any] | None = None, creates: bool = False
) -> dict[int | str, dict[str, Any]]:
    """The `responses` of a route that can answer these error statuses (and 200, told more
    of by `ok`): each in the error envelope, with an example in the codes of `door`. On a
    route that `creates` a task, a 409 is an `Idempotency-Key` reused with another body."""
    found: dict[int | str, dict[str, Any]] = {200: ok} if ok else {}
    for status in statuses:
        meaning, code, message, param = (
            _REUSED_KEY if creates and status == 409 else _ERRORS[status]
        )
        error_type = TYPE_OF_STATUS.get(status, "invalid_request_error")
        if door == "ark":
            code, error_type = ARK_ERRORS[status]
        example = {"error": {"code": code, "message": message, "type": error_type, "param": param}}
        found[status] = {
            "model": ErrorBody,
            "description": meaning,
            "content": {"application/json": {"example": example}},
        }
        if status == 429:
            found[status]["headers"] = _RETRY_AFTER
    return found


def file_answers(*media_types: str) -> dict[int | str, dict[str, Any]]:
    """The `responses` of a route that serves a stored file as `routes.serve_blob` does:
    the bytes (with HTTP Range), or a redirect to object storage."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    return {
        200: {"description": "The file.", "content": dict.fromkeys(media_types, binary)},
        206: {"description": "The part of the file the `Range` header asked for."},
        307: {"description": "On object storage: a short-lived presigned URL in `Location`."},
        416: {"description": "The `Range` lies outside the file."},
    }


UPLOAD_TYPES = (
    "image/jpeg", "image/png", "image/webp", "video/mp4", "video/quicktime", "audio/mpeg",
    "audio/wav",
)  # fmt: skip
"""What an uploaded reference may be."""

POLL_HINT: dict[str, Any] = {
    "headers": {
        "Retry-After": {
            "description": "While the task is pending or processing: seconds until it is "
            "worth polling again.",
            "schema": {"type": "integer"},
        },
        "openai-poll-after-ms": {
            "description": "The same hint in milliseconds.",
            "schema": {"type": "integer"},
        },
    }
}
"""What a 200 with a task still running carries (`answers(..., ok=POLL_HINT)`)."""

CREATE_EXAMPLES: dict[str, Any] = {
    "references": {
        "summary": "An image, a video and a sound as references",
        "value": {
            "model": "seedance-2.0-reference-to-video",
            "prompt": "@Image1 walks along the beach at sunset, dancing like @Video1, to @Audio1",
            "resolution": "720p",
            "aspect_ratio": "16:9",
            "duration": 5,
            "image_urls": ["https://example.com/refs/dancer.jpg"],
            "video_urls": ["https://example.com/refs/moves.mp4"],
            "audio_urls": ["https://example.com/refs/waves.mp3"],
        },
    },
    "fast": {
        "summary": "Two images, the fast model, a webhook (an r2v extension)",
        "value": {
            "model": "seedance-2.0-fast-reference-to-video",
            "prompt": "@Image1 hands @Image2 a cup of coffee in a busy café, handheld camera",
            "duration": 4,
            "image_urls": [
                "https://example.com/refs/barista.png",
                "https://example.com/refs/customer.webp",
            ],
            "callback_url": "https://example.com/hooks/r2v",
        },
    },
}
"""Requests for `POST /v1/videos/generations` to start from (valid ones: a test checks)."""

CREATED: dict[str, Any] = POLL_HINT | {
    "description": "The task: `pending`, or further on when `Prefer: wait=N` waited."
}
"""The 200 of a create."""

_TAGS = [
    {
        "name": "Seedance 2.0 API",
        "description": "The unified-task API of Seedance 2.0 reference-to-video, as the "
        "hosted service serves it. What r2v adds (operations, headers, fields) is marked "
        "`x-r2v-extension: true`. Every route but the signed result links needs "
        "`Authorization: Bearer <key>`; a key sees only its own tasks and files.",
    },
    {
        "name": "OpenAI door",
        "description": "OpenAI's Videos API over the same tasks and keys, for the `openai` "
        "SDK's `client.videos` unchanged.",
    },
    {
        "name": "Ark door",
        "description": "ByteDance Ark's `contents/generations/tasks` API over the same tasks "
        "and keys, for the Ark SDKs unchanged; errors carry Ark's codes.",
    },
    {"name": "Operations", "description": "Probes for orchestrators: no key needed."},
]


def finish_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """FastAPI's document, told the way r2v answers: no 422 anywhere (a body or parameter
    that does not parse is a 400, which the routes declare), and the groups described."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)
            for parameter in operation.get("parameters", []):
                # FastAPI puts a parameter's `json_schema_extra` in its schema: flag the
                # parameter itself too, where readers (and Swagger UI) look
                if parameter.get("schema", {}).get("x-r2v-extension"):
                    parameter["x-r2v-extension"] = True
    schemas = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    schema["tags"] = [dict(tag) for tag in _TAGS]
    return schema


# The page ---------------------------------------------------------------------------------

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>r2v API reference</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="docs/swagger-ui.css">
</head>
<body>
<noscript>This page needs JavaScript; the document itself is at {openapi}.</noscript>
<div id="swagger-ui" data-openapi-url="{openapi}"></div>
<script src="docs/swagger-ui-bundle.js"></script>
<script src="docs/docs.js"></script>
</body>
</html>
"""

_SCRIPT = """\
// Starts Swagger UI over this server's OpenAPI document. A file rather than an inline
// script, so that the page's Content-Security-Policy can forbid inline scripts.
"use strict";
const root = document.getElementById("swagger-ui");
window.ui = SwaggerUIBundle({
  url: new URL(root.dataset.openapiUrl, document.baseURI).href,
  domNode: root,
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  displayRequestDuration: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
"""

_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "media-src 'self' blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}

_SWAGGER_FILES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
}


@dataclass(frozen=True)
class _Asset:
    body: bytes
    gzipped: bytes
    media_type: str
    etag: str


def _asset(body: bytes, media_type: str) -> _Asset:
    etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
    return _Asset(body, gzip.compress(body, mtime=0), media_type, etag)


@cache
def _assets() -> dict[str, _Asset]:
    """The page's files, read (and compressed) once, on the first request for one."""
    swagger = resources.files("fastapi_offline").joinpath("static")
    found = {
        name: _asset(swagger.joinpath(name).read_bytes(), media_type)
        for name, media_type in _SWAGGER_FILES.items()
    }
    found["docs.js"] = _asset(_SCRIPT.encode(), "text/javascript; charset=utf-8")
    return found


def _answer(asset: _Asset, accept_encoding: str | None, if_none_match: str | None) -> Response:
    headers = _SECURITY_HEADERS | {
        "ETag": asset.etag,
        "Cache-Control": "no-cache",  # revalidated (304), so an upgrade is seen at once
        "Vary": "Accept-Encoding",
    }
    if if_none_match == asset.etag:
        return Response(status_code=304, headers=headers)
    if "gzip" in (accept_encoding or ""):
        headers["Content-Encoding"] = "gzip"
        return Response(asset.gzipped, media_type=asset.media_type, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


docs = APIRouter(include_in_schema=False)
OptionalHeader = Annotated[str | None, Header()]


@docs.api_route("/docs", methods=["GET", "HEAD"])
def page(request: Request) -> Response:
    """The API reference page."""
    openapi = html.escape(str(request.app.openapi_url).lstrip("/"), quote=True)
    return Response(
        _PAGE.replace("{openapi}", openapi),
        media_type="text/html; charset=utf-8",
        headers=_SECURITY_HEADERS | {"Cache-Control": "no-cache"},
    )


@docs.api_route("/docs/{name}", methods=["GET", "HEAD"])
def asset(
    name: str, accept_encoding: OptionalHeader = None, if_none_match: OptionalHeader = None
) -> Response:
    """One of the page's scripts or styles."""
    found = _assets().get(name)
    if found is None:
        raise NotFound(f"the API reference has no file {name[:80]!r}", code="not_found")
    return _answer(found, accept_encoding, if_none_match)


def install_docs(app: FastAPI) -> None:
    """Serve the reference page at `/docs` (over `app.openapi_url`), from this package."""
    app.include_router(docs)
