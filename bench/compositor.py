"""The compositor through the real server, measured against the encoder's floor.

For each case (5 s and 15 s, 480p and 720p, both models) this creates a task over HTTP on
r2v running under a real uvicorn on a loopback port, with reference images served by a
loopback HTTP server, polls it until it completes, and times create -> completed. The
floor is libx264 (preset veryfast, as DESIGN.md sets it) encoding the same number of
frames of the same size, from frames already in memory: the render's own output,
decoded, so the content is exactly what the compositor had to encode. Each number is the
best of `--repeat` runs, ours and the floor measured alternately so that other load on the
machine hits both alike. Peak memory (ru_maxrss) is that of a fresh child process
rendering 15 s at 720p with the fast model.

    python bench/compositor.py            # the full table (a few minutes on two cores)
    python bench/compositor.py --quick    # 5 s at 720p, both models, and the memory check
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import platform
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import httpx
import numpy as np
import uvicorn

from r2v.bootstrap import Runtime, build_app, build_runtime
from r2v.engines.base import EngineRequest, ImageInput, LocalContext
from r2v.engines.compositor import CompositorEngine
from r2v.protocol import FAST_MODEL, STANDARD_MODEL
from r2v.settings import Settings

PROMPT = (
    "@Image1 as the first frame, the camera slowly pushing in. "
    "Then @Image2, panning right across the city. @Image3 as the last frame."
)
IMAGE_SIZE = (1920, 1080)
FLOOR_OPTIONS = {"preset": "veryfast", "crf": "23"}
MODELS = {"fast": FAST_MODEL, "standard": STANDARD_MODEL}


@dataclass(frozen=True)
class Case:
    seconds: int
    resolution: str
    model: str

    @property
    def name(self) -> str:
        return f"{self.model} {self.resolution} {self.seconds:>2d} s"


def make_references(folder: Path, count: int = 3) -> list[Path]:
    """Photo-like 1920x1080 JPEGs: smooth light, texture and hard edges, seeded."""
    paths = []
    width, height = IMAGE_SIZE
    for seed in range(count):
        rng = np.random.default_rng(seed)
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        picture = np.empty((height, width, 3), np.float32)
        for channel in range(3):
            fx, fy, phase = rng.uniform(0.5, 3.0), rng.uniform(0.5, 3.0), rng.uniform(0, 6.3)
            picture[..., channel] = 0.5 + 0.4 * np.sin(xs / width * fx * 6.28 + phase) * np.cos(
                ys / height * fy * 6.28
            )
        noise = cv2.GaussianBlur(rng.standard_normal((height, width)).astype(np.float32), (0, 0), 2)
        picture += 0.08 * noise[..., None]
        canvas = np.ascontiguousarray(np.clip(picture * 255, 0, 255).astype(np.uint8))
        for _ in range(40):
            x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            cv2.rectangle(canvas, (x, y), (x + 120, y + 60), colour, -1)
        path = folder / f"photo{seed + 1}.jpg"
        bgr = cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR)
        cv2.imwrite(str(path), bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])
        paths.append(path)
    return paths


@contextmanager
def file_server(folder: Path) -> Iterator[str]:
    """Serve `folder` on a loopback port; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass


@contextmanager
def live_server(runtime: Runtime) -> Iterator[str]:
    """r2v under a real uvicorn on a loopback port; yields the base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(build_app(runtime), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def run_task(client: httpx.Client, case: Case, image_urls: list[str]) -> tuple[float, bytes]:
    """Create a task, poll until it completes; (seconds from create to completed, the MP4)."""
    body = {
        "model": MODELS[case.model],
        "prompt": PROMPT,
        "image_urls": image_urls,
        "resolution": case.resolution,
        "aspect_ratio": "16:9",
        "duration": case.seconds,
        "seed": 1234,
    }
    started = time.perf_counter()
    created = client.post("/v1/videos/generations", json=body)
    created.raise_for_status()
    task_id = created.json()["id"]
    while True:
        task = client.get(f"/v1/tasks/{task_id}").json()
        if task["status"] == "completed":
            elapsed = time.perf_counter() - started
            return elapsed, client.get(task["results"][0]).content
        if task["status"] == "failed":
            raise RuntimeError(f"{case.name}: {task['error']}")
        time.sleep(0.01)


def floor_seconds(video: bytes, workdir: Path) -> float:
    """libx264 veryfast encoding the video's frames, decoded beforehand into memory."""
    source = workdir / "ours.mp4"
    source.write_bytes(video)
    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        frames = [
            av.VideoFrame.from_ndarray(f.to_ndarray(format="yuv420p"), format="yuv420p")
            for f in container.decode(stream)
        ]
    started = time.perf_counter()
    with av.open(str(workdir / "floor.mp4"), "w") as out:
        encoder = out.add_stream("libx264", rate=24)
        encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
        encoder.options = dict(FLOOR_OPTIONS)
        for index, frame in enumerate(frames):
            frame.pts = index
            frame.time_base = Fraction(1, 24)
            out.mux(encoder.encode(frame))
        out.mux(encoder.encode())
    return time.perf_counter() - started


