"""A hostile client against the real server: what it may not make the server do.

Bodies read before authentication, uploads without bounds, streams without a cap, inputs
that reached a 500, forged log lines, leaked paths, loose file modes, foreign `Host`
headers, open metrics and revocations that linger.
"""

from __future__ import annotations

import io
import logging
import os
import socket
import stat
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from r2v import logs
from r2v.bootstrap import Runtime, build_app, build_runtime
from r2v.refs.fetch import Fetcher
from r2v.settings import Settings
from tests.conftest import METRICS_AUTH, LiveServer, make_settings, wait_for
from tests.fleet import wait_healthy
from tests.mediafiles import make_image
from tests.refserver import RefServer, bomb
from tests.services import free_port

FAST = "seedance-2.0-fast-reference-to-video"
QUICK = {"model": FAST, "prompt": "a calm sea", "resolution": "480p", "duration": 4}


@pytest.fixture
def idle(tmp_path: Path, refserver: RefServer) -> Iterator[tuple[Runtime, LiveServer, str]]:
    """A live server with no workers, and a key of it."""
    runtime = build_runtime(
        make_settings(
            tmp_path / "data",
            refserver,
            workers=0,
            max_streams_per_key=2,
            upload_rate_per_minute=3,
            upload_quota_bytes=30_000,
        )
    )
    try:
        with LiveServer(runtime) as server:
            yield runtime, server, runtime.keys.create("tenant").secret
    finally:
        runtime.close()


