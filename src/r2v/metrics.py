"""Prometheus metrics of one process, on a registry of its own (no global state).

HTTP latency, render time, claim latency and fetched bytes are counted where they happen;
the task counts by status (and so the queue depth) are read from the database at scrape
time, so every replica reports the same, true numbers. A process without the API (a
worker) serves them on a port of its own (`serve`), with its readiness beside them.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_RENDER_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800)


class _TaskCounts(Collector):
    def __init__(self, counts: Callable[[], dict[str, int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        counts = self._counts()
        by_status = GaugeMetricFamily("r2v_tasks", "Tasks by status.", labels=["status"])
        for status in ("pending", "processing", "completed", "failed"):
            by_status.add_metric([status], counts.get(status, 0))
        yield by_status
        yield GaugeMetricFamily(
            "r2v_queue_depth", "Tasks waiting for a worker.", value=counts.get("pending", 0)
        )


class Metrics:
    """The metrics of one process."""

    def __init__(self, counts: Callable[[], dict[str, int]] | None = None) -> None:
        self.registry = CollectorRegistry()
        self.http_seconds = Histogram(
            "r2v_http_request_duration_seconds",
            "Time to answer an HTTP request.",
            ["method", "route", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.render_seconds = Histogram(
            "r2v_render_seconds",
            "Time from claim to completion of a task, by engine and model.",
            ["engine", "model"],
            buckets=_RENDER_BUCKETS,
            registry=self.registry,
        )
        self.claim_latency = Histogram(
            "r2v_claim_latency_seconds",
            "Time a task waited between creation (or requeue) and its claim.",
            buckets=_RENDER_BUCKETS,
            registry=self.registry,
        )
        self.fetch_bytes = Counter(
            "r2v_fetch_bytes", "Bytes of reference media downloaded.", registry=self.registry
        )
        self.tasks_finished = Counter(
            "r2v_tasks_finished",
            "Tasks this process finished, by outcome.",
            ["status", "code"],
            registry=self.registry,
        )
        self.upstream_tokens = Counter(
            "r2v_upstream_tokens",
            "Tokens upstreams reported using for tasks this process completed.",
            ["model", "upstream"],
            registry=self.registry,
        )
        self.upstream_requests = Counter(
            "r2v_upstream_requests",
            "Requests this process sent upstreams, by outcome (e.g. create_ok, poll_retry).",
            ["upstream", "outcome"],
            registry=self.registry,
        )
        if counts is not None:
            self.registry.register(_TaskCounts(counts))

    def render(self) -> bytes:
        """The exposition text of every metric."""
        return generate_latest(self.registry)


class _Port(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, port: int, metrics: Metrics, ready: Callable[[], None]):
        # the address family of the host (IPv4 or IPv6), as `http.server` chooses it
        family, _type, _proto, _name, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        self.address_family = family
        self.metrics = metrics
        self.ready = ready
        super().__init__((str(address[0]), port), _PortHandler)


class _PortHandler(BaseHTTPRequestHandler):
    server: _Port

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/metrics":
            self._answer(200, CONTENT_TYPE, self.server.metrics.render())
        elif path == "/readyz":
            try:
                self.server.ready()
            except Exception as exc:
                message = getattr(exc, "message", None) or str(exc)
                self._json(503, _error("service_unavailable", message))
            else:
                self._json(200, {"status": "ready"})
        else:
            self._json(404, _error("not_found", "this port serves /metrics and /readyz only"))

    def _json(self, status: int, body: dict[str, object]) -> None:
        self._answer(status, "application/json", json.dumps(body).encode())

    def _answer(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, _format: str, *_args: object) -> None:
        pass  # a scrape every few seconds is not news


def _error(code: str, message: str) -> dict[str, object]:
    # the API's error envelope
    kind = "service_unavailable_error" if code == "service_unavailable" else "not_found_error"
    return {"error": {"code": code, "message": message, "type": kind, "param": None}}


def serve(
    metrics: Metrics, host: str, port: int, ready: Callable[[], None] = lambda: None
) -> ThreadingHTTPServer:
    """Serve `GET /metrics` and `GET /readyz` (200 when `ready` returns, 503 when it
    raises) on `host:port` from a daemon thread, and 404 for any other path.

    Binds before it returns: a port already taken raises `OSError` here.
    """
    server = _Port(host, port, metrics, ready)
    threading.Thread(target=server.serve_forever, name="metrics-port", daemon=True).start()
    return server
