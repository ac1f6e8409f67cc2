"""Load on the API: pollers hammering GET /v1/tasks/{id} while tasks are being created.

    python bench/load.py                 # embedded (SQLite), 200 pollers, 10 s a run
    python bench/load.py --postgres      # the same on PostgreSQL (127.0.0.1:5432)
    python bench/load.py --quick         # shorter runs

Each run starts the server under test in its own process (`r2v serve --workers 0`, one
uvicorn process) and, beside it, a bare FastAPI endpoint answering a task object of the
same size, measured the same way in the same run: the ratio compares r2v's whole answer
(its poll path ahead of the router, auth, the database read) with a plain FastAPI route
returning a constant. Polls come from `wrk` when installed
(`apt-get install wrk`), else from a Python asyncio load generator (then the generator,
not the server, may be the limit: the report says which). A steady create rate runs
during the polling. Then 10,000 tasks are queued to show that claim and GET latency stay
flat as the queue grows.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import httpx

FAST = "seedance-2.0-fast-reference-to-video"
METRICS_TOKEN = "load-metrics-" + secrets.token_hex(8)
METRICS_AUTH = {"Authorization": f"Bearer {METRICS_TOKEN}"}
BODY = {"model": FAST, "prompt": "a calm sea", "resolution": "480p", "duration": 4}
BARE_APP = textwrap.dedent(
    """
    from fastapi import FastAPI

    app = FastAPI()
    TASK = {TASK}

    @app.get("/v1/tasks/{{task_id}}")
    async def task(task_id: str) -> dict:
        return TASK | {{"id": task_id}}
    """
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server at {url} exited")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"the server at {url} did not start")


def pin(process: subprocess.Popen[bytes], cpu: int) -> None:
    # the server under test on one core, the load generator on the other
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(process.pid, {cpu})


def start_r2v(data: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str, str]:
    """`r2v serve --workers 0` and an API key for it."""
    port = free_port()
    made = subprocess.run(
        [sys.executable, "-m", "r2v.cli", "keys", "create", "--data-dir", str(data)],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    key = made.stdout.strip().splitlines()[-1]
    server = subprocess.Popen(
        [sys.executable, "-m", "r2v.cli", "serve", "--workers", "0", "--port", str(port),
         "--data-dir", str(data)],
        env=env | {"R2V_LOG_LEVEL": "warning"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_healthy(f"{url}/healthz", server)
    pin(server, 0)
    return server, url, key


def start_bare(task: dict[str, Any], workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    (workdir / "bare_app.py").write_text(BARE_APP.format(TASK=repr(task)))
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bare_app:app", "--port", str(port),
         "--log-level", "warning"],
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_healthy(f"{url}/v1/tasks/x", server)
    pin(server, 0)
    return server, url


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def poll_with_wrk(
    base: str, ids: list[str], headers: dict[str, str], pollers: int, seconds: int
) -> dict[str, float]:
    header_args = [arg for k, v in headers.items() for arg in ("-H", f"{k}: {v}")]
    script = Path(tempfile.mkdtemp()) / "rotate.lua"
    # each request asks for the next task of the list: pollers of many different tasks
    script.write_text(
        "local ids = {" + ",".join(f'"{i}"' for i in ids) + "}\nlocal n = 0\n"
        "request = function()\n  n = n + 1\n"
        '  return wrk.format("GET", "/v1/tasks/" .. ids[(n % #ids) + 1])\nend\n'
    )
    out = subprocess.run(
        ["wrk", "-t", "1", "-c", str(pollers), "-d", f"{seconds}s", "--latency", "-s",
         str(script), *header_args, base],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", out, re.MULTILINE))
    if len(latency) < 2:
        raise SystemExit(f"wrk gave no latency distribution:\n{out}")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50": _ms(latency["50"]),
        "p99": _ms(latency["99"]),
        "errors": float(errors.group(1)) if errors else 0.0,
    }


def poll_with_python(
    base: str,
    ids: list[str],
    headers: dict[str, str],
    pollers: int,
    seconds: int,
    every: float = 0.0,
) -> dict[str, float]:
    """Pollers, each on its own task; `every` > 0 paces each poller (an open-loop rate)."""
    latencies: list[float] = []
    errors = 0

    async def poller(client: httpx.AsyncClient, task_id: str, stop: float) -> None:
        nonlocal errors
        await asyncio.sleep(every * secrets.randbelow(1000) / 1000)  # spread the starts
        while time.monotonic() < stop:
            started = time.perf_counter()
            response = await client.get(f"{base}/v1/tasks/{task_id}", headers=headers)
            latencies.append((time.perf_counter() - started) * 1000)
            errors += response.status_code != 200
            if every:
                await asyncio.sleep(max(0.0, every - (time.perf_counter() - started)))

    async def run() -> None:
        limits = httpx.Limits(max_connections=pollers, max_keepalive_connections=pollers)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            stop = time.monotonic() + seconds
            await asyncio.gather(*(poller(client, ids[n % len(ids)], stop) for n in range(pollers)))

    asyncio.run(run())
    cuts = statistics.quantiles(latencies, n=100)
    return {"rps": len(latencies) / seconds, "p50": cuts[49], "p99": cuts[98], "errors": errors}


def poll(
    base: str, ids: list[str], headers: dict[str, str], pollers: int, seconds: int
) -> dict[str, float]:
    """Closed-loop throughput: every poller asks again as soon as it has its answer."""
    if shutil.which("wrk"):
        return poll_with_wrk(base, ids, headers, pollers, seconds)
    return poll_with_python(base, ids, headers, pollers, seconds)


class Creator(threading.Thread):
    """A steady create rate beside the polling."""

    def __init__(self, url: str, key: str, per_second: float) -> None:
        super().__init__(daemon=True)
        self.url, self.key, self.interval = url, key, 1 / per_second
        self.stop = threading.Event()
        self.created = 0

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=30) as client:
            while not self.stop.wait(self.interval):
                if client.post("/v1/videos/generations", json=BODY).status_code == 200:
                    self.created += 1


def latency_buckets(url: str, route: str = "/v1/tasks/{task_id}") -> dict[float, float]:
    """The server's own latency histogram of a route: upper bound (s) -> requests so far."""
    counts: dict[float, float] = {}
    for line in httpx.get(f"{url}/metrics", headers=METRICS_AUTH).text.splitlines():
        if line.startswith("r2v_http_request_duration_seconds_bucket") and route in line:
            found = re.search(r'le="([^"]+)"', line)
            bound = (
                float("inf") if found is None or found.group(1) == "+Inf" else float(found.group(1))
            )
            counts[bound] = counts.get(bound, 0.0) + float(line.rsplit(" ", 1)[1])
    return counts


