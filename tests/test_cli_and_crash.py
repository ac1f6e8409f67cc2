"""`r2v serve` and `r2v keys` as a user runs them, and a server SIGKILLed mid-render."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import wait_for
from tests.fleet import wait_healthy
from tests.mediafiles import decode_summary
from tests.refserver import RefServer

R2V = [sys.executable, "-m", "r2v.cli"]


def run_cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*R2V, *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerProcess:
    """`r2v serve` in a child process, its output collected line by line."""

    def __init__(self, data_dir: Path, refserver: RefServer) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = os.environ | {
            "R2V_FETCH_ALLOW_HOSTS": refserver.host_port,
            "R2V_LEASE_SECONDS": "3",
            "R2V_HEARTBEAT_SECONDS": "0.5",
            "R2V_REAPER_INTERVAL_SECONDS": "0.5",
            "R2V_POLL_INTERVAL_SECONDS": "0.2",
        }
        self.process = subprocess.Popen(
            [*R2V, "serve", "--port", str(self.port), "--data-dir", str(data_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._collect, daemon=True).start()
        try:
            wait_healthy(self.url, self.process)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}:\n" + "".join(self.lines)) from exc

    def _collect(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def test_keys_create_list_revoke(data_dir: Path) -> None:
    created = run_cli("keys", "create", "--name", "ci", data_dir=data_dir)
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"r2v_[A-Za-z0-9_-]{40,}", secret)
    key_id = re.search(r"(key_[0-9a-f]+)", created.stdout)
    assert key_id is not None

    listed = run_cli("keys", "list", data_dir=data_dir)
    assert listed.returncode == 0
    assert key_id.group(1) in listed.stdout and "ci" in listed.stdout
    assert secret not in listed.stdout
    assert "active" in listed.stdout
    # only the hash is stored
    assert secret.encode() not in (data_dir / "r2v.db").read_bytes()

    revoked = run_cli("keys", "revoke", key_id.group(1), data_dir=data_dir)
    assert revoked.returncode == 0
    assert "revoked" in run_cli("keys", "list", data_dir=data_dir).stdout
    again = run_cli("keys", "revoke", key_id.group(1), data_dir=data_dir)
    assert again.returncode == 1 and "no active key" in again.stderr


@pytest.fixture
def server_factory() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.stop()


@pytest.mark.slow
def test_first_start_prints_a_key_and_a_killed_server_loses_no_task(
    data_dir: Path, refserver: RefServer, server_factory: list[ServerProcess], tmp_path: Path
) -> None:
    first = ServerProcess(data_dir, refserver)
    server_factory.append(first)
    banner = "".join(first.lines)
    found = re.search(r"^\s+(r2v_\S+)\s*$", banner, re.MULTILINE)
    assert found, banner
    headers = {"Authorization": f"Bearer {found.group(1)}"}

    long_render = {
        "model": "seedance-2.0-reference-to-video",
        "prompt": "@Image1 then @Image2, slowly",
        "image_urls": [refserver.file_url("photo.jpg"), refserver.file_url("poster.png")],
        "resolution": "720p",
        "aspect_ratio": "16:9",
        "duration": 15,
        "seed": 3,
    }
    queued = {"model": "seedance-2.0-fast-reference-to-video", "prompt": "rain", "duration": 4}
    with httpx.Client(base_url=first.url, headers=headers, timeout=30) as client:
        rendering = client.post("/v1/videos/generations", json=long_render).json()["id"]
        waiting = client.post("/v1/videos/generations", json=queued).json()["id"]
        deadline = time.monotonic() + 120
        while True:
            task = client.get(f"/v1/tasks/{rendering}").json()
            if task["status"] == "processing" and task["progress"] >= 15:
                break
            assert task["status"] in ("pending", "processing"), task
            assert time.monotonic() < deadline, "the render never got going"
            time.sleep(0.1)
    progress_at_kill = task["progress"]
    first.kill()

    # a restarted server on the same data dir prints no new key and finishes both tasks
    second = ServerProcess(data_dir, refserver)
    server_factory.append(second)
    assert "r2v_" not in "".join(second.lines)
    with httpx.Client(base_url=second.url, headers=headers, timeout=30) as client:
        resumed = wait_for(client, rendering, {}, timeout=300)
        assert resumed["status"] == "completed", resumed
        assert resumed["progress"] == 100 >= progress_at_kill
        other = wait_for(client, waiting, {}, timeout=120)
        assert other["status"] == "completed", other
        video = tmp_path / "resumed.mp4"
        video.write_bytes(httpx.get(resumed["results"][0], timeout=30).content)
    summary = decode_summary(video)
    assert (summary.width, summary.height) == (1248, 704)
    assert summary.video_frames == 15 * 24
    assert not list((data_dir / "work").glob("*")), "workspaces are cleaned up"
