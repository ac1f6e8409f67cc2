"""The compositor's two presets against a lossless reference: quality, size and time.

Four renders of 5 s at 720p stand for what the compositor makes: a photo with a slow
push-in, a whip pan across one, a 1080p phone-like clip shown as it was filmed, and a
scene drawn from the words alone. For each, the reference is the same storyboard drawn as
a camera would film it (Lanczos resampling everywhere, every moving frame exposed across
a 180-degree shutter with a view every quarter pixel of sweep), kept raw in memory as the
luma plane the encoder would be given. Each preset then renders the request through the
engine, as a task would (sound included); its time is the best of `--repeat` renders, the
presets taking turns so that other load on the machine hits both alike. Its output is
decoded and compared with the reference: PSNR over all frames and mean SSIM (Wang et
al., 11x11 Gaussian window), both on luma as encoders report them, and the video
stream's size in bits per pixel.

    python bench/presets.py               # all four cases (about two minutes on 2 cores)
    python bench/presets.py --cases "whip pan" --repeat 1

On 2 cores (AMD EPYC, shared with other work, so times vary by a quarter from run to
run), standard = x264 superfast CRF 24 with trellis and no adaptive quantization, motion
blur from a pixel of sweep; fast = x264 ultrafast CRF 23 with CABAC and deblocking, motion
blur at whip speeds; both warp bilinearly:

| case | preset | time (s) | PSNR-Y (dB) | SSIM-Y | bits/pixel |
| --- | --- | ---: | ---: | ---: | ---: |
| push-in | fast | 0.51 | 45.63 | 0.9814 | 0.0773 |
| push-in | standard | 0.69 | 45.86 | 0.9830 | 0.0400 |
| whip pan | fast | 0.91 | 45.69 | 0.9881 | 0.0365 |
| whip pan | standard | 1.18 | 46.67 | 0.9891 | 0.0323 |
| video clip | fast | 1.16 | 46.55 | 0.9833 | 0.0746 |
| video clip | standard | 1.30 | 46.65 | 0.9837 | 0.0393 |
| text only | fast | 0.79 | 52.49 | 0.9966 | 0.0175 |
| text only | standard | 0.76 | 52.95 | 0.9969 | 0.0155 |

Standard takes 1.0-1.4x fast's time and writes files 11-48% smaller at a higher PSNR and
SSIM in every case. Before (x264 medium CRF 19, bicubic warps) it took 2.9-8.1x fast's
time for 2.2-4.4 dB more at 1.0-5.5x the size.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
from numpy.typing import NDArray

from r2v.engines.base import EngineRequest, ImageInput, LocalContext, Preset, VideoInput
from r2v.engines.compositor import CompositorEngine, shots
from r2v.engines.compositor.engine import render_frames
from r2v.engines.compositor.references import ReferenceBank
from r2v.engines.compositor.storyboard import build_storyboard
from r2v.protocol import FAST_MODEL, FPS, STANDARD_MODEL

sys.path.insert(0, str(Path(__file__).parent))
from compositor import IMAGE_SIZE, machine, make_references  # noqa: E402

Luma = NDArray[np.uint8]
PRESETS: tuple[Preset, ...] = ("fast", "standard")
MODELS = {"fast": FAST_MODEL, "standard": STANDARD_MODEL}
CLIP_SIZE = (1920, 1080)
SECONDS = 5


@dataclass(frozen=True)
class Case:
    name: str
    prompt: str
    images: int = 0
    videos: int = 0


CASES = (
    Case("push-in", "@Image1, the camera slowly pushing in.", images=1),
    Case("whip pan", "@Image1, a whip pan to the right across the city.", images=1),
    Case("video clip", "@Video1 as it was filmed.", videos=1),
    Case("text only", "Lanterns drifting over a night harbour, warm gold light on the sea."),
)


@dataclass(frozen=True)
class Result:
    seconds: float
    psnr: float
    ssim: float
    bpp: float


def make_clip(path: Path, picture: Path) -> VideoInput:
    """A 1080p clip, as phones film them, of a camera panning and pushing in over `picture`."""
    world = cv2.cvtColor(cv2.imread(str(picture)), cv2.COLOR_BGR2RGB)
    width, height = CLIP_SIZE
    frames = SECONDS * FPS
    with av.open(str(path), "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"preset": "veryfast", "crf": "18"}
        for index in range(frames):
            scale = 0.85 - 0.1 * index / frames  # picture pixels per clip pixel
            matrix = np.array([[scale, 0.0, 40 + 2.5 * index], [0.0, scale, 60.0]])
            view = cv2.warpAffine(
                world, matrix, CLIP_SIZE, flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP
            )
            frame = av.VideoFrame.from_ndarray(view, format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, FPS)
            out.mux(video.encode(frame))
        out.mux(video.encode())
    return VideoInput(path, width, height, float(SECONDS), float(FPS), False)


def request_for(
    case: Case, preset: Preset, pictures: list[Path], clip: VideoInput
) -> EngineRequest:
    return EngineRequest(
        model=MODELS[preset], preset=preset, prompt=case.prompt, resolution="720p",
        aspect_ratio="16:9", duration=SECONDS, generate_audio=True, seed=1234,
        images=tuple(ImageInput(p, *IMAGE_SIZE) for p in pictures[: case.images]),
        videos=(clip,) * case.videos,
    )  # fmt: skip


@contextmanager
def ideal_drawing() -> Iterator[None]:
    """Draw as a camera would film: every view resampled with Lanczos (blurred ones too),
    every moving frame exposed across a 180-degree shutter with a view every quarter pixel
    of sweep. Slow (a tenth of a second a frame), and only ever a reference."""
    names = ("interpolation", "blur_threshold", "render_view", "_BLUR_STEP_PX", "_MAX_BLUR_SAMPLES")
    saved = {name: getattr(shots, name) for name in names}
    view = shots.render_view

    def lanczos_view(*args: Any, **kwargs: Any) -> NDArray[np.uint8]:
        return view(*args, **{**kwargs, "flags": cv2.INTER_LANCZOS4})

    shots.interpolation = lambda _preset: cv2.INTER_LANCZOS4  # type: ignore[assignment]
    shots.blur_threshold = lambda _preset, _size: 0.0  # type: ignore[assignment]
    shots.render_view = lanczos_view  # type: ignore[assignment]
    shots._BLUR_STEP_PX, shots._MAX_BLUR_SAMPLES = 0.25, 32
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(shots, name, value)


def reference_luma(request: EngineRequest) -> list[Luma]:
    """The request's frames drawn ideally, as the luma planes the encoder would be given
    (the writer's own RGB to BT.601 conversion)."""
    bank = ReferenceBank(request)
    board = build_storyboard(request, bank)
    plates = shots.Plates(request, board)
    lumas: list[Luma] = []

    def keep(frame: NDArray[np.uint8]) -> None:
        code = cv2.COLOR_RGB2YUV_I420 if frame.shape[2] == 3 else cv2.COLOR_RGBA2YUV_I420
        lumas.append(cv2.cvtColor(frame, code)[: board.height].copy())

    with ideal_drawing():
        render_frames(
            board,
            lambda shot: shots.open_source(shot, request, board, plates),
            keep,
            lambda _share: None,
            on_shot_closed=plates.release,
        )
    return lumas


def decoded_luma(path: Path) -> tuple[list[Luma], int]:
    """The luma planes of every frame of `path`, and its video stream's size in bytes."""
    lumas: list[Luma] = []
    size = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            size += packet.size
            for frame in packet.decode():
                lumas.append(frame.to_ndarray(format="yuv420p")[: frame.height].copy())
    return lumas, size


def ssim(a: Luma, b: Luma) -> float:
    """Mean SSIM of two luma planes (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5)."""
    x, y = a.astype(np.float32), b.astype(np.float32)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def mean(image: NDArray[np.float32]) -> NDArray[np.float32]:
        return cv2.GaussianBlur(image, (11, 11), 1.5)  # type: ignore[return-value]

    mx, my = mean(x), mean(y)
    vx, vy, cov = mean(x * x) - mx * mx, mean(y * y) - my * my, mean(x * y) - mx * my
    index = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(np.mean(index))


def compare(reference: list[Luma], decoded: list[Luma]) -> tuple[float, float]:
    """PSNR (dB, from the mean squared error over all frames) and mean SSIM."""
    if len(reference) != len(decoded):
        raise RuntimeError(f"{len(decoded)} frames decoded, {len(reference)} expected")
    pairs = list(zip(reference, decoded, strict=True))
    squared = np.mean([np.mean((r.astype(np.float32) - d) ** 2) for r, d in pairs])
    psnr = 10 * math.log10(255**2 / float(squared)) if squared else math.inf
    return psnr, float(np.mean([ssim(r, d) for r, d in pairs]))


def measure(
    requests: dict[Preset, EngineRequest], reference: list[Luma], workdir: Path, repeat: int
) -> dict[Preset, Result]:
    """Render each preset's request `repeat` times, in turns (the best time is kept), and
    score the last output of each against `reference`."""
    engine = CompositorEngine()
    times: dict[Preset, list[float]] = {preset: [] for preset in requests}
    outputs: dict[Preset, Path] = {}
    for attempt in range(repeat):
        for preset, request in requests.items():
            folder = workdir / f"{preset}-{attempt}"
            folder.mkdir(parents=True)
            started = time.perf_counter()
            outputs[preset] = engine.generate(request, LocalContext(folder)).path
            times[preset].append(time.perf_counter() - started)
    results = {}
    for preset, path in outputs.items():
        decoded, size = decoded_luma(path)
        psnr, mean_ssim = compare(reference, decoded)
        bpp = size * 8 / (len(decoded) * decoded[0].size)
        results[preset] = Result(min(times[preset]), psnr, mean_ssim, bpp)
    return results


def verdict(fast: Result, standard: Result) -> str:
    """Whether standard is better per byte: as good or better in both measures at no more
    bytes, or within a tenth of a dB at a fifth fewer."""
    size = standard.bpp / fast.bpp
    better = standard.psnr >= fast.psnr and standard.ssim >= fast.ssim
    if size <= 1.0 and better:
        return "better and smaller"
    if size <= 0.8 and standard.psnr >= fast.psnr - 0.1:
        return "as good, smaller"
    return "no"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="renders per preset (best time)")
    parser.add_argument("--cases", nargs="*", help="case names (default: all)")
    args = parser.parse_args()
    cases = [c for c in CASES if not args.cases or c.name in args.cases]
    print(f"machine: {machine()}")
    rows: list[tuple[Case, dict[Preset, Result]]] = []
    with tempfile.TemporaryDirectory(prefix="r2v-presets-") as temp:
        root = Path(temp)
        (root / "refs").mkdir()
        pictures = make_references(root / "refs", count=1)
        clip = make_clip(root / "refs" / "clip.mp4", pictures[0])
        warm_up = request_for(CASES[0], "fast", pictures, clip)
        CompositorEngine().generate(  # imports and caches
            dataclasses.replace(warm_up, resolution="480p"), LocalContext(root)
        )
        for case in cases:
            requests = {preset: request_for(case, preset, pictures, clip) for preset in PRESETS}
            reference = reference_luma(requests["standard"])
            results = measure(requests, reference, root / case.name, args.repeat)
            rows.append((case, results))
            for preset, r in results.items():
                print(
                    f"  {case.name} {preset}: {r.seconds:.2f} s, PSNR {r.psnr:.2f} dB, "
                    f"SSIM {r.ssim:.4f}, {r.bpp:.4f} bits/pixel",
                    flush=True,
                )
    print()
    print("| case | preset | time (s) | PSNR-Y (dB) | SSIM-Y | bits/pixel |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for case, results in rows:
        for preset, r in results.items():
            print(
                f"| {case.name} | {preset} | {r.seconds:.2f} | {r.psnr:.2f} | {r.ssim:.4f} "
                f"| {r.bpp:.4f} |"
            )
    print()
    print("| case | time standard/fast | size standard/fast | PSNR | SSIM | better per byte |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for case, results in rows:
        fast, standard = results["fast"], results["standard"]
        print(
            f"| {case.name} | {standard.seconds / fast.seconds:.2f}x "
            f"| {standard.bpp / fast.bpp:.2f}x | {standard.psnr - fast.psnr:+.2f} dB "
            f"| {standard.ssim - fast.ssim:+.4f} | {verdict(fast, standard)} |"
        )
    megapixel_frames = SECONDS * FPS * 1280 * 720 / 1e6
    for preset in PRESETS:
        mean = np.mean([results[preset].seconds for _, results in rows]) / megapixel_frames
        print(f"{preset}: {mean:.4f} s per output megapixel-frame (mean over the cases)")


if __name__ == "__main__":
    main()
