"""A real HTTP server on loopback that serves reference media, and misbehaves on request.

Paths:
- `/files/<name>`: a file from the served directory, with an honest Content-Length.
- `/redirect?to=<url>`: a 302 to `to`.
- `/status/<code>`: an empty response with that status.
- `/stream?bytes=N`: N bytes with no Content-Length (the length is only known at the end).
- `/lie?bytes=N&claim=M`: Content-Length M but N bytes of body, closing after them.
- `/drip?seconds=S`: one byte every 0.2 s for S seconds.
- `/hang?seconds=S`: nothing at all for S seconds, then an empty answer.
- `/drip-headers?seconds=S`: a status line, then one header byte every 0.2 s for S seconds.
- `/encoded?enc=E&bytes=N`: N zero bytes compressed (gzip, deflate, or gzip twice for
  `gzip, gzip`), sent with `Content-Encoding: E` (a bomb when N is large).
"""

from __future__ import annotations

import functools
import gzip
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit


class _Handler(BaseHTTPRequestHandler):
    server: RefServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        pass  # keep test output quiet

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        self.server.hits.append(parts.path)
        if parts.path.startswith("/files/"):
            path = self.server.root / parts.path.removeprefix("/files/")
            if not path.is_file():
                self._empty(404)
                return
            body = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif parts.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", query["to"])
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif parts.path.startswith("/status/"):
            self._empty(int(parts.path.removeprefix("/status/")))
        elif parts.path == "/stream":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            remaining = int(query["bytes"])
            chunk = b"\xff\xd8\xff" + b"\0" * 65533
            while remaining > 0:
                piece = chunk[: min(len(chunk), remaining)]
                self.wfile.write(piece)
                remaining -= len(piece)
            self.close_connection = True
        elif parts.path == "/lie":
            self.send_response(200)
            self.send_header("Content-Length", query["claim"])
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"\xff\xd8\xff" + b"\0" * (int(query["bytes"]) - 3))
            self.close_connection = True
        elif parts.path == "/drip-headers":
            self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            stop = time.monotonic() + float(query["seconds"])
            try:
                while time.monotonic() < stop:
                    self.wfile.write(b"a")
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:
                pass  # the client gave up, as it should
            self.close_connection = True
        elif parts.path == "/encoded":
            encoding = query["enc"]
            body = bomb(encoding, int(query["bytes"]))
            self.send_response(200)
            self.send_header("Content-Encoding", encoding)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif parts.path == "/hang":
            time.sleep(float(query["seconds"]))  # headers never come in time
            self._empty(200)
        elif parts.path == "/drip":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            stop = time.monotonic() + float(query["seconds"])
            try:
                while time.monotonic() < stop:
                    self.wfile.write(b"\0")
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:
                pass  # the client gave up, as it should
            self.close_connection = True
        else:
            self._empty(404)

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)  # a receiver reads what it is sent, then answers as to a GET
        self.do_GET()

    def _empty(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


@functools.cache
def bomb(encoding: str, size: int) -> bytes:
    """`size` zero bytes, compressed layer by layer as `encoding` says (a few KB for GBs)."""
    layers = [layer.strip() for layer in encoding.split(",")]
    first = zlib.compressobj(9, zlib.DEFLATED, 15 if layers[0] == "deflate" else 31)
    zeros = b"\0" * 1_000_000
    body = b"".join(first.compress(zeros[: min(len(zeros), size - at)])
                    for at in range(0, size, len(zeros))) + first.flush()  # fmt: skip
    for layer in layers[1:]:
        body = zlib.compress(body, 9) if layer == "deflate" else gzip.compress(body, 9)
    return body


class RefServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that hang up early (as the fetcher does on purpose) are not news

    def __init__(self, root: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = root
        self.hits: list[str] = []
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def host_port(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def url(self, path: str) -> str:
        return f"http://{self.host_port}{path}"

    def file_url(self, name: str) -> str:
        return self.url(f"/files/{name}")

    def __enter__(self) -> RefServer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.shutdown()
        self.server_close()
