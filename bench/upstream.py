"""The upstream engine: what r2v adds to an upstream's own time, and how much it keeps in flight.

    python -m bench.upstream            # 50 tasks each way, then 1000 in flight
    python -m bench.upstream --quick    # 20 tasks each way, then 500 in flight

The upstream is the Ark fake of the tests (`tests/arkfake.py`) on loopback, every task taking
a fixed 5 s there; r2v is `r2v serve --workers 1` in its own process (embedded SQLite). For
each task the added latency is r2v's `completed` (its row's finished_at) minus the moment
the upstream's task turned `succeeded`; the mirror download (the fake timed it) is shown
apart, since the target is "≤ 0.5 s plus the mirror download". Measured twice: with
R2V_PUBLIC_URL set, so Ark calls back, and without, so r2v only polls (2 s, then x1.5 up to
15 s). The baseline is the upstream's own time, measured in the same run. Last, tasks that
take 10 minutes upstream are created until the gateway follows `--in-flight` of them, and the
server's resident memory is read as they pile up: it should grow by kilobytes a task.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from r2v.settings import model_key
from tests.arkfake import FakeArk
from tests.fleet import wait_healthy
from tests.mediafiles import make_video
from tests.services import free_port

FAST = "seedance-2.0-fast-reference-to-video"
PREFIX = f"R2V_MODELS__{model_key(FAST).upper()}__"
UPSTREAM_SECONDS = 5.0


class Server:
    """`r2v serve --workers 1` sending the fast model to the fake."""

    def __init__(self, data: Path, ark: FakeArk, *, callbacks: bool) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database = data / "r2v.db"
        env = dict(os.environ) | {
            f"{PREFIX}ENGINE": "upstream",
            f"{PREFIX}UPSTREAM_API": "ark",
            f"{PREFIX}UPSTREAM_URL": ark.url,
            f"{PREFIX}UPSTREAM_API_KEY": ark.api_key,
            "R2V_FETCH_ALLOW_HOSTS": ark.host_port,
            "R2V_RATE_LIMIT_PER_MINUTE": "1000000",
            "R2V_RATE_LIMIT_BURST": "100000",
            "R2V_MAX_UNFINISHED_TASKS": "100000",
            "R2V_LOG_LEVEL": "warning",
        }
        if callbacks:
            env["R2V_PUBLIC_URL"] = self.url
        made = subprocess.run(
            [sys.executable, "-m", "r2v.cli", "keys", "create", "--data-dir", str(data)],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        self.headers = {"Authorization": f"Bearer {made.stdout.strip().splitlines()[-1]}"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "r2v.cli", "serve", "--workers", "1",
             "--port", str(self.port), "--data-dir", str(data)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_healthy(self.url, self.process)

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def create_many(server: Server, count: int, prompt: str) -> list[str]:
    def one(n: int) -> str:
        with httpx.Client(base_url=server.url, headers=server.headers, timeout=60) as client:
            answer = client.post(
                "/v1/videos/generations", json={"model": FAST, "prompt": f"{prompt} {n}"}
            )
            answer.raise_for_status()
            task_id: str = answer.json()["id"]
            return task_id

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


def wait_all(server: Server, ids: list[str], timeout: float) -> dict[str, float]:
    """Task id → r2v's finished_at, once every task has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sqlite3.connect(server.database) as conn:
            marks = ",".join("?" * len(ids))
            rows = conn.execute(
                f"SELECT id, status, finished_at FROM tasks WHERE id IN ({marks})", ids
            ).fetchall()
        done = {task_id: at for task_id, status, at in rows if status in ("completed", "failed")}
        if len(done) == len(ids):
            failed = [row for row in rows if row[1] != "completed"]
            if failed:
                raise SystemExit(f"{len(failed)} task(s) failed, e.g. {failed[0]}")
            return done
        time.sleep(0.2)
    raise SystemExit("the tasks did not finish in time")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def latency_run(workdir: Path, video: Path, count: int, *, callbacks: bool) -> dict[str, float]:
    with FakeArk(video, run_seconds=UPSTREAM_SECONDS, fetch_references=False) as ark:
        name = "callback" if callbacks else "polling"
        server = Server(workdir / name, ark, callbacks=callbacks)
        try:
            ids = create_many(server, count, "a slow tide")
            finished = wait_all(server, ids, timeout=120 + 2 * UPSTREAM_SECONDS)
        finally:
            server.stop()
        # r2v's task → the upstream task it became, and when r2v took the request
        with sqlite3.connect(server.database) as conn:
            rows = conn.execute("SELECT id, upstream_ref, created_at FROM tasks").fetchall()
        refs = {task_id: (ref, created) for task_id, ref, created in rows}
        added, mirror, end_to_end, upstream_own, gaps = [], [], [], [], []
        for task_id in ids:
            ref, created = refs[task_id]
            upstream = ark.tasks[ref]
            start, end = ark.video_downloads[upstream.id]
            added.append(finished[task_id] - upstream.succeeds_at)
            mirror.append(end - start)
            end_to_end.append(finished[task_id] - created)
            upstream_own.append(upstream.succeeds_at - upstream.created)
            # the wait between r2v's last poll before the upstream finished and its next one
            reads = ark.get_times[upstream.id]
            before = max((t for t in reads if t < upstream.succeeds_at), default=upstream.created)
            after = min(t for t in reads if t >= upstream.succeeds_at)
            gaps.append(after - before)
    return {
        "added_p50": percentile(added, 0.5),
        "added_p99": percentile(added, 0.99),
        "mirror_p50": percentile(mirror, 0.5),
        "added_minus_mirror_p50": statistics.median(
            a - m for a, m in zip(added, mirror, strict=True)
        ),
        "upstream_p50": percentile(upstream_own, 0.5),
        "end_to_end_p50": percentile(end_to_end, 0.5),
        "gap_p50": percentile(gaps, 0.5),
        "worst_added_past_gap": max(a - g for a, g in zip(added, gaps, strict=True)),
    }


