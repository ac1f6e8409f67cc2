"""Webhooks: a real receiving server verifies each signature with the standardwebhooks library."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from r2v.bootstrap import Runtime, build_runtime
from r2v.db.webhooks import SqlWebhookStore
from tests.conftest import LiveServer, make_settings, wait_for
from tests.refserver import RefServer

FAST = "seedance-2.0-fast-reference-to-video"


class Receiver(ThreadingHTTPServer):
    """A webhook receiver on loopback: answers with the queued statuses, then 204."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        self.delay = 0.0
        """Seconds to take before answering (a slow receiver)."""
        self.arrivals: list[float] = []
        self.arrived = threading.Event()
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def host_port(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.arrivals.append(time.monotonic())
        time.sleep(self.server.delay)
        self.server.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        status = self.server.statuses.pop(0) if self.server.statuses else 204
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()
        if status < 300:
            self.server.arrived.set()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def hooked(
    tmp_path: Path, refserver: RefServer, receiver: Receiver
) -> Iterator[tuple[Runtime, LiveServer]]:
    settings = make_settings(
        tmp_path / "data",
        refserver,
        fetch_allow_hosts=[refserver.host_port, receiver.host_port],
        webhook_retry_base_seconds=0.2,
        webhook_max_attempts=3,
    )
    runtime = build_runtime(settings)
    with LiveServer(runtime) as server:
        yield runtime, server
    runtime.close()


def test_finished_tasks_are_posted_signed_and_verifiable(
    hooked: tuple[Runtime, LiveServer], receiver: Receiver
) -> None:
    runtime, server = hooked
    created = runtime.keys.create("hooks")
    headers = {"Authorization": f"Bearer {created.secret}"}
    receiver.statuses = [500]  # the first try fails; the retry must land
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
        task = client.post(
            "/v1/videos/generations",
            json={
                "model": FAST,
                "prompt": "a lighthouse at night",
                "resolution": "480p",
                "duration": 4,
                "callback_url": f"http://{receiver.host_port}/hooks/r2v",
            },
        ).json()
        done = wait_for(client, task["id"], {})
        assert receiver.arrived.wait(30), "the webhook never arrived"

    assert len(receiver.received) == 2
    verifier = Webhook(created.webhook_secret)
    for hook_headers, body in receiver.received:
        payload: Any = verifier.verify(body, hook_headers)
        assert payload["id"] == task["id"]
        assert hook_headers["webhook-id"] == f"msg_{task['id']}"
    delivered = json.loads(receiver.received[-1][1])
    assert delivered["status"] == "completed" == done["status"]
    assert delivered["results"][0].startswith(server.url + "/results/")
    assert httpx.get(delivered["results"][0]).status_code == 200

    # a tampered body or another key's secret does not verify
    hook_headers, body = receiver.received[-1]
    with pytest.raises(Exception, match="(?i)signature"):
        verifier.verify(body.replace(b"completed", b"failed"), hook_headers)
    other = runtime.keys.create("other").webhook_secret
    with pytest.raises(Exception, match="(?i)signature"):
        Webhook(other).verify(body, hook_headers)

    store = SqlWebhookStore(runtime.database)
    (delivery,) = store.deliveries(task["id"])
    assert delivery.status == "delivered" and delivery.attempts == 2
    tries = store.attempts(delivery.id)
    assert [(t.attempt, t.status_code) for t in tries] == [(1, 500), (2, 204)]
    assert tries[0].error and "500" in tries[0].error


def test_failed_and_cancelled_tasks_are_posted_and_gives_up_in_the_end(
    hooked: tuple[Runtime, LiveServer], receiver: Receiver, refserver: RefServer
) -> None:
    runtime, server = hooked
    created = runtime.keys.create("hooks")
    headers = {"Authorization": f"Bearer {created.secret}"}
    receiver.statuses = [503, 503, 503]  # every try fails: three tries, then it gives up
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
        task = client.post(
            "/v1/videos/generations",
            json={
                "model": FAST,
                "prompt": "@Image1",
                "image_urls": [refserver.file_url("page.jpg")],
                "callback_url": f"http://{receiver.host_port}/hook",
            },
        ).json()
        assert wait_for(client, task["id"], {})["status"] == "failed"
    store = SqlWebhookStore(runtime.database)
    started = time.monotonic()
    while not (found := store.deliveries(task["id"])) or found[0].status == "pending":
        assert time.monotonic() - started < 30
        time.sleep(0.1)
    (delivery,) = found
    assert delivery.status == "failed" and delivery.attempts == 3
    assert [t.status_code for t in store.attempts(delivery.id)] == [503, 503, 503]
    bodies = [json.loads(body) for _h, body in receiver.received]
    assert all(b["error"]["code"] == "reference_invalid" for b in bodies)


@pytest.mark.parametrize(
    ("host", "why"), [(socket.gethostname(), "private"), ("no-such-host.invalid", "resolved")]
)
def test_callback_names_are_judged_when_sent(
    tmp_path: Path, refserver: RefServer, receiver: Receiver, host: str, why: str
) -> None:
    # names pass the create; at delivery they meet the SSRF rules of reference downloads:
    # this machine's own name resolves to a private address and is refused
    runtime = build_runtime(make_settings(tmp_path / "data", refserver))
    try:
        created = runtime.keys.create("hooks")
        with (
            LiveServer(runtime) as server,
            httpx.Client(
                base_url=server.url,
                headers={"Authorization": f"Bearer {created.secret}"},
                timeout=30,
            ) as client,
        ):
            task = client.post(
                "/v1/videos/generations",
                json={
                    "model": FAST,
                    "prompt": "fog",
                    "resolution": "480p",
                    "duration": 4,
                    "callback_url": f"https://{host}:{receiver.server_address[1]}/hook",
                },
            ).json()
            wait_for(client, task["id"], {})
            store = SqlWebhookStore(runtime.database)
            started = time.monotonic()
            while not (tries := store.attempts(f"msg_{task['id']}")):
                assert time.monotonic() - started < 20
                time.sleep(0.1)
        assert tries[0].status_code is None
        assert tries[0].error and why in tries[0].error
        assert receiver.received == []
    finally:
        runtime.close()
