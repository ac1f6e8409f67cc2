"""Benchmark: the diffusers engine beside the same diffusers pipeline called bare.

    python -m bench.diffusers                 # --toy without CUDA, else --size 1.3b
    python -m bench.diffusers --size 14b      # Wan 2.1 VACE 14B, randomly initialised
    python -m bench.diffusers --weights DIR   # a real weights directory

One run times, on the same pipeline object and the same shape: the pipeline's own
`__call__` (bare: denoising and VAE decoding, frames left as a tensor) and the engine's
`generate` end to end (preparing references, the same denoising, fitting every frame to the
API's size, retiming to 24 fps and encoding the MP4). It reports the median time of a
denoising step, the end-to-end time, the peak GPU memory, and the FLOP floor of a step
(r2v.engines.diffusers.flops) against the device's peak: dense bf16 from a table for known
GPUs, else a measured matmul rate. Speed does not depend on the weights' values, so
randomly initialised models of the real sizes stand in for weights nobody has downloaded.

`--toy` runs the tiny model of tests/tinywan.py on the CPU in seconds, so the benchmark
itself is exercised on machines without a GPU; its numbers say nothing about GPU speed.
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Bench configs of the real models (diffusers' conversion of Wan 2.1 VACE).
WAN_VACE = {
    "1.3b": {"num_attention_heads": 12, "ffn_dim": 8960, "num_layers": 30,
             "vace_layers": list(range(0, 30, 2))},
    "14b": {"num_attention_heads": 40, "ffn_dim": 13824, "num_layers": 40,
            "vace_layers": list(range(0, 40, 5))},
}  # fmt: skip
WAN_COMMON = {
    "patch_size": (1, 2, 2), "attention_head_dim": 128, "in_channels": 16, "out_channels": 16,
    "text_dim": 4096, "freq_dim": 256, "cross_attn_norm": True,
    "qk_norm": "rms_norm_across_heads", "eps": 1e-6, "vace_in_channels": 96,
}  # fmt: skip
UMT5_XXL = {
    "d_model": 4096, "d_kv": 64, "d_ff": 10240, "num_layers": 24, "num_heads": 64,
    "vocab_size": 256384, "feed_forward_proj": "gated-gelu", "dropout_rate": 0.0,
}  # fmt: skip

# Dense bf16 tensor-core peaks (no sparsity), TFLOP/s, by a piece of the device's name.
PEAK_BF16_TFLOPS = (
    ("H200", 989.0), ("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.0),
    ("GH200", 989.0), ("B200", 2250.0), ("A100", 312.0), ("L40S", 362.0), ("L4", 121.0),
    ("A10G", 70.0), ("RTX 4090", 165.0),
)  # fmt: skip
TOY = {"max_area": 64 * 48, "max_frames": 33, "fps": 8}  # 4 s in one pass


def fix_path() -> None:
    """Run as a file, this folder comes first on sys.path and this file shadows diffusers."""
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    if str(here.parent) not in sys.path:
        sys.path.insert(0, str(here.parent))


@dataclass
class Clock:
    """A RenderContext (and a step callback) that timestamps every report."""

    workspace: Path
    stamps: list[float] = field(default_factory=list)

    def progress(self, _fraction: float) -> None:
        self.stamps.append(time.perf_counter())

    def on_step(self, _pipe: Any, _step: int, _t: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        self.stamps.append(time.perf_counter())
        return tensors


@dataclass
class Run:
    name: str
    step: float
    total: float
    memory: float | None


def main() -> None:
    fix_path()
    import torch

    args = parse_args(torch.cuda.is_available())
    if args.threads:
        torch.set_num_threads(args.threads)
    engine, label = build_engine(args, torch)
    request = sample_request(args)
    plan = engine.plan(request)
    if len(plan.segments) != 1:
        sys.exit(f"{args.duration} s is {len(plan.segments)} passes; bench one pass (<= 5 s)")
    pipeline = engine.pipeline
    inputs = bare_inputs(request, plan)
    bare(pipeline, {**inputs, "num_inference_steps": 1}, torch)  # warm-up: kernels, allocator
    runs: list[Run] = []
    for _ in range(args.repeat):
        runs.append(bare(pipeline, inputs, torch))
        runs.append(through_engine(engine, request, torch))
    report(args, label, engine, request, plan, runs, torch)


def parse_args(cuda: bool) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--toy", action="store_true", help="the tiny model on the CPU")
    which.add_argument("--size", choices=sorted(WAN_VACE), help="random full-size model")
    which.add_argument("--weights", type=Path, help="a Wan VACE diffusers weights directory")
    parser.add_argument("--resolution", choices=("480p", "720p"), default="480p")
    parser.add_argument("--duration", type=int, default=None, help="seconds (one pass)")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--guidance", type=float, default=None)
    parser.add_argument("--device", default="cuda" if cuda else "cpu")
    parser.add_argument("--dtype", choices=("bfloat16", "float16", "float32"), default=None)
    parser.add_argument("--cache", default=None, help="e.g. first_block:0.05")
    parser.add_argument("--attention", default=None, help="attention backend, e.g. flash")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (toy: 1)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the device's peak")
    args = parser.parse_args()
    if not (args.toy or args.size or args.weights):
        args.toy, args.size = not cuda, None if not cuda else "1.3b"
    # The toy model's operations are too small to share out: threads only wait on each other.
    args.threads = args.threads or (1 if args.toy else 0)
    args.duration = args.duration or (4 if args.toy else 5)
    args.steps = args.steps or (2 if args.toy else 30)
    args.dtype = args.dtype or ("float32" if args.device == "cpu" else "bfloat16")
    return args


def build_engine(args: argparse.Namespace, torch: Any) -> tuple[Any, str]:
    from r2v.engines.diffusers import DiffusersConfig, DiffusersEngine

    config: dict[str, Any] = {
        "preset": "standard", "steps": args.steps, "guidance": args.guidance,
        "dtype": args.dtype, "device": args.device, "cache": args.cache,
        "attention_backend": args.attention, "compile": args.compile,
    }  # fmt: skip
    if args.weights:
        engine = DiffusersEngine(DiffusersConfig(weights_dir=args.weights, **config))
        label = f"weights {args.weights}"
    elif args.toy:
        from tests.tinywan import tiny_pipeline

        toy = DiffusersConfig(weights_dir=Path("/nonexistent"), **config, **TOY)
        engine = DiffusersEngine(toy, pipeline=tiny_pipeline())
        label = "toy (tiny random model)"
    else:
        pipeline = full_size_pipeline(args.size, args.device, getattr(torch, args.dtype), torch)
        engine = DiffusersEngine(
            DiffusersConfig(weights_dir=Path("/nonexistent"), **config), pipeline=pipeline
        )
        label = f"Wan 2.1 VACE {args.size} (random weights)"
    started = time.perf_counter()
    engine.load()
    return engine, f"{label}, loaded in {time.perf_counter() - started:.1f} s"


@contextlib.contextmanager
def building(torch: Any, device: str, dtype: Any) -> Iterator[None]:
    """Create parameters directly on `device` in `dtype`: a 14B model never sits in fp32."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(before)


