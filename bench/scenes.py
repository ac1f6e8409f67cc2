"""The cost of a drawn scene's frames, against the abstract scene's.

For each prompt (one place and time each, plus a prompt that names no place, which draws
the abstract gradient-and-blobs scene of `ambient`), this plans a 5 s 720p render with the
fast model and draws every frame of its first shot through the shot's own frame source,
as the engine does, without encoding. It prints the time to prepare the shot (drawing the
scene's plate once) and the time a frame, each the best of `--repeat` runs, the abstract
scene measured between every two others so that load on the machine hits both alike, and
each place's cost a frame relative to the abstract scene's, alone and with the shot's
preparation spread over its frames. Times are CPU seconds of this
process with OpenCV on one thread (`--threads`), which other work on a shared machine
disturbs far less than the wall clock; `--wall` times the wall clock instead.

    python bench/scenes.py             # every place
    python bench/scenes.py --repeat 5
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import cv2

from r2v.engines.base import EngineRequest
from r2v.engines.compositor.shots import AmbientSource, FrameSource, SceneSource
from r2v.engines.compositor.storyboard import Shot, Storyboard, build_storyboard
from r2v.protocol import FAST_MODEL

ABSTRACT = "the feeling of a memory"
PROMPTS = (
    "a calm sea at dawn", "mountains at night", "a city skyline at dusk",
    "a forest in the morning", "desert at noon", "outer space", "a field at golden hour",
    "a snowfield at noon", "mountains at dawn, slowly push in",
)  # fmt: skip


def plan(prompt: str) -> tuple[Storyboard, Shot]:
    request = EngineRequest(
        model=FAST_MODEL, preset="fast", prompt=prompt, resolution="720p", aspect_ratio="16:9",
        duration=5, generate_audio=False, seed=7,
    )  # fmt: skip
    board = build_storyboard(request)
    return board, board.shots[0]


def measure(board: Storyboard, shot: Shot, clock: Callable[[], float]) -> tuple[float, float]:
    """Seconds to open the shot's source, and seconds a frame over the whole shot."""
    started = clock()
    source: FrameSource = (
        SceneSource(shot, board) if shot.scene is not None else AmbientSource(shot, board)
    )
    opened = clock()
    for index in range(shot.start, shot.end):
        source.frame(index)
    done = clock()
    source.close()
    return opened - started, (done - opened) / shot.length


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--wall", action="store_true", help="time the wall clock")
    args = parser.parse_args()
    cv2.setNumThreads(args.threads)
    clock = time.perf_counter if args.wall else time.process_time
    abstract = plan(ABSTRACT)
    baseline: list[float] = []
    rows: list[tuple[str, float, float]] = []
    for prompt in PROMPTS:
        board, shot = plan(prompt)
        opens, frames = [], []
        for _ in range(args.repeat):
            baseline.append(measure(*abstract, clock)[1])
            opened, frame = measure(board, shot, clock)
            opens.append(opened)
            frames.append(frame)
        described = shot.scene.describe() if shot.scene is not None else "abstract"
        move = shot.motion.kind if shot.motion is not None else "static"
        rows.append((f"{described}, {move}", min(opens), min(frames)))
    base = min(baseline)
    width, height = abstract[0].size
    kind = "wall" if args.wall else f"CPU, {args.threads} OpenCV thread(s)"
    print(f"{width}x{height}, fast, frames of one 5 s shot, best of {args.repeat}, {kind}")
    frames = abstract[1].length
    print(f"{'scene, camera':40} {'prepare ms':>10} {'frame ms':>9} {'x abstract':>10} "
          f"{'with prepare':>12}")  # fmt: skip
    print(f"{'abstract, static':40} {0.0:10.1f} {base * 1e3:9.2f} {1.0:10.2f} {1.0:12.2f}")
    for described, opened, frame in rows:
        spread = (frame + opened / frames) / base
        print(f"{described:40} {opened * 1e3:10.1f} {frame * 1e3:9.2f} {frame / base:10.2f} "
              f"{spread:12.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
