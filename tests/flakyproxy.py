"""An HTTP proxy on loopback that forwards to a server and can drop the answer.

`drop_next` answers of a path are swallowed: the request reaches the server (and does its
work), then the client's connection is cut before any byte of the response, exactly as a
network failure after the server acted would look. `truncate_next` answers are cut halfway
through the body instead, and `fail_next` answers are replaced by a 502 from the proxy (a
gateway that lost the server's answer after the server acted).
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx


class _Handler(BaseHTTPRequestHandler):
    server: FlakyProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host",)}
        upstream = httpx.request(
            self.command, self.server.upstream + self.path, headers=headers, content=body
        )
        self.server.forwarded.append((self.command, self.path))
        self.server.ranges.append(self.headers.get("Range"))
        route = (self.command, self.path.split("?")[0])
        drop = self.server.take(self.server.drop_next, route)
        truncate = self.server.take(self.server.truncate_next, route)
        fail = self.server.take(self.server.fail_next, route)
        if drop:
            self.close_connection = True
            self.connection.close()
            return
        if fail:
            self._bad_gateway()
            return
        self.send_response(upstream.status_code)
        for key, value in upstream.headers.items():
            if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(upstream.content)))
        self.end_headers()
        body_out = upstream.content[: len(upstream.content) // 2] if truncate else upstream.content
        self.wfile.write(body_out)
        if truncate:
            self.wfile.flush()
            self.close_connection = True
            self.connection.close()

    def _bad_gateway(self) -> None:
        body = b'{"error": {"code": "bad_gateway", "message": "the proxy lost the answer"}}'
        self.send_response(502)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = _forward  # noqa: N815


class FlakyProxy(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.upstream = upstream
        self.drop_next: dict[tuple[str, str], int] = {}
        self.truncate_next: dict[tuple[str, str], int] = {}
        self.fail_next: dict[tuple[str, str], int] = {}
        self.forwarded: list[tuple[str, str]] = []
        self.ranges: list[str | None] = []
        self.lock = threading.Lock()
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def take(self, counts: dict[tuple[str, str], int], route: tuple[str, str]) -> bool:
        """Whether to misbehave on this request, counting it down."""
        with self.lock:
            left = counts.get(route, 0)
            if left:
                counts[route] = left - 1
            return left > 0

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # cut connections are the point
