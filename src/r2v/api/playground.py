"""The playground: a single-page app at `/` (and `/playground`) to try the API in a browser.

Its files ship inside the package (`api/playground/`): plain ES modules, no build step, no
third-party origin at run time, so a server with no internet serves it whole. The page
talks to `/v1` with the key the user pastes, as any client would; it has no privileges.

Its answers carry a strict Content-Security-Policy: scripts and styles from this origin
only (no inline script), media from here or `blob:` (local previews), connections here
only, no framing. The origin of `R2V_PUBLIC_URL`, when it differs, is this server's too:
result links point there, so it may play and be downloaded from.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Header, Response

from r2v.api.routes import Services
from r2v.api.services import ApiServices
from r2v.errors import NotFound

_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
_INDEX = "index.html"


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


@cache
def _assets() -> dict[str, Asset]:
    """Every file of the page, read once (a few dozen KB in all) on the first request."""
    found: dict[str, Asset] = {}
    for entry in resources.files("r2v.api").joinpath("playground").iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in _MEDIA_TYPES:
            body = entry.read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
            found[entry.name] = Asset(body, _MEDIA_TYPES[suffix], etag)
    return found


def _own_origins(svc: ApiServices) -> str:
    """'self', plus the public URL's origin when links are built on another one."""
    if not svc.public_url:
        return "'self'"
    parts = urlsplit(svc.public_url)
    return f"'self' {parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else "'self'"


def security_headers(svc: ApiServices) -> dict[str, str]:
    """The headers of every playground answer."""
    own = _own_origins(svc)
    policy = (
        "default-src 'none'; script-src 'self'; style-src 'self'; "
        f"img-src 'self' blob:; media-src {own} blob:; connect-src {own}; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",  # frame-ancestors, for browsers that predate it
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Opener-Policy": "same-origin",
    }


def _answer(name: str, svc: ApiServices, if_none_match: str | None) -> Response:
    asset = _assets().get(name)
    if asset is None:
        raise NotFound(f"the playground has no file {name[:80]!r}", code="not_found")
    headers = security_headers(svc) | {
        "ETag": asset.etag,
        # the page itself always revalidates, so an upgraded server is seen at once
        "Cache-Control": "no-cache",
    }
    if if_none_match == asset.etag:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


IfNoneMatch = Annotated[str | None, Header()]
playground = APIRouter(include_in_schema=False)


@playground.api_route("/", methods=["GET", "HEAD"])
@playground.api_route("/playground", methods=["GET", "HEAD"])
def page(svc: Services, if_none_match: IfNoneMatch = None) -> Response:
    """The playground's page."""
    return _answer(_INDEX, svc, if_none_match)


@playground.api_route("/playground/{name}", methods=["GET", "HEAD"])
def asset(name: str, svc: Services, if_none_match: IfNoneMatch = None) -> Response:
    """One of the page's scripts, styles or icons."""
    return _answer(name, svc, if_none_match)
