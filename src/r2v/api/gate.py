"""What every request passes before the app reads a byte of its body.

Two checks, in front of the framework (and of the pollers' path):
- the `Host` header, when the server is told which names it answers to
  (`R2V_ALLOWED_HOSTS`): links are built from it whenever `R2V_PUBLIC_URL` is not set;
- the API key of every `/v1` (and Ark `/api/v3`) request that carries a body, so a stranger
  cannot make the server read (and spool) megabytes only to be told 401.
"""

from __future__ import annotations

from collections.abc import Collection

from starlette.types import ASGIApp, Receive, Scope, Send

from r2v.api.errors import ARK_PREFIX, door_of, exception_response
from r2v.api.paths import route_path
from r2v.api.polls import authenticate
from r2v.errors import InvalidRequest
from r2v.tasks.keys import KeyService
from r2v.tasks.links import CALLBACK_PATH

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_OPEN_PREFIXES = (CALLBACK_PATH.removesuffix("{token}"),)
"""`/v1` paths that carry a body and no API key: the upstream's callbacks (a token instead)."""
_HEALTH = frozenset({"/healthz", "/readyz"})


class Gate:
    """ASGI: refuses unknown hosts, and unauthenticated bodies, before the app sees them."""

    def __init__(self, app: ASGIApp, keys: KeyService, allowed_hosts: Collection[str]) -> None:
        self.app = app
        self._keys = keys
        self._hosts = frozenset(host.lower() for host in allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = route_path(scope)
        try:
            if self._hosts:
                self._check_host(scope)
            if (
                scope["method"] in _BODY_METHODS
                and path.startswith(("/v1/", ARK_PREFIX))
                and not path.startswith(_OPEN_PREFIXES)
            ):
                await authenticate(self._keys, scope)  # cached afterwards, for the route
        except Exception as exc:
            request_id = scope.get("state", {}).get("request_id", "-")
            door = door_of(path)
            await exception_response(exc, request_id, door)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _check_host(self, scope: Scope) -> None:
        if scope["path"] in _HEALTH:
            return
        host = next(
            (
                value.decode("latin-1").lower()
                for name, value in scope["headers"]
                if name == b"host"
            ),
            "",
        )
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if host not in self._hosts and name not in self._hosts:
            shown = host[:100].encode("ascii", "backslashreplace").decode()
            raise InvalidRequest(
                f"this server does not answer to the host {shown!r}: use one of "
                f"{', '.join(sorted(self._hosts))}",
                param="Host",
                code="host_not_allowed",
            )