def in_flight_run(workdir: Path, video: Path, target: int) -> list[tuple[int, float]]:
    """(tasks in flight, server RSS in MB) as the gateway takes on `target` long tasks."""
    with FakeArk(video, run_seconds=600.0, fetch_references=False) as ark:
        server = Server(workdir / "in-flight", ark, callbacks=False)
        try:
            samples = [(0, server.rss_mb())]
            steps = [n for n in (100, 250, 500, 750, 1000, 2000) if n <= target] or [target]
            made = 0
            for step in steps:
                create_many(server, step - made, "a very long take")
                made = step
                wait_until(lambda step=step: len(ark.tasks) >= step, timeout=120)
                time.sleep(2.0)  # let the polls of the newest settle into their rhythm
                samples.append((len(ark.tasks), server.rss_mb()))
        finally:
            server.stop()
    return samples


def wait_until(predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit("the gateway did not take on the tasks in time")
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=50, help="tasks per latency run")
    parser.add_argument("--in-flight", type=int, default=1000, help="tasks to hold at once")
    parser.add_argument("--quick", action="store_true", help="20 tasks, 500 in flight")
    args = parser.parse_args()
    count, target = (20, 500) if args.quick else (args.tasks, args.in_flight)
    workdir = Path(tempfile.mkdtemp(prefix="r2v-upstream-"))
    # a picture sliding 9 px a frame: x264 spends bits on it as on a real video
    video = make_video(workdir / "result.mp4", 1248, 704, seconds=5.0, pan_px_per_frame=9)
    size = video.stat().st_size / 1e6
    print(f"upstream: the Ark fake, {UPSTREAM_SECONDS:.0f} s a task; result {size:.1f} MB "
          "(720p, 5 s); r2v serve --workers 1, SQLite")  # fmt: skip
    print(f"{count} tasks created at once per run\n")
    print("| run | upstream's own (p50) | r2v end to end (p50) | ratio | added p50 | added p99 "
          "| mirror download p50 | added minus mirror p50 | poll gap at the end (p50) "
          "| worst: added minus that gap |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for callbacks in (True, False):
        found = latency_run(workdir, video, count, callbacks=callbacks)
        name = "with Ark's callback" if callbacks else "polling only"
        print(
            f"| {name} | {found['upstream_p50']:.2f} s | {found['end_to_end_p50']:.2f} s | "
            f"{found['end_to_end_p50'] / found['upstream_p50']:.2f}x | "
            f"{found['added_p50']:.2f} s | {found['added_p99']:.2f} s | "
            f"{found['mirror_p50'] * 1000:.0f} ms | {found['added_minus_mirror_p50']:.2f} s | "
            + (
                f"{found['gap_p50']:.2f} s | {found['worst_added_past_gap']:.2f} s |"
                if not callbacks
                else "(callback) | |"
            )
        )
    print("\nin flight in one process (tasks that take 10 minutes upstream):\n")
    print("| tasks in flight | server RSS | per task since the first 100 |")
    print("| ---: | ---: | ---: |")
    samples = in_flight_run(workdir, video, target)
    base_count, base_rss = samples[1] if len(samples) > 1 else samples[0]
    for in_flight, rss in samples:
        per_task = (
            f"{(rss - base_rss) * 1024 / (in_flight - base_count):.1f} KB"
            if in_flight > base_count
            else ""
        )
        print(f"| {in_flight} | {rss:.0f} MB | {per_task} |")


if __name__ == "__main__":
    main()
