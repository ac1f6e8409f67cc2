"""The diffusers engine: open-weight reference-to-video with a Wan VACE pipeline.

`generate` reads like a pipeline call: check and plan (sizes, lengths, segments), prepare
(the prompt in plain words, reference images, conditioning frames and masks, the sound),
generate (denoise each segment, reporting progress per step), encode (fit every frame to
the exact output size, retime to 24 fps, mux the sound). The weights load once per process
(`load`, idempotent and thread-safe) and stay resident; renders on one pipeline take turns.

Cancellation and timeouts arrive as exceptions from `context.progress`, called after every
denoising step; they propagate out of the pipeline, and nothing is written until the last
step is done (the writer deletes a partial file if encoding is interrupted).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from r2v.engines.base import EngineRequest, EngineResult, RenderContext
from r2v.engines.diffusers.conditioning import (
    Conditioning,
    conditioning,
    reference_images,
    segment_inputs,
)
from r2v.engines.diffusers.config import (
    DiffusersConfig,
    GenerationLimits,
    generation_limits,
    model_width,
    parse_cache,
    sampling,
    transformer_config,
)
from r2v.engines.diffusers.flops import step_cost
from r2v.engines.diffusers.loading import (
    Pipeline,
    configure_pipeline,
    import_torch,
    load_pipeline,
    scheduler_with_shift,
)
from r2v.engines.diffusers.plan import RenderPlan, make_plan
from r2v.engines.diffusers.prompt import (
    NEGATIVE_PROMPT,
    conditioning_video,
    find_pins,
    rewrite_prompt,
)
from r2v.engines.diffusers.sound import soundtrack
from r2v.errors import EngineUnavailable, GenerationFailed
from r2v.media.encode import Mp4Writer
from r2v.media.fit import fit_frame
from r2v.protocol import FPS

RGBFrame = NDArray[np.uint8]

OUTPUT_NAME = "diffusers.mp4"

# Shares of the progress bar: preparing references, denoising, decoding and encoding.
_PREPARE_SHARE = 0.05
_DENOISE_SHARE = 0.85

# The time estimate: a sustained rate for the transformer's FLOPs (about 40% of an H100's
# bf16 peak on CUDA; a 2-core CPU's float32 rate), plus the VAE and the encoder per frame.
_SUSTAINED_FLOPS = {"cuda": 4e14, "cpu": 2e10}
_SECONDS_PER_FRAME = {"cuda": 0.05, "cpu": 0.05}
_FIXED_SECONDS = 3.0


@dataclass
class _Loaded:
    pipeline: Pipeline
    torch: Any
    limits: GenerationLimits
    schedulers: dict[float, Any] = field(default_factory=dict)


class DiffusersEngine:
    """Renders requests with a Wan VACE diffusers pipeline loaded from a local directory.

    `pipeline` hands over an already built `WanVACEPipeline` instead of loading the weights
    directory (the benchmark does this with randomly initialised full-size models); it is
    configured like loaded weights.
    """

    name = "diffusers"

    def __init__(self, config: DiffusersConfig, *, pipeline: Pipeline | None = None) -> None:
        parse_cache(config.cache)  # a typo in the settings fails at start-up, not mid-task
        self.config = config
        self._given = pipeline
        self._loaded: _Loaded | None = None
        self._load_lock = threading.Lock()
        self._render_lock = threading.Lock()

    def load(self) -> None:
        """Load and configure the pipeline once; later calls return at once."""
        with self._load_lock:
            if self._loaded is not None:
                return
            if self._given is not None:
                pipeline = configure_pipeline(self._given, self.config)
            else:
                pipeline = load_pipeline(self.config)
            self._check_layout(pipeline)
            transformer = dict(pipeline.transformer.config)
            limits = generation_limits(self.config, model_width(transformer))
            self._loaded = _Loaded(pipeline, import_torch(), limits)

    @property
    def pipeline(self) -> Pipeline:
        """The loaded pipeline (loading it first if needed)."""
        return self._ensure_loaded().pipeline

    def plan(self, request: EngineRequest) -> RenderPlan:
        """Sizes, lengths, segments and schedule `generate` would use for `request`."""
        limits = self._limits()
        return make_plan(
            request, limits, sampling(self.config, request.resolution), self.config.overlap
        )

    def estimate_seconds(self, request: EngineRequest) -> int:
        """A rough estimate from the transformer's FLOPs per step (no GPU measurement yet)."""
        plan = self.plan(request)
        transformer = self._transformer_config()
        cost = step_cost(
            transformer,
            plan.segments[0].frames,
            plan.gen_width,
            plan.gen_height,
            references=len(request.images),
            guided=plan.sampling.guidance > 1.0,
        )
        kind = "cpu" if self.config.device.startswith("cpu") else "cuda"
        seconds = (
            _FIXED_SECONDS
            + plan.steps * cost.total / _SUSTAINED_FLOPS[kind]
            + plan.frames * _SECONDS_PER_FRAME[kind]
        )
        return max(1, math.ceil(seconds))

    def generate(self, request: EngineRequest, context: RenderContext) -> EngineResult:
        """Render `request` into `diffusers.mp4` in the context's workspace."""
        # 1. Check inputs and plan: the model, the sizes, the frames and the segments.
        loaded = self._ensure_loaded()
        plan = self.plan(request)
        pins = find_pins(request)
        video = conditioning_video(request)
        context.progress(0.0)

        # 2. Prepare: the prompt in words, reference images, conditioning frames, sound.
        prompt = rewrite_prompt(request)
        references = reference_images(request, plan, pins)
        whole = conditioning(request, plan, pins, video)
        audio = soundtrack(request, plan.seconds, video)
        context.progress(_PREPARE_SHARE)

        # 3. Generate every segment, one render at a time on this pipeline.
        def denoised(steps: int) -> None:
            context.progress(_PREPARE_SHARE + _DENOISE_SHARE * steps / plan.steps)

        with self._render_lock:
            frames = self._denoise(loaded, plan, prompt, references, whole, request.seed, denoised)

        # 4. Encode: fit to the exact size, retime to 24 fps, mux the sound.
        path = context.workspace / OUTPUT_NAME
        done = _PREPARE_SHARE + _DENOISE_SHARE
        with Mp4Writer(path, plan.width, plan.height, preset=request.preset, audio=audio) as out:
            write_frames(
                frames, plan, out, lambda share: context.progress(done + (1 - done) * share)
            )
        return EngineResult(
            path=path,
            width=plan.width,
            height=plan.height,
            frames=plan.frames,
            has_audio=audio is not None,
        )

    def _denoise(
        self,
        loaded: _Loaded,
        plan: RenderPlan,
        prompt: str,
        references: list[Image.Image],
        whole: Conditioning,
        seed: int,
        denoised: Callable[[int], None],
    ) -> list[RGBFrame]:
        torch, pipeline = loaded.torch, loaded.pipeline
        schedule = plan.sampling
        if schedule.shift not in loaded.schedulers:
            loaded.schedulers[schedule.shift] = scheduler_with_shift(
                pipeline.scheduler, schedule.shift
            )
        pipeline.scheduler = loaded.schedulers[schedule.shift]
        guided = schedule.guidance > 1.0
        # A CPU generator draws the same noise whatever the device: a seed renders alike on
        # any GPU, and on the CPU in tests.
        generator = torch.Generator(device="cpu").manual_seed(seed)
        generated: list[RGBFrame] = []
        for number, segment in enumerate(plan.segments):
            carried = generated[segment.start :]
            inputs = segment_inputs(whole, segment, carried)
            before = number * schedule.steps

            def on_step(_pipe: Any, step: int, _t: Any, tensors: dict[str, Any]) -> dict[str, Any]:
                denoised(before + step + 1)  # noqa: B023 - called before the loop moves on
                return tensors

            try:
                output = pipeline(
                    prompt=prompt,
                    negative_prompt=NEGATIVE_PROMPT if guided else None,
                    video=inputs[0] if inputs else None,
                    mask=inputs[1] if inputs else None,
                    reference_images=references or None,
                    height=plan.gen_height,
                    width=plan.gen_width,
                    num_frames=segment.frames,
                    num_inference_steps=schedule.steps,
                    guidance_scale=schedule.guidance,
                    generator=generator,
                    output_type="pt",
                    callback_on_step_end=on_step,
                )
            except BaseException as error:
                # An interrupted call skips the pipeline's own clean-up: reset the step cache
                # and the offload hooks, so the next render starts fresh.
                pipeline.maybe_free_model_hooks()
                if isinstance(error, torch.cuda.OutOfMemoryError):
                    raise GenerationFailed(
                        f"the GPU ran out of memory generating {plan.gen_width}x"
                        f"{plan.gen_height} x {segment.frames} frames; ask for 480p or a "
                        "shorter video, or run this model with offload"
                    ) from error
                raise
            frames = to_frames(torch, output.frames[0])
            generated.extend(frames[len(carried) :])
        return generated

    def _ensure_loaded(self) -> _Loaded:
        if self._loaded is None:
            self.load()
        assert self._loaded is not None
        return self._loaded

    def _limits(self) -> GenerationLimits:
        if self._loaded is not None:
            return self._loaded.limits
        return generation_limits(self.config, model_width(self._transformer_config()))

    def _transformer_config(self) -> dict[str, object]:
        if self._loaded is not None:
            return dict(self._loaded.pipeline.transformer.config)
        if self._given is not None:
            return dict(self._given.transformer.config)
        return transformer_config(self.config.weights_dir)

    @staticmethod
    def _check_layout(pipeline: Pipeline) -> None:
        # The plan assumes Wan 2.1's layout: 8x8 pixels and 4 frames per latent, 1x2x2 patches.
        patch = tuple(pipeline.transformer.config.patch_size)
        spatial, temporal = pipeline.vae_scale_factor_spatial, pipeline.vae_scale_factor_temporal
        if (spatial, temporal, patch) != (8, 4, (1, 2, 2)):
            raise EngineUnavailable(
                f"the pipeline compresses {spatial}x{spatial} pixels, {temporal} frames and "
                f"patches {patch}; the diffusers engine runs Wan 2.1 VACE models (8, 4, 1x2x2)"
            )


def to_frames(torch: Any, video: Any) -> list[RGBFrame]:
    """A (frames, 3, H, W) tensor in 0-1 as HxWx3 uint8 RGB arrays, converted on its device."""
    pixels = (video.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1)
    array: RGBFrame = np.ascontiguousarray(pixels.cpu().numpy())
    return list(array)


def write_frames(
    frames: list[RGBFrame], plan: RenderPlan, out: Mp4Writer, progress: Callable[[float], None]
) -> None:
    """Write `plan.frames` output frames: each the generated frame showing at its moment."""
    shown, picture = -1, None
    for index in range(plan.frames):
        source = plan.source_frame(index)
        if source != shown or picture is None:
            picture = fit_frame(frames[source], (plan.width, plan.height))
            shown = source
        out.write(picture)
        if (index + 1) % FPS == 0 or index + 1 == plan.frames:
            progress((index + 1) / plan.frames)
