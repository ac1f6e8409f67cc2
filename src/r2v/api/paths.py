"""The path a request is routed by, for the layers in front of the router."""

from __future__ import annotations

from starlette.types import Scope


def route_path(scope: Scope) -> str:
    """The path the router matches: the request's, without the prefix the app is mounted
    under (`root_path`), cut only at a segment boundary as Starlette's router cuts it."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
        return path[len(root) :]
    return path
