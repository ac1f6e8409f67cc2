"""Slow clients are disconnected: headers late or dripped, a body dripped or stalled, an idle
keep-alive connection; while ordinary clients, slow apps and held-back uploads are not.

A real uvicorn on loopback runs each of r2v's two protocol classes (httptools, h11) with a
0.4 s header timeout, and raw sockets play the slow clients.
"""

from __future__ import annotations

import asyncio
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
import uvicorn

from r2v.api.connections import (
    HAS_HTTPTOOLS,
    H11WithDeadlines,
    Limits,
    http_protocol,
)
from tests.fleet import wait_healthy

TIMEOUT = 0.4
MIN_RATE = 2000  # bytes a second
LATE = 1.5  # a connection still open this long after its deadline was not closed by it


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Reads the whole body and answers its size; `?wait=S` sleeps before reading it."""
    if scope["type"] != "http":
        return
    query = dict(p.split("=") for p in scope["query_string"].decode().split("&") if p)
    await asyncio.sleep(float(query.get("wait", 0)))
    size, more = 0, True
    while more:
        message = await receive()
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    body = str(size).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-length", str(len(body)).encode()),
                (b"x-client-port", str(scope["client"][1]).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Server:
    """Uvicorn with one protocol class, on a loopback port, in a thread."""

    def __init__(self, implementation: Literal["httptools", "h11"]) -> None:
        protocol = http_protocol(
            header_timeout_seconds=TIMEOUT,
            min_body_bytes_per_second=MIN_RATE,
            implementation=implementation,
        )
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        host, port = self._sock.getsockname()
        self.address = (host, port)
        self.url = f"http://{host}:{port}"
        config = uvicorn.Config(app, http=protocol, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def __enter__(self) -> Server:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self._thread.join(20)
        self._sock.close()

    def connect(self) -> socket.socket:
        return socket.create_connection(self.address, timeout=5)


@pytest.fixture(scope="module", params=["httptools", "h11"])
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    if request.param == "httptools" and not HAS_HTTPTOOLS:
        pytest.skip("httptools is not installed")
    with Server(request.param) as running:
        yield running


def until_closed(sock: socket.socket, drip: bytes = b"", every: float = 0.1) -> tuple[bytes, float]:
    """What the server sends until it closes, and how long that took; `drip` is sent
    `every` seconds meanwhile. Fails if the server keeps the connection past `LATE`."""
    start = time.monotonic()
    got = b""
    while time.monotonic() - start < TIMEOUT + LATE:
        readable, _, _ = select.select([sock], [], [], every)
        try:
            if readable:
                chunk = sock.recv(65536)
                if not chunk:
                    return got, time.monotonic() - start
                got += chunk
            elif drip:
                sock.sendall(drip)
        except (ConnectionResetError, BrokenPipeError):
            return got, time.monotonic() - start
    raise AssertionError(f"still open after {time.monotonic() - start:.1f} s")


def read_response(sock: socket.socket) -> bytes:
    """One whole response (answers of `app` always have a content-length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def test_a_connection_that_sends_nothing_is_closed(server: Server) -> None:
    with server.connect() as sock:
        got, took = until_closed(sock)
    assert got == b""  # no request was begun: nothing to answer
    assert TIMEOUT - 0.1 < took < TIMEOUT + LATE


def test_dripped_headers_are_closed_with_a_408(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        got, took = until_closed(sock, drip=b"x")
    assert got.startswith(b"HTTP/1.1 408 ")
    assert b'"code":"request_timeout"' in got
    assert TIMEOUT - 0.1 < took < TIMEOUT + LATE


def test_a_dripped_body_is_closed(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
        got, took = until_closed(sock, drip=b"x" * 20)  # 200 bytes a second
    assert got.startswith(b"HTTP/1.1 408 ")
    assert TIMEOUT - 0.1 < took < TIMEOUT + LATE


def test_a_stalled_body_is_closed(server: Server) -> None:
    # 5000 bytes keep the average above the rate for 2.5 s: the stall is what closes it
    with server.connect() as sock:
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"x" * 5000
        )
        got, took = until_closed(sock)
    assert got.startswith(b"HTTP/1.1 408 ")
    assert TIMEOUT - 0.1 < took < TIMEOUT + 1.0


def test_an_idle_keep_alive_connection_is_closed(server: Server) -> None:
    # uvicorn's own keep-alive timeout is 5 s: this is the header timeout
    with server.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock).startswith(b"HTTP/1.1 200 ")
        got, took = until_closed(sock)
    assert got == b""
    assert TIMEOUT - 0.1 < took < TIMEOUT + LATE


def test_ordinary_clients_slow_apps_and_held_back_uploads_keep_their_connection(
    server: Server,
) -> None:
    def slow_but_fast_enough() -> Iterator[bytes]:
        for _ in range(8):  # 0.8 s at twice the minimum rate, well past the grace
            time.sleep(0.1)
            yield b"x" * (MIN_RATE // 5)

    with httpx.Client(base_url=server.url, timeout=10) as client:
        answers = [client.get("/") for _ in range(3)]
        time.sleep(TIMEOUT / 2)
        answers.append(client.get("/"))
        # the app taking longer than the header timeout is not the client's doing
        answers.append(client.get("/", params={"wait": TIMEOUT * 1.5}))
        answers.append(client.post("/echo", content=b"x" * 2_000_000))
        # nor is the client held back by flow control while the app does not read
        answers.append(client.post("/echo", params={"wait": TIMEOUT * 1.5}, content=b"x" * 500_000))
        answers.append(client.post("/echo", content=slow_but_fast_enough()))
    assert [a.status_code for a in answers] == [200] * len(answers)
    assert [a.text for a in answers[-3:]] == ["2000000", "500000", str(8 * (MIN_RATE // 5))]
    assert len({a.headers["x-client-port"] for a in answers}) == 1  # one connection


def test_a_100_continue_waits_for_the_app(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(
            b"POST /echo?wait=%.1f HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n"
            b"Expect: 100-continue\r\n\r\n" % (TIMEOUT * 1.5)
        )
        assert sock.recv(65536).startswith(b"HTTP/1.1 100 ")
        sock.sendall(b"x" * 10)
        answer = read_response(sock)
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"\r\n\r\n10")


def test_many_idle_connections_are_all_closed(server: Server) -> None:
    socks = [server.connect() for _ in range(200)]
    try:
        time.sleep(TIMEOUT / 2)
        assert len(server.server.server_state.connections) == 200
        deadline = time.monotonic() + TIMEOUT + LATE
        open_ = set(socks)
        while open_ and time.monotonic() < deadline:
            readable, _, _ = select.select(list(open_), [], [], 0.1)
            for sock in readable:
                assert sock.recv(1) == b""
                open_.discard(sock)
        assert not open_, f"{len(open_)} of 200 still open"
        time.sleep(0.1)
        assert not server.server.server_state.connections
    finally:
        for sock in socks:
            sock.close()


def test_the_protocol_class_follows_uvicorns_auto() -> None:
    chosen = http_protocol(header_timeout_seconds=3.0, min_body_bytes_per_second=100)
    if HAS_HTTPTOOLS:
        from r2v.api.connections import HttpToolsWithDeadlines

        assert issubclass(chosen, HttpToolsWithDeadlines)
    else:
        assert issubclass(chosen, H11WithDeadlines)
    assert chosen.limits == Limits(3.0, 100)


def test_r2v_serve_closes_slow_clients(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = os.environ | {"R2V_HEADER_TIMEOUT_SECONDS": str(TIMEOUT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "r2v.cli", "serve", "--port", str(port), "--workers", "0"]
        + ["--data-dir", str(tmp_path / "data")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        wait_healthy(f"http://127.0.0.1:{port}", process)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            got, took = until_closed(sock, drip=b"x")
        assert got.startswith(b"HTTP/1.1 408 ")
        assert took < TIMEOUT + LATE
    finally:
        process.terminate()
        process.wait(20)
