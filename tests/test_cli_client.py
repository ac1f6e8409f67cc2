"""`r2v generate`, `r2v tasks …`, `r2v download` and `r2v keys update`, as a user runs them."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer
from tests.mediafiles import decode_summary, make_image
from tests.refserver import RefServer

R2V = [sys.executable, "-m", "r2v.cli"]


def r2v(
    *args: str, server: LiveServer | None, key: str | None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"R2V_BASE_URL": server.url if server else "http://127.0.0.1:9"}
    env.pop("R2V_API_KEY", None)
    if key:
        env["R2V_API_KEY"] = key
    return subprocess.run(
        [*R2V, *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
    )


def test_generate_with_local_and_remote_references(
    live_server: LiveServer, key: str, refserver: RefServer, tmp_path: Path
) -> None:
    local = make_image(tmp_path / "local.jpg", 320, 240, seed=9)
    out = tmp_path / "out.mp4"
    done = r2v(
        "generate", "@Image1 then @Image2",
        "--image", str(local), "--image", refserver.file_url("square.webp"),
        "--model", "fast", "--resolution", "480p", "--ratio", "16:9", "--duration", "4",
        "--seed", "11", "--no-audio", "-o", str(out),
        server=live_server, key=key,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{out}\n", "the path alone: no progress bar, no blank line"
    summary = decode_summary(out)
    assert (summary.width, summary.height) == (864, 496)
    assert summary.video_frames == 96 and not summary.has_audio


def test_tasks_commands_and_json_output(live_server: LiveServer, key: str, tmp_path: Path) -> None:
    created = r2v(
        "generate", "rain on glass", "--model", "fast", "--resolution", "480p",
        "--duration", "4", "--json", "-o", str(tmp_path / "a.mp4"),
        server=live_server, key=key,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    task = json.loads(created.stdout)
    assert task["status"] == "completed"

    got = r2v("tasks", "get", task["id"], "--json", server=live_server, key=key)
    assert json.loads(got.stdout)["id"] == task["id"]
    readable = r2v("tasks", "get", task["id"], server=live_server, key=key)
    assert task["id"] in readable.stdout and "completed" in readable.stdout

    listed = r2v("tasks", "list", "--limit", "5", "--json", server=live_server, key=key)
    assert [t["id"] for t in json.loads(listed.stdout)["data"]] == [task["id"]]

    waited = r2v(
        "tasks", "wait", task["id"], "-o", str(tmp_path / "b.mp4"), server=live_server, key=key
    )
    assert waited.returncode == 0 and (tmp_path / "b.mp4").stat().st_size > 0
    downloaded = r2v(
        "download", task["id"], "-o", str(tmp_path / "c.mp4"), server=live_server, key=key
    )
    assert downloaded.returncode == 0
    assert (tmp_path / "c.mp4").read_bytes() == (tmp_path / "a.mp4").read_bytes()

    again = r2v("tasks", "cancel", task["id"], server=live_server, key=key)
    assert again.returncode == 3 and "already completed" in again.stderr


def test_exit_codes(live_server: LiveServer, key: str, refserver: RefServer) -> None:
    failed = r2v(
        "generate", "@Image1", "--image", refserver.file_url("page.jpg"), "--model", "fast",
        server=live_server, key=key,
    )  # fmt: skip
    assert failed.returncode == 1
    assert "reference_invalid" in failed.stderr

    unknown = r2v("tasks", "get", "task-unified-1700000000-abcdefgh", server=live_server, key=key)
    assert unknown.returncode == 3 and "404" in unknown.stderr
    wrong_key = r2v("tasks", "list", server=live_server, key="r2v_wrong")
    assert wrong_key.returncode == 3 and "401" in wrong_key.stderr
    no_key = r2v("tasks", "list", server=live_server, key=None)
    assert no_key.returncode == 2 and "R2V_API_KEY" in no_key.stderr
    no_server = r2v("tasks", "list", server=None, key="r2v_x")
    assert no_server.returncode == 4
    bad_usage = r2v("generate", "x", "--model", "turbo", server=live_server, key=key)
    assert bad_usage.returncode == 2


def default_sigint() -> None:
    """Give the child Ctrl-C back: a runner started with SIGINT ignored (as background jobs
    are) passes that on, and Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def slow_generate(
    live_server: LiveServer, key: str, refserver: RefServer, out: Path, stdin: int
) -> subprocess.Popen[str]:
    """`r2v generate` of a long render, its output piped."""
    env = os.environ | {"R2V_BASE_URL": live_server.url, "R2V_API_KEY": key}
    return subprocess.Popen(
        [*R2V, "generate", "@Image1 slowly", "--image", refserver.file_url("photo.jpg"),
         "--resolution", "720p", "--duration", "15", "-o", str(out)],
        stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        preexec_fn=default_sigint,
    )  # fmt: skip