def raw_request(url: str, head: bytes, body_part: bytes) -> tuple[bytes, float]:
    """Send `head` and the start of a body on a raw socket; the answer, and how long it took."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(head + body_part)
        answer = sock.recv(65536)
        return answer, time.monotonic() - started


def test_a_body_is_not_read_before_its_key_is_checked(
    idle: tuple[Runtime, LiveServer, str],
) -> None:
    _runtime, server, _key = idle
    head = (
        b"POST /v1/files HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        b"Content-Length: 40000000\r\n\r\n"
    )
    # 40 MB announced, 64 KB sent: the 401 comes without waiting for the rest
    answer, took = raw_request(server.url, head, b"x" * 65536)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert b"authentication_error" in answer and took < 2.0
    for path in (b"/v1/videos/generations", b"/v1/tasks/task-unified-1700000000-abcdefgh"):
        answer, _took = raw_request(
            server.url,
            b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\n"
            b"Content-Length: 500000\r\n\r\n",
            b"{",
        )
        assert answer.startswith(b"HTTP/1.1 401"), answer[:200]


def upload(client: httpx.Client, name: str, data: bytes) -> httpx.Response:
    return client.post("/v1/files", files={"file": (name, data)})


def test_uploads_are_rated_bounded_by_a_quota_and_served_as_what_they_are(
    idle: tuple[Runtime, LiveServer, str], tmp_path: Path
) -> None:
    _runtime, server, key = idle
    png = make_image(tmp_path / "p.png", 300, 200, "PNG", seed=5).read_bytes()
    big = make_image(tmp_path / "big.png", 640, 480, "PNG", seed=6).read_bytes()
    assert len(png) < 30_000 < len(png) + len(big)
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as client:
        first = upload(client, "looks-like.mp4", png)
        assert first.status_code == 200, first.text
        served = client.get(f"/v1/files/{first.json()['id']}/content")
        # its sniffed type, never what its name or the uploader claimed
        assert served.headers["content-type"] == "image/png"
        assert served.headers["x-content-type-options"] == "nosniff"
        over = upload(client, "big.png", big)
        assert over.status_code == 413
        assert over.json()["error"]["code"] == "upload_quota_exceeded"
        assert "quota" in over.json()["error"]["message"]
        assert upload(client, "again.png", png).status_code == 200  # it fits: 24 of 30 KB
        fourth = upload(client, "more.png", png)
        assert fourth.status_code == 429, fourth.text  # three a minute, all spent
        assert int(fourth.headers["retry-after"]) >= 1
        assert "uploads a minute" in fourth.json()["error"]["message"]


def test_a_key_may_hold_only_so_many_event_streams(
    idle: tuple[Runtime, LiveServer, str],
) -> None:
    _runtime, server, key = idle
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as client:
        task_id = client.post("/v1/videos/generations", json=QUICK).json()["id"]
        path = f"/v1/tasks/{task_id}/events"
        with client.stream("GET", path) as one, client.stream("GET", path) as two:
            assert one.status_code == two.status_code == 200
            third = client.get(path)
            assert third.status_code == 429
            assert "event streams" in third.json()["error"]["message"]
        # closed streams give their slots back
        deadline = time.monotonic() + 5
        while True:
            with client.stream("GET", path) as again:
                if again.status_code == 200:
                    break
            assert again.status_code == 429
            assert time.monotonic() < deadline, "the slots never came back"
            time.sleep(0.2)


@pytest.mark.parametrize(
    "expires", ["²", "①", "٣", "1" * 5000, "-1", "1e9", " 1", "0x10", "9" * 13]
)
def test_a_result_link_with_a_strange_expiry_is_a_403_not_a_500(
    api: TestClient, expires: str
) -> None:
    answer = api.get(
        f"/results/task-unified-1700000000-abcdefgh/video.mp4?expires={quote(expires)}&signature=x"
    )
    assert answer.status_code == 403, answer.text


def test_prefer_wait_with_five_thousand_digits_still_answers_the_task(
    api: TestClient, auth: dict[str, str]
) -> None:
    answer = api.post(
        "/v1/videos/generations", json=QUICK, headers=auth | {"Prefer": "wait=" + "9" * 5000}
    )
    assert answer.status_code == 200 and answer.json()["id"].startswith("task-unified-")
    assert answer.headers["preference-applied"] == "wait=60"


@pytest.mark.parametrize(
    "location",
    ["http:\\\\host\\x.jpg", "data:image/png;base64,AAAA", "http://[::1", "gopher://h/x"],
)
def test_a_malformed_redirect_fails_the_task_as_a_fetch_failure(
    api: TestClient, auth: dict[str, str], refserver: RefServer, location: str
) -> None:
    url = refserver.url("/redirect?to=" + quote(location, safe=""))
    body = QUICK | {"prompt": "@Image1", "image_urls": [url]}
    task = wait_for(api, api.post("/v1/videos/generations", json=body, headers=auth).json()["id"],
                    auth, timeout=30)  # fmt: skip
    assert task["error"]["code"] == "reference_fetch_failed", task["error"]
    assert "redirected" in task["error"]["message"]


ANY_TEXT = st.text(st.characters(codec="utf-8"), max_size=60) | st.sampled_from(
    ["", "²", "①", "9" * 5000, "\x00", "%00", "../..", "task-unified-1-abc", "-1", "1e309"]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    segment=ANY_TEXT,
    query=st.dictionaries(
        st.sampled_from(["limit", "after", "status", "expires", "signature", "variant"]),
        ANY_TEXT,
        max_size=4,
    ),
    header=st.sampled_from(
        ["Authorization", "Idempotency-Key", "Prefer", "X-Request-ID", "Content-Type"]
    ),
    value=ANY_TEXT,
)
def test_no_header_query_or_path_segment_reaches_a_500(
    fuzz_api: tuple[TestClient, dict[str, str]],
    segment: str,
    query: dict[str, str],
    header: str,
    value: str,
) -> None:
    api, auth = fuzz_api
    headers: dict[str, Any] = dict(auth)
    # as bytes, the way any client may send them (no line breaks: those end a header)
    headers[header] = value.replace("\r", "").replace("\n", "").encode()
    piece = quote(segment, safe="")
    for method, path in (
        ("GET", f"/v1/tasks/{piece}"),
        ("GET", f"/v1/tasks/{piece}/events"),
        ("DELETE", f"/v1/tasks/{piece}"),
        ("GET", "/v1/tasks"),
        ("GET", f"/v1/files/{piece}"),
        ("GET", f"/v1/files/{piece}/content"),
        ("GET", f"/results/{piece}/video.mp4"),
        ("GET", f"/files/{piece}/content"),
        ("POST", f"/v1/upstream/ark/callback/{piece}"),
        ("POST", "/v1/videos/generations"),
    ):
        body: Any = QUICK if method == "POST" and "generations" in path else None
        answer = api.request(method, path, params=query, headers=headers, json=body)
        assert answer.status_code < 500, (method, path, query, header, value, answer.text)


@pytest.fixture(scope="module")
def fuzz_api(
    tmp_path_factory: pytest.TempPathFactory, refserver: RefServer
) -> Iterator[tuple[TestClient, dict[str, str]]]:
    settings_ = make_settings(
        tmp_path_factory.mktemp("fuzz"), refserver, workers=0, rate_limit_burst=100_000,
        rate_limit_per_minute=1_000_000, max_unfinished_tasks=100_000,
    )  # fmt: skip
    runtime = build_runtime(settings_)
    with TestClient(build_app(runtime), raise_server_exceptions=False) as client:
        yield client, {"Authorization": f"Bearer {runtime.keys.create('fuzz').secret}"}
    runtime.close()


def test_log_lines_cannot_be_forged_through_client_values() -> None:
    stream = io.StringIO()
    logs.configure("info", "text")
    handler = logging.getLogger().handlers[0]
    handler.setStream(stream)  # type: ignore[attr-defined]
    forged = "http://x/a.jpg\n2026-12-01 00:00:00,000 INFO r2v: admin logged in\r\x1b[2J"
    logging.getLogger("r2v.worker").info("task %s failed: %s", "t-1", forged)
    written = stream.getvalue()
    assert written.count("\n") == 1, written
    assert "\\n2026-12-01" in written and "\\x1b" in written and "\\r" in written


def test_errors_never_show_server_paths(
    api: TestClient, auth: dict[str, str], refserver: RefServer, settings: Settings
) -> None:
    bodies = [
        QUICK | {"prompt": "@Video1", "video_urls": [refserver.file_url("page.jpg")]},
        QUICK | {"prompt": "@Image1", "image_urls": [refserver.file_url("broken.png")]},
        QUICK | {"prompt": "@Video1", "video_urls": [refserver.file_url("truncated.mp4")]},
    ]
    for body in bodies:
        task_id = api.post("/v1/videos/generations", json=body, headers=auth).json()["id"]
        task = wait_for(api, task_id, auth, timeout=30)
        message = task["error"]["message"]
        assert task["status"] == "failed", task
        for leak in (str(settings.data_dir), str(settings.data_dir.resolve()), ".ref", "/work/"):
            assert leak not in message, message


def test_the_database_and_data_dir_are_the_owner_s_alone(tmp_path: Path) -> None:
    data = tmp_path / "fresh"
    made = subprocess.run(
        [sys.executable, "-m", "r2v.cli", "keys", "create", "--data-dir", str(data)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert made.returncode == 0
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for name in ("r2v.db", "r2v.db-wal", "r2v.db-shm", "secret.key"):
        path = data / name
        if path.exists():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
    # a database made world-readable by an older version is tightened when opened
    (data / "r2v.db").chmod(0o644)
    build_runtime(Settings(data_dir=data)).close()
    assert stat.S_IMODE((data / "r2v.db").stat().st_mode) == 0o600


def test_only_allowed_host_names_are_answered(tmp_path: Path, refserver: RefServer) -> None:
    runtime = build_runtime(
        make_settings(tmp_path / "data", refserver, workers=0, allowed_hosts=["r2v.example.com"])
    )
    auth = {"Authorization": f"Bearer {runtime.keys.create('h').secret}"}
    with TestClient(build_app(runtime), base_url="http://r2v.example.com:8443") as client:
        created = client.post("/v1/videos/generations", json=QUICK, headers=auth)
        assert created.status_code == 200
        for host in ("evil.example", "r2v.example.com.evil.example", "127.0.0.1", ""):
            answer = client.get(f"/v1/tasks/{created.json()['id']}", headers=auth | {"Host": host})
            assert answer.status_code == 400, (host, answer.text)
            assert answer.json()["error"]["code"] == "host_not_allowed"
        assert client.get("/healthz", headers={"Host": "10.0.0.7"}).status_code == 200
    runtime.close()


def test_metrics_are_closed_on_the_api_port_unless_a_token_opens_them(
    tmp_path: Path, refserver: RefServer
) -> None:
    closed = build_runtime(
        make_settings(tmp_path / "closed", refserver, workers=0, metrics_token=None)
    )
    with TestClient(build_app(closed)) as client:
        assert client.get("/metrics").status_code == 404
    closed.close()
    runtime = build_runtime(make_settings(tmp_path / "open", refserver, workers=0))
    with TestClient(build_app(runtime)) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        opened = client.get("/metrics", headers=METRICS_AUTH)
        assert opened.status_code == 200 and "r2v_tasks" in opened.text
    runtime.close()


def test_r2v_serve_serves_metrics_on_their_own_port(tmp_path: Path) -> None:
    port, metrics_port = free_port(), free_port()
    env = os.environ | {"R2V_METRICS_PORT": str(metrics_port), "R2V_LOG_LEVEL": "warning"}
    env.pop("R2V_METRICS_TOKEN", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "r2v.cli", "serve", "--port", str(port), "--workers", "0",
         "--data-dir", str(tmp_path / "data")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_healthy(f"http://127.0.0.1:{port}", server)
        assert httpx.get(f"http://127.0.0.1:{port}/metrics").status_code == 404
        scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics")
        assert scraped.status_code == 200 and "r2v_tasks" in scraped.text
    finally:
        server.terminate()
        server.wait(20)


def test_a_key_revoked_by_another_process_stops_working_within_a_second(
    live_server: LiveServer, key: str, settings: Settings
) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=live_server.url, headers=headers, timeout=30) as client:
        assert client.get("/v1/tasks").status_code == 200  # the key is now trusted (cached)
        key_id = live_server.runtime.keys.authenticate(f"Bearer {key}").id
        subprocess.run(
            [sys.executable, "-m", "r2v.cli", "keys", "revoke", key_id,
             "--data-dir", str(settings.data_dir)],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        revoked = time.monotonic()
        while client.get("/v1/tasks").status_code == 200:
            assert time.monotonic() - revoked < 2.0, "the revoked key kept working"
            time.sleep(0.05)
        assert client.get("/v1/tasks").status_code == 401


def test_on_postgres_a_revocation_reaches_every_process_at_once(
    tmp_path: Path, refserver: RefServer, pg_url: str
) -> None:
    first = build_runtime(make_settings(tmp_path / "a", refserver, workers=0, database_url=pg_url))
    second = build_runtime(make_settings(tmp_path / "b", refserver, workers=0, database_url=pg_url))
    try:
        with LiveServer(first) as server:
            secret = second.keys.create("shared").secret
            headers = {"Authorization": f"Bearer {secret}"}
            assert httpx.get(f"{server.url}/v1/tasks", headers=headers).status_code == 200
            second.keys.revoke("shared")  # another process
            revoked = time.monotonic()
            while httpx.get(f"{server.url}/v1/tasks", headers=headers).status_code == 200:
                assert time.monotonic() - revoked < 1.0, "the revocation took over a second"
                time.sleep(0.02)
    finally:
        first.close()
        second.close()


def test_an_allow_list_entry_that_could_never_match_stops_start_up() -> None:
    with pytest.raises(ValueError, match=r"\[::1\]:9000"):
        Settings(fetch_allow_hosts="127.0.0.1:8000,::1:9000")
    assert Settings(fetch_allow_hosts="[::1]:9000").fetch_allow_hosts == ["[::1]:9000"]


def test_a_webhook_receiver_answering_with_a_bomb_is_never_inflated(
    refserver: RefServer,
) -> None:
    bomb("gzip, gzip", 500_000_000)  # made before anything is measured
    fetcher = Fetcher([refserver.host_port])
    tracemalloc.start()
    try:
        status = fetcher.post(
            refserver.url("/encoded?enc=gzip,%20gzip&bytes=500000000"), b"{}", {}, timeout=5.0
        )
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert status == 200  # the answer's status is all a delivery reads of it
    assert peak < 5_000_000, peak
