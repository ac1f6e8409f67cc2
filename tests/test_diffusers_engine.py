"""The diffusers engine on the CPU, with a tiny randomly initialised Wan VACE pipeline.

The pipeline is built here (tests/tinywan.py), written with `save_pretrained` and loaded
back through the engine's own loading code; every render is a real MP4 checked by decoding
it. Random weights draw noise, not pictures, so the tests check what the engine promises:
sizes, lengths, sound, determinism, progress, cancellation, and that conditioning, LoRA
and cache settings reach the model. Needs `r2v[diffusers]`; skipped without it.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch", reason="needs `pip install 'r2v[diffusers]'`")
pytest.importorskip("diffusers", reason="needs `pip install 'r2v[diffusers]'`")

from r2v.engines.base import (  # noqa: E402 - only once torch is known to be there
    AudioInput,
    EngineRequest,
    ImageInput,
    LocalContext,
    VideoInput,
)
from r2v.engines.diffusers import DiffusersConfig, DiffusersEngine  # noqa: E402
from r2v.engines.diffusers.cache import enable_first_block_cache  # noqa: E402
from r2v.engines.diffusers.engine import OUTPUT_NAME  # noqa: E402
from r2v.errors import EngineUnavailable, RequestCancelled  # noqa: E402
from tests.mediafiles import (  # noqa: E402
    decode_summary,
    engine_request,
    frame_hashes,
    make_image,
    make_video,
    make_wav,
)
from tests.tinywan import save_tiny_lora, save_tiny_pipeline, tiny_components  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    # The tiny model's operations are far too small to share out: two threads on a busy
    # two-core machine mostly spin waiting for each other (renders 5-20x slower).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_pipeline(tmp_path_factory.mktemp("tinywan"))


@pytest.fixture(scope="module")
def refs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("refs")
    return {
        "photo": ImageInput(make_image(root / "photo.jpg", 640, 480, seed=1), 640, 480),
        "poster": ImageInput(make_image(root / "poster.png", 360, 640, "PNG", seed=2), 360, 640),
        "clip": VideoInput(
            make_video(root / "clip.mp4", 320, 240, seconds=2.0, pan_px_per_frame=2),
            320, 240, 2.0, 24.0, True,
        ),
        "wav": AudioInput(make_wav(root / "tone.wav", seconds=3.0), 3.0),
    }  # fmt: skip


def make_engine(weights: Path, **changes: Any) -> DiffusersEngine:
    values: dict[str, Any] = {"device": "cpu", "dtype": "float32", "steps": 2, "preset": "fast"}
    values.update(changes)
    return DiffusersEngine(DiffusersConfig(weights_dir=weights, **values))


@pytest.fixture(scope="module")
def engine(weights: Path) -> DiffusersEngine:
    loaded = make_engine(weights)
    loaded.load()
    return loaded


def request(refs: dict[str, Any], **changes: Any) -> EngineRequest:
    defaults: dict[str, Any] = {
        "prompt": "@Image1 as the first frame, the dog walks in the park",
        "generate_audio": True,
        "images": (refs["photo"],),
    }
    return engine_request(**(defaults | changes))


def render(
    engine: DiffusersEngine, req: EngineRequest, tmp_path: Path, name: str = "run"
) -> tuple[Path, LocalContext]:
    context = LocalContext(tmp_path / name)
    context.workspace.mkdir()
    result = engine.generate(req, context)
    assert result.path == context.workspace / OUTPUT_NAME
    return result.path, context


def test_loads_once_and_renders_the_exact_size_at_24_fps(
    weights: Path, refs: dict[str, Any], tmp_path: Path
) -> None:
    engine = make_engine(weights)
    threads = [threading.Thread(target=engine.load) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    pipeline = engine.pipeline
    engine.load()
    assert engine.pipeline is pipeline  # loaded once, resident between tasks

    path, _ = render(engine, request(refs), tmp_path)
    summary = decode_summary(path)
    assert (summary.width, summary.height, summary.fps) == (864, 496, 24.0)
    assert summary.video_frames == 4 * 24
    assert summary.video_codec == "h264" and summary.pix_fmt == "yuv420p"
    assert not summary.has_audio  # no audio reference, no video: no audio stream


def test_the_same_seed_renders_the_same_frames(
    engine: DiffusersEngine, refs: dict[str, Any], tmp_path: Path
) -> None:
    first, _ = render(engine, request(refs), tmp_path, "a")
    again, _ = render(engine, request(refs), tmp_path, "b")
    other, _ = render(engine, request(refs, seed=8), tmp_path, "c")
    assert frame_hashes(first) == frame_hashes(again)
    assert frame_hashes(first) != frame_hashes(other)


def test_progress_is_reported_after_every_denoising_step(
    engine: DiffusersEngine, refs: dict[str, Any], tmp_path: Path
) -> None:
    req = request(refs)
    plan = engine.plan(req)
    assert len(plan.segments) == 3 and plan.steps == 6  # 33 frames in passes of 17
    _, context = render(engine, req, tmp_path)
    reported = context.reported
    assert reported == sorted(reported) and reported[0] == 0.0 and reported[-1] == 1.0
    steps = [f for f in reported if 0.05 < f <= 0.9 + 1e-9]
    assert len(steps) == plan.steps


class CancelAtStep:
    """A context that cancels the render when the denoising step `step` reports."""

    def __init__(self, workspace: Path, step: int) -> None:
        self.workspace = workspace
        self.step = step
        self.steps = 0

    def progress(self, fraction: float) -> None:
        if 0.05 < fraction <= 0.9 + 1e-9:
            self.steps += 1
            if self.steps == self.step:
                raise RequestCancelled("cancelled by the test")


def test_cancelling_between_steps_stops_the_render_and_writes_nothing(
    engine: DiffusersEngine, refs: dict[str, Any], tmp_path: Path
) -> None:
    calls: list[int] = []
    hook = engine.pipeline.transformer.register_forward_hook(lambda *_: calls.append(1))
    try:
        context = CancelAtStep(tmp_path / "cancelled", step=1)
        context.workspace.mkdir()
        with pytest.raises(RequestCancelled):
            engine.generate(request(refs), context)
    finally:
        hook.remove()
    assert context.steps == 1
    assert len(calls) == 2  # one step, guided: the conditional and unconditional passes
    assert list(context.workspace.iterdir()) == []
    # The pipeline is left clean: the next render matches an uninterrupted one.
    after, _ = render(engine, request(refs), tmp_path, "after")
    fresh, _ = render(make_engine(engine.config.weights_dir), request(refs), tmp_path, "fresh")
    assert frame_hashes(after) == frame_hashes(fresh)


def test_pins_and_the_reference_video_condition_the_model(
    engine: DiffusersEngine, refs: dict[str, Any], tmp_path: Path
) -> None:
    both = (refs["photo"], refs["poster"])
    base = request(refs, images=both, prompt="@Image1 as the first frame, with @Image2")
    swapped = request(refs, images=both, prompt="@Image2 as the first frame, with @Image1")
    followed = request(refs, images=both, videos=(refs["clip"],), generate_audio=False)
    hashes = [frame_hashes(render(engine, r, tmp_path, n)[0]) for n, r in
              (("base", base), ("swapped", swapped), ("followed", followed))]  # fmt: skip
    assert hashes[0] != hashes[1] != hashes[2] != hashes[0]


def test_sound_comes_from_the_audio_reference_else_the_video(
    engine: DiffusersEngine, refs: dict[str, Any], tmp_path: Path
) -> None:
    with_audio = request(refs, prompt="the dog walks to @Audio1", audios=(refs["wav"],))
    summary = decode_summary(render(engine, with_audio, tmp_path, "audio")[0])
    assert summary.has_audio and summary.audio_duration == pytest.approx(4.0, abs=0.05)
    assert summary.video_frames == 96  # a 3 s clip looped under a 4 s video

    from_video = request(refs, videos=(refs["clip"],), aspect_ratio="adaptive")
    summary = decode_summary(render(engine, from_video, tmp_path, "video")[0])
    assert summary.has_audio and (summary.width, summary.height) == (752, 560)  # 4:3 photo

    muted = request(refs, audios=(refs["wav"],), generate_audio=False)
    assert not decode_summary(render(engine, muted, tmp_path, "muted")[0]).has_audio


def test_a_lora_is_fused_at_its_scale(weights: Path, refs: dict[str, Any], tmp_path: Path) -> None:
    lora = save_tiny_lora(tmp_path / "lora")
    base = frame_hashes(render(make_engine(weights), request(refs), tmp_path, "base")[0])
    zero = make_engine(weights, lora_dir=lora.parent, lora_scale=0.0, guidance=5.0)
    full = make_engine(weights, lora_dir=lora, lora_scale=1.0, guidance=5.0)
    assert frame_hashes(render(zero, request(refs), tmp_path, "zero")[0]) == base
    assert frame_hashes(render(full, request(refs), tmp_path, "full")[0]) != base


def test_first_block_cache_and_attention_backend_are_applied(
    weights: Path, refs: dict[str, Any], tmp_path: Path
) -> None:
    cached = make_engine(weights, cache="first_block:0.5", attention_backend="native")
    cached.load()
    assert cached.pipeline.transformer.is_cache_enabled
    summary = decode_summary(render(cached, request(refs), tmp_path)[0])
    assert (summary.width, summary.video_frames) == (864, 96)


@pytest.mark.parametrize("scale", [0.0, 1.0])
def test_a_cached_step_adds_the_vace_hints_once(scale: float) -> None:
    # Two steps on the same inputs: the second is skipped by the cache, and must come out
    # as the first did. Uncorrected, FirstBlockCache adds VACE's hints twice (scale 1).
    transformer = tiny_components()["transformer"]
    enable_first_block_cache(transformer, threshold=0.05)
    tail_runs: list[int] = []
    transformer.blocks[-1].attn1.register_forward_hook(lambda *_: tail_runs.append(1))
    generator = torch.Generator().manual_seed(0)
    inputs = {
        "hidden_states": torch.randn(1, 16, 3, 4, 4, generator=generator),
        "control_hidden_states": torch.randn(1, 96, 3, 4, 4, generator=generator),
        "encoder_hidden_states": torch.randn(1, 8, 32, generator=generator),
        "timestep": torch.tensor([500.0]),
        "control_hidden_states_scale": torch.full((2,), scale),
        "return_dict": False,
    }
    with torch.no_grad(), transformer.cache_context("cond"):
        full = transformer(**inputs)[0]
    with torch.no_grad(), transformer.cache_context("cond"):
        cached = transformer(**inputs)[0]
    assert tail_runs == [1]  # the second step skipped the blocks after the first
    assert torch.allclose(full, cached, atol=1e-5)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"offload": "model"}, "with device=cpu set"),
        ({"attention_backend": "no-such-backend"}, "attention backend 'no-such-backend'"),
        ({"lora_dir": Path("/no/such/lora")}, "must be a .safetensors file"),
    ],
)
def test_settings_that_cannot_run_say_what_to_change(
    weights: Path, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(EngineUnavailable, match=message):
        make_engine(weights, **changes).load()


def test_missing_weights_and_a_missing_gpu_are_explained(weights: Path, tmp_path: Path) -> None:
    with pytest.raises(EngineUnavailable, match="model_index.json is missing"):
        make_engine(tmp_path).load()
    if not torch.cuda.is_available():
        with pytest.raises(EngineUnavailable, match="sees no CUDA GPU"):
            make_engine(weights, device="cuda").load()


@pytest.mark.slow
def test_the_benchmark_runs_at_toy_size_on_the_cpu() -> None:
    # One command that prints the table, so the benchmark cannot rot on machines without a GPU.
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "bench/diffusers.py", "--toy", "--device", "cpu"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert any(line.startswith("| diffusers pipeline, bare |") for line in lines)
    assert any(line.startswith("| r2v diffusers engine |") for line in lines)
    assert any(line.startswith("floor:") for line in lines)
