"""Real r2v processes for the scale-out tests: `r2v serve` and `r2v worker`, with logs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.services import free_port


def wait_healthy(url: str, popen: subprocess.Popen[Any], what: str = "r2v serve") -> None:
    """Wait until the server at `url` answers /healthz; raise if it exits or never does."""
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if popen.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.1)


class Process:
    """One r2v process, its output in a log file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._out = log.open("w")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "r2v.cli", *args],
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env=os.environ | env,
        )

    def signal(self, signum: int) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signum)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.popen.wait(10)

    def stop(self, timeout: float = 30) -> int:
        self.signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return -9

    def lines(self) -> list[str]:
        self._out.flush()
        return self.log.read_text().splitlines()

    def json_lines(self) -> list[dict[str, Any]]:
        found = []
        for line in self.lines():
            if line.startswith("{"):
                try:
                    found.append(json.loads(line))
                except ValueError:
                    pass  # a line cut short by SIGKILL
        return found


class Fleet:
    """An API process and worker processes sharing one database and one bucket."""

    def __init__(self, root: Path, env: dict[str, str], *, shared_data: bool = False) -> None:
        self.root = root
        self.shared_data = shared_data
        self.env = {
            "R2V_SECRET_KEY": "fleet-secret-" + "x" * 24,
            "R2V_METRICS_TOKEN": "fleet-metrics-token",
            "R2V_LOG_FORMAT": "json",
            "R2V_LEASE_SECONDS": "3",
            "R2V_HEARTBEAT_SECONDS": "0.5",
            "R2V_REAPER_INTERVAL_SECONDS": "0.5",
            "R2V_POLL_INTERVAL_SECONDS": "0.5",
        } | env
        self.processes: list[Process] = []
        self.api_url = ""

    def _start(self, name: str, args: list[str], env: dict[str, str]) -> Process:
        # one data dir for all (local storage shared on one machine), or one each
        data = self.root / ("data" if self.shared_data else name)
        data.mkdir(parents=True, exist_ok=True)
        process = Process(
            [*args, "--data-dir", str(data)], self.env | env, self.root / f"{name}.log"
        )
        self.processes.append(process)
        return process

    def api(self, port: int | None = None, **env: str) -> Process:
        port = port or free_port()
        process = self._start("api", ["serve", "--workers", "0", "--port", str(port)], env)
        self.api_url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(self.api_url, process.popen, "the API")
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}:\n" + "\n".join(process.lines())) from exc
        return process

    def worker(self, name: str, *args: str, wait: bool = True, **env: str) -> Process:
        process = self._start(name, ["worker", *args], env)
        if not wait:
            return process
        deadline = time.monotonic() + 60
        while not any("worker ready" in line for line in process.lines()):
            if process.popen.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the worker did not start:\n" + "\n".join(process.lines()))
            time.sleep(0.1)
        return process

    def close(self) -> None:
        for process in self.processes:
            process.stop(10)