def p99_ms(before: dict[float, float], after: dict[float, float]) -> float:
    """The p99 of the requests between two histogram readings, interpolated in its bucket."""
    delta = {bound: after[bound] - before.get(bound, 0.0) for bound in after}
    bounds = sorted(delta)
    target = 0.99 * delta[bounds[-1]]
    low, below = 0.0, 0.0
    for bound in bounds:
        if delta[bound] >= target:
            if bound == float("inf"):
                return low * 1000
            share = (target - below) / max(delta[bound] - below, 1e-9)
            return (low + share * (bound - low)) * 1000
        low, below = bound, delta[bound]
    return float("nan")


def queue_flatness(env: dict[str, str], data: Path, url: str, key: str) -> list[str]:
    """Claim and GET latency with a short queue, then with 10,000 queued tasks."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    from r2v.bootstrap import build_runtime
    from r2v.settings import Settings

    settings = Settings(
        data_dir=data,
        database_url=env.get("R2V_DATABASE_URL"),
        workers=0,
        rate_limit_burst=100_000,
        rate_limit_per_minute=1_000_000,
        max_unfinished_tasks=1_000_000,
    )
    runtime = build_runtime(settings)
    headers = {"Authorization": f"Bearer {key}"}
    lines = []
    try:
        owner = runtime.keys.create("queue", max_unfinished=1_000_000, rate_per_minute=10**9)
        from r2v.protocol import CreateVideoRequest

        request = CreateVideoRequest(**BODY)
        probe = httpx.post(f"{url}/v1/videos/generations", json=BODY, headers=headers).json()
        for queued in (100, 10_000):
            while (runtime.store.counts().get("pending", 0)) < queued:
                runtime.tasks.create(owner.key, request)
            claims = []
            for _ in range(50):
                started = time.perf_counter()
                record = runtime.store.claim("bench", 30, time.time())
                claims.append((time.perf_counter() - started) * 1000)
                assert record is not None
                runtime.store.release(record.id, record.attempt, time.time())
            gets = []
            with httpx.Client(headers=headers) as client:
                for _ in range(200):
                    started = time.perf_counter()
                    client.get(f"{url}/v1/tasks/{probe['id']}")
                    gets.append((time.perf_counter() - started) * 1000)
            lines.append(
                f"| {queued:>6} queued | claim p50 {statistics.median(claims):5.2f} ms "
                f"| GET p50 {statistics.median(gets):5.2f} ms |"
            )
    finally:
        runtime.close()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", action="store_true", help="run on PostgreSQL")
    parser.add_argument("--pollers", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--creates-per-second", type=float, default=5.0)
    parser.add_argument("--every", type=float, default=1.0, help="paced poll interval, s")
    parser.add_argument("--quick", action="store_true", help="3 s runs")
    args = parser.parse_args()
    seconds = 3 if args.quick else args.seconds
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})  # this process (and wrk) on the core the servers are not
    workdir = Path(tempfile.mkdtemp(prefix="r2v-load-"))
    env = dict(os.environ) | {
        "R2V_RATE_LIMIT_PER_MINUTE": "1000000",
        "R2V_RATE_LIMIT_BURST": "100000",
        "R2V_MAX_UNFINISHED_TASKS": "1000000",
        "R2V_METRICS_TOKEN": METRICS_TOKEN,
    }
    database = "embedded SQLite"
    if args.postgres:
        import psycopg

        name = "r2v_load_" + secrets.token_hex(4)
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        env["R2V_DATABASE_URL"] = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        database = "PostgreSQL"
    server, url, key = start_r2v(workdir / "data", env)
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, headers=headers) as client:
        ids = [
            client.post("/v1/videos/generations", json=BODY).json()["id"]
            for _ in range(args.pollers)
        ]
        task = client.get(f"/v1/tasks/{ids[0]}").json()
    bare, bare_url = start_bare(task, workdir)
    generator = "wrk" if shutil.which("wrk") else "python asyncio (may limit the numbers)"
    try:
        poll(bare_url, ids, {}, args.pollers, 1)  # warm up both
        poll(url, ids, headers, args.pollers, 1)
        base = poll(bare_url, ids, {}, args.pollers, seconds)
        creator = Creator(url, key, args.creates_per_second)
        creator.start()
        ours = poll(url, ids, headers, args.pollers, seconds)
        time.sleep(2)  # let the closed-loop run's last requests drain out of the histogram
        before = latency_buckets(url)
        paced = poll_with_python(url, ids, headers, args.pollers, seconds, every=args.every)
        server_p99 = p99_ms(before, latency_buckets(url))
        paced_bare = poll_with_python(bare_url, ids, {}, args.pollers, seconds, every=args.every)
        creator.stop.set()
        creator.join()
        flat = queue_flatness(env, workdir / "data", url, key)
    finally:
        server.terminate()
        bare.terminate()
        server.wait(10)
        if args.postgres:
            with psycopg.connect(
                "postgresql://postgres@127.0.0.1:5432/test", autocommit=True
            ) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    ratio = ours["rps"] / base["rps"]
    print(
        f"\nGET /v1/tasks/{{id}} under load: {args.pollers} pollers, {seconds} s, {database}, "
        f"{generator}, {creator.created} creates during the run ({os.cpu_count()} cores)\n"
    )
    print("| endpoint | requests/s | p50 ms | p99 ms | errors |")
    print("| --- | --- | --- | --- | --- |")
    for label, result in (("bare FastAPI", base), ("r2v GET task", ours)):
        print(
            f"| {label} | {result['rps']:.0f} | {result['p50']:.2f} | {result['p99']:.2f} "
            f"| {result['errors']:.0f} |"
        )
    print(f"\nthroughput ratio r2v / bare: {ratio:.2f} (target >= 0.50)\n")
    print(
        f"{args.pollers} pollers each polling its task every {args.every} s "
        f"({args.pollers / args.every:.0f} requests/s offered):\n"
    )
    print("| endpoint | requests/s | p50 ms | p99 ms | errors |")
    print("| --- | --- | --- | --- | --- |")
    for label, result in (("bare FastAPI", paced_bare), ("r2v GET task", paced)):
        print(
            f"| {label} | {result['rps']:.0f} | {result['p50']:.2f} | {result['p99']:.2f} "
            f"| {result['errors']:.0f} |"
        )
    print(
        f"\nr2v p99: {server_p99:.1f} ms inside the server (its own histogram), "
        f"{paced['p99']:.1f} ms seen by the Python pollers (their own scheduling included; "
        "compare the bare endpoint's) - target < 20 ms\n"
    )
    print("\n".join(flat))
    print(json.dumps({"ratio": round(ratio, 3), "server_p99_ms": round(server_p99, 2)}))


if __name__ == "__main__":
    main()
