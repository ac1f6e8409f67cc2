"""What the API needs from the layers below, handed over by the composition root."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import Scope

from r2v.errors import AuthenticationFailed, NotFound
from r2v.metrics import Metrics
from r2v.tasks.files import FileService
from r2v.tasks.keys import KeyService
from r2v.tasks.service import TaskService


@dataclass(frozen=True)
class ApiServices:
    tasks: TaskService
    keys: KeyService
    files: FileService
    public_url: str | None = None
    max_body_bytes: int = 1_000_000
    max_upload_bytes: int = 51_000_000
    sse_keepalive_seconds: float = 15.0
    metrics: Metrics | None = None
    metrics_token: str | None = None
    """Opens /metrics on the API's port to `Authorization: Bearer <token>`; None: closed."""
    allowed_hosts: frozenset[str] = frozenset()
    """The `Host` names the API answers to; empty: any."""
    max_streams_per_key: int = 10
    ark_retry_window_seconds: float = 120.0
    """Ark creates with one body within this window are one task (the SDK's resends)."""
    ready: Callable[[], None] = lambda: None
    """Raises when the database or the storage cannot be used (for /readyz)."""

    def check_metrics_access(self, authorization: str | None) -> None:
        """Raise unless /metrics may be shown on the API's port to this caller."""
        if self.metrics is None or not self.metrics_token:
            raise NotFound(
                "metrics are not served on this port: scrape R2V_METRICS_PORT, or set "
                "R2V_METRICS_TOKEN and send it as 'Authorization: Bearer <token>'",
                code="not_found",
            )
        given = (authorization or "").partition(" ")[2].strip().encode("utf-8", "replace")
        if not hmac.compare_digest(given, self.metrics_token.encode()):
            raise AuthenticationFailed("send R2V_METRICS_TOKEN as 'Authorization: Bearer <token>'")

    def base_url(self, scope: Scope) -> str:
        """Where clients reach this server: the configured public URL, else the request's."""
        if self.public_url:
            return self.public_url.rstrip("/")
        # what Starlette's request.base_url says, without building URL objects per poll
        host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), None)
        if host is None:
            server = scope.get("server") or ("localhost", 80)
            host = f"{server[0]}:{server[1]}"
        return f"{scope['scheme']}://{host}{scope.get('root_path', '')}".rstrip("/")