def rendering(live_server: LiveServer, key: str) -> dict[str, Any]:
    """The newest task, once it renders."""
    headers = {"Authorization": f"Bearer {key}"}
    deadline = time.monotonic() + 60
    while True:
        page = httpx.get(f"{live_server.url}/v1/tasks", headers=headers).json()["data"]
        if page and page[0]["status"] == "processing":
            task: dict[str, Any] = page[0]
            return task
        assert time.monotonic() < deadline
        time.sleep(0.1)


@pytest.mark.slow
def test_ctrl_c_leaves_the_task_running_and_says_how_to_cancel(
    live_server: LiveServer, key: str, refserver: RefServer, tmp_path: Path
) -> None:
    process = slow_generate(live_server, key, refserver, tmp_path / "x.mp4", subprocess.DEVNULL)
    task = rendering(live_server, key)
    process.send_signal(signal.SIGINT)
    _out, err = process.communicate(timeout=30)
    assert process.returncode == 130
    assert f"r2v tasks cancel {task['id']}" in err
    cancelled = r2v("tasks", "cancel", task["id"], "--json", server=live_server, key=key)
    assert json.loads(cancelled.stdout)["error"]["code"] == "request_cancelled"


@pytest.mark.slow
def test_ctrl_c_twice_at_a_terminal_leaves_the_task_running(
    live_server: LiveServer, key: str, refserver: RefServer, tmp_path: Path
) -> None:
    terminal, stdin = pty.openpty()  # a terminal, so the first Ctrl-C asks a question
    process = slow_generate(live_server, key, refserver, tmp_path / "x.mp4", stdin)
    os.close(stdin)
    assert process.stderr is not None
    said: list[str] = []
    threading.Thread(target=lambda: said.extend(iter(lambda: process.stderr.read(1), "")),
                     daemon=True).start()  # fmt: skip
    task = rendering(live_server, key)
    while f"task {task['id']} created" not in "".join(said):
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    deadline = time.monotonic() + 30
    while f"cancel task {task['id']}?" not in "".join(said):
        assert time.monotonic() < deadline, "".join(said)
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)  # the second, at the question
    assert process.wait(30) == 130
    time.sleep(0.2)  # the reader drains the pipe
    err = "".join(said)
    os.close(terminal)
    assert err.endswith(f"task {task['id']} goes on: r2v tasks cancel {task['id']}\n"), err
    assert "Aborted" not in err and "Traceback" not in err
    cancelled = r2v("tasks", "cancel", task["id"], "--json", server=live_server, key=key)
    assert json.loads(cancelled.stdout)["error"]["code"] == "request_cancelled"


def test_keys_update_sets_limits(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    created = subprocess.run(
        [*R2V, "keys", "create", "--name", "ci", "--rate-limit", "5", *data],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "whsec_" in created.stdout
    key_id = created.stdout.split()[1]
    listed = subprocess.run([*R2V, "keys", "list", *data], capture_output=True, text=True)
    assert "5/min 120 open" in listed.stdout
    subprocess.run(
        [*R2V, "keys", "update", key_id, "--max-unfinished", "7", *data], check=True,
        capture_output=True,
    )  # fmt: skip
    listed = subprocess.run([*R2V, "keys", "list", *data], capture_output=True, text=True)
    assert "5/min 7 open" in listed.stdout
    missing = subprocess.run(
        [*R2V, "keys", "update", "key_nope", "--rate-limit", "1", *data], capture_output=True,
        text=True,
    )  # fmt: skip
    assert missing.returncode == 1