def full_size_pipeline(size: str, device: str, dtype: Any, torch: Any) -> Any:
    from diffusers import (
        AutoencoderKLWan,
        UniPCMultistepScheduler,
        WanVACEPipeline,
        WanVACETransformer3DModel,
    )
    from transformers import UMT5Config, UMT5EncoderModel

    from tests.tinywan import tiny_tokenizer

    with building(torch, device, dtype):
        transformer = WanVACETransformer3DModel(**WAN_COMMON, **WAN_VACE[size]).eval()
        text_encoder = UMT5EncoderModel(UMT5Config(**UMT5_XXL)).eval()
    with building(torch, device, torch.float32):
        vae = AutoencoderKLWan().eval()  # the real Wan 2.1 VAE's config is the default
    scheduler = UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0
    )
    # The tokenizer only turns the prompt into ids; the encoder always sees 512 tokens.
    return WanVACEPipeline(
        tokenizer=tiny_tokenizer(),
        text_encoder=text_encoder,
        vae=vae,
        scheduler=scheduler,
        transformer=transformer,
    )


def sample_request(args: argparse.Namespace) -> Any:
    from r2v.engines.base import EngineRequest, ImageInput
    from tests.mediafiles import make_image

    picture = make_image(Path(tempfile.mkdtemp()) / "subject.jpg", 640, 480, seed=1)
    return EngineRequest(
        model="seedance-2.0-reference-to-video",
        preset="standard",
        prompt="The dog from @Image1 walks through a park at sunrise, the camera follows it",
        resolution=args.resolution,
        aspect_ratio="16:9",
        duration=args.duration,
        generate_audio=False,
        seed=1,
        images=(ImageInput(picture, 640, 480),),
    )