def peak_memory_child(references: list[Path], workdir: Path) -> dict[str, float]:
    """Peak memory of a fresh process rendering 15 s at 720p with the fast model."""
    command = [sys.executable, __file__, "--child-memory", str(workdir), *map(str, references)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def child_memory(workdir: Path, references: list[Path]) -> None:
    """(In the child.) Render 15 s 720p fast and print peak RSS before and after, in MB."""
    workdir.mkdir(parents=True, exist_ok=True)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    request = EngineRequest(
        model=FAST_MODEL, preset="fast", prompt=PROMPT, resolution="720p", aspect_ratio="16:9",
        duration=15, generate_audio=True, seed=1234,
        images=tuple(ImageInput(p, *IMAGE_SIZE) for p in references),
    )  # fmt: skip
    started = time.perf_counter()
    CompositorEngine().generate(request, LocalContext(workdir))
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "baseline_mb": baseline,
                "peak_mb": peak,
                "hwm_mb": _high_water_mb(),
                "seconds": elapsed,
            }
        )
    )


def _high_water_mb() -> float:
    """This process's own peak resident memory (Linux: VmHWM), or -1 where unknown.

    ru_maxrss is not enough on its own: Linux carries the parent's peak into a child
    across fork and exec, so a child of a large parent starts with the parent's figure.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return -1.0


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cores} cores, {model}, Python {platform.python_version()}, PyAV {av.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 s at 720p and the memory check")
    parser.add_argument("--repeat", type=int, default=0, help="runs per case (best is kept)")
    parser.add_argument("--child-memory", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_memory:
        child_memory(Path(args.child_memory[0]), [Path(p) for p in args.child_memory[1:]])
        return
    repeat = args.repeat or (1 if args.quick else 3)
    if args.quick:
        cases = [Case(5, "720p", model) for model in MODELS]
    else:
        cases = [
            Case(seconds, resolution, model)
            for model in MODELS
            for resolution in ("480p", "720p")
            for seconds in (5, 15)
        ]
    with tempfile.TemporaryDirectory(prefix="r2v-bench-") as temp:
        root = Path(temp)
        (root / "refs").mkdir()
        references = make_references(root / "refs")
        # First, while this process is still small: a child inherits its parent's peak
        # memory figure (ru_maxrss) across fork and exec.
        memory = peak_memory_child(references, root / "child")
        with file_server(root / "refs") as files:
            settings = Settings(
                data_dir=root / "data",
                fetch_allow_hosts=[files.split("//")[1]],
                poll_interval_seconds=0.05,
                workers=1,
            )
            runtime = build_runtime(settings)
            secret = runtime.keys.create("bench").secret
            urls = [f"{files}/{p.name}" for p in references]
            print(f"machine: {machine()}")
            print(f"prompt: {PROMPT}")
            rows = []
            try:
                with (
                    live_server(runtime) as base,
                    httpx.Client(
                        base_url=base, headers={"Authorization": f"Bearer {secret}"}, timeout=120
                    ) as client,
                ):
                    run_task(client, Case(5, "480p", "fast"), urls)  # warm-up: imports, caches
                    for case in cases:
                        ours, floor = [], []
                        for _ in range(repeat):
                            elapsed, video = run_task(client, case, urls)
                            ours.append(elapsed)
                            floor.append(floor_seconds(video, root))
                        rows.append((case, min(ours), min(floor)))
                        print(f"  {case.name}: ours {min(ours):.2f} s, floor {min(floor):.2f} s")
            finally:
                runtime.close()
    print()
    print("| case | ours (s) | floor (s) | ratio |")
    print("| --- | ---: | ---: | ---: |")
    for case, ours_s, floor_s in rows:
        print(f"| {case.name} | {ours_s:.2f} | {floor_s:.2f} | {ours_s / floor_s:.2f}x |")
    print()
    print(
        f"peak memory of a 15 s 720p fast render in a fresh process: ru_maxrss"
        f" {memory['peak_mb']:.0f} MB, VmHWM {memory['hwm_mb']:.0f} MB"
        f" ({memory['baseline_mb']:.0f} MB after imports; rendered in {memory['seconds']:.2f} s)"
    )


if __name__ == "__main__":
    main()