def bare_inputs(request: Any, plan: Any) -> dict[str, Any]:
    """The arguments the engine passes for this request, built as a caller of diffusers would."""
    from r2v.engines.diffusers.conditioning import reference_images
    from r2v.engines.diffusers.prompt import NEGATIVE_PROMPT, Pins, rewrite_prompt

    guided = plan.sampling.guidance > 1
    return {
        "prompt": rewrite_prompt(request),
        "negative_prompt": NEGATIVE_PROMPT if guided else None,
        "reference_images": reference_images(request, plan, Pins()),
        "height": plan.gen_height,
        "width": plan.gen_width,
        "num_frames": plan.segments[0].frames,
        "num_inference_steps": plan.sampling.steps,
        "guidance_scale": plan.sampling.guidance,
        "output_type": "pt",
    }


def bare(pipeline: Any, inputs: dict[str, Any], torch: Any) -> Run:
    clock = Clock(Path("."))
    reset_memory(torch)
    started = time.perf_counter()
    pipeline(
        **inputs,
        generator=torch.Generator().manual_seed(1),
        callback_on_step_end=clock.on_step,
    )
    synchronize(torch)
    total = time.perf_counter() - started
    return Run("diffusers pipeline, bare", median_step(clock.stamps), total, peak_memory(torch))


def through_engine(engine: Any, request: Any, torch: Any) -> Run:
    with tempfile.TemporaryDirectory() as workspace:
        clock = Clock(Path(workspace))
        reset_memory(torch)
        started = time.perf_counter()
        engine.generate(request, clock)
        total = time.perf_counter() - started
    # Reports: 0, after preparing, one per step, then every second of encoded video; the
    # gaps between steps compare with the bare run's (whose first step has no start mark).
    steps = engine.plan(request).steps
    return Run("r2v diffusers engine", median_step(clock.stamps[2 : steps + 2]), total,
               peak_memory(torch))  # fmt: skip


def median_step(stamps: list[float]) -> float:
    gaps = [later - earlier for earlier, later in zip(stamps, stamps[1:], strict=False)]
    return statistics.median(gaps) if gaps else float("nan")


def synchronize(torch: Any) -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def reset_memory(torch: Any) -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def peak_memory(torch: Any) -> float | None:
    if torch.cuda.is_available():
        return float(torch.cuda.max_memory_allocated()) / 2**30
    return None


def device_peak(args: argparse.Namespace, torch: Any) -> tuple[float, str]:
    """FLOP/s the device can do at best, and where the number comes from."""
    if args.peak_tflops:
        return args.peak_tflops * 1e12, "given"
    if args.device.startswith("cuda"):
        name = torch.cuda.get_device_name()
        for piece, tflops in PEAK_BF16_TFLOPS:
            if piece in name:
                return tflops * 1e12, f"{name}, dense bf16 spec"
    dtype = getattr(torch, args.dtype)
    return measured_matmul(torch, args.device, dtype), f"measured {args.dtype} matmul"


def measured_matmul(torch: Any, device: str, dtype: Any, size: int = 2048) -> float:
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b  # warm-up
    synchronize(torch)
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < 1.0:
        a @ b
        count += 1
    synchronize(torch)
    return float(2 * size**3 * count / (time.perf_counter() - started))


def report(
    args: argparse.Namespace,
    label: str,
    engine: Any,
    request: Any,
    plan: Any,
    runs: list[Run],
    torch: Any,
) -> None:
    from r2v.engines.diffusers.flops import step_cost

    guided = plan.sampling.guidance > 1
    cost = step_cost(
        dict(engine.pipeline.transformer.config),
        plan.segments[0].frames,
        plan.gen_width,
        plan.gen_height,
        references=len(request.images),
        guided=guided,
    )
    peak, source = device_peak(args, torch)
    floor = cost.total / peak
    print(f"model:   {label}")
    print(f"device:  {args.device} {args.dtype}; peak {peak / 1e12:.3g} TFLOP/s ({source})")
    print(
        f"shape:   {plan.gen_width}x{plan.gen_height} x {plan.segments[0].frames} frames "
        f"({cost.tokens} tokens) -> {plan.width}x{plan.height} x {plan.frames} at 24 fps; "
        f"{plan.sampling.steps} steps, guidance {plan.sampling.guidance}"
    )
    print(f"floor:   {cost.total / 1e12:.4g} TFLOP a step -> {floor * 1e3:.4g} ms a step")
    print()
    print("| run | step (median) | end to end | peak GPU memory | floor / step |")
    print("| --- | --- | --- | --- | --- |")
    for run in runs:
        memory = "n/a (CPU)" if run.memory is None else f"{run.memory:.1f} GiB"
        print(
            f"| {run.name} | {run.step * 1e3:.1f} ms | {run.total:.2f} s | {memory} "
            f"| {floor / run.step:.1%} |"
        )
    if not torch.cuda.is_available():
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(f"\nprocess peak RSS: {rss:.2f} GiB")


if __name__ == "__main__":
    main()
