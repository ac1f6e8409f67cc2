"""How the diffusers engine is configured, and the per-preset defaults it falls back on.

`DiffusersConfig` is what `bootstrap.py` builds from a model's settings; the fields left
`None` are resolved here, once, into `Sampling` (steps, guidance, scheduler shift) for each
request. The generation limits (`max_area`, `max_frames`, `fps`) say what the model was
trained to generate; the engine generates within them and resizes and retimes the result
to the API's exact size and 24 fps. They come from the config, else from an optional
`r2v.json` in the weights directory, else from the model's width (see `GenerationLimits`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from r2v.engines.base import Preset
from r2v.errors import EngineUnavailable
from r2v.protocol import Resolution

Dtype = Literal["bfloat16", "float16", "float32"]
Offload = Literal["none", "model", "sequential"]

LIMITS_FILE = "r2v.json"
"""Optional file in the weights directory: `{"max_area": …, "max_frames": …, "fps": …}`."""

# Wan 2.1 was trained at 16 fps on clips of 81 frames (5 s); the 1.3B model at 480p only,
# the 14B model at 480p and 720p. Transformers up to this width are the 1.3B class.
WAN_FPS = 16
WAN_FRAMES = 81
AREA_480P = 832 * 480
AREA_720P = 1280 * 720
SMALL_MODEL_WIDTH = 2048

# Standard favours quality: the step count and guidance of Wan's own examples. Fast halves
# the steps; with a step-distilled LoRA (lightx2v, CausVid) it takes 4 steps without
# classifier-free guidance, which is what those LoRAs are distilled for.
_STEPS: dict[Preset, int] = {"standard": 30, "fast": 15}
_GUIDANCE: dict[Preset, float] = {"standard": 5.0, "fast": 5.0}
_DISTILLED_STEPS = 4
_DISTILLED_GUIDANCE = 1.0
# Wan recommends a flow shift of 3 at 480p and 5 at 720p: more shift spends more of the
# schedule at high noise, which larger pictures need to settle their layout.
_SHIFT: dict[Resolution, float] = {"480p": 3.0, "720p": 5.0}


@dataclass(frozen=True)
class DiffusersConfig:
    """One model's diffusers engine: where the weights are and how to run them.

    `steps`, `guidance` and `shift` left `None` take the preset's defaults (`Sampling`);
    the generation limits left `None` come from `r2v.json` or the model (`GenerationLimits`).
    """

    weights_dir: Path
    preset: Preset = "standard"
    steps: int | None = None
    guidance: float | None = None
    shift: float | None = None
    dtype: Dtype = "bfloat16"
    device: str = "cuda"
    lora_dir: Path | None = None
    lora_scale: float = 1.0
    attention_backend: str | None = None
    cache: str | None = None
    offload: Offload = "none"
    compile: bool = False
    max_area: int | None = None
    """Largest width x height generated; larger outputs are generated smaller and upscaled."""
    max_frames: int | None = None
    """Longest clip generated in one pass (4k+1); longer videos are generated in segments."""
    fps: int | None = None
    """The frame rate the model generates at; the output is retimed to 24 fps."""
    overlap: int = 5
    """Frames each later segment repeats from the one before, as conditioning, for continuity."""

    @property
    def distilled(self) -> bool:
        """Whether the fast preset runs a step-distilled LoRA (few steps, no guidance)."""
        return self.preset == "fast" and self.lora_dir is not None


@dataclass(frozen=True)
class Sampling:
    """The denoising schedule of one request."""

    steps: int
    guidance: float
    shift: float


def sampling(config: DiffusersConfig, resolution: Resolution) -> Sampling:
    """The config's steps, guidance and shift, with the preset's defaults for those unset."""
    if config.distilled:
        steps, guidance = _DISTILLED_STEPS, _DISTILLED_GUIDANCE
    else:
        steps, guidance = _STEPS[config.preset], _GUIDANCE[config.preset]
    return Sampling(
        steps=config.steps if config.steps is not None else steps,
        guidance=config.guidance if config.guidance is not None else guidance,
        shift=config.shift if config.shift is not None else _SHIFT[resolution],
    )


@dataclass(frozen=True)
class GenerationLimits:
    """What one pass of the model generates at most, and at which frame rate."""

    max_area: int
    max_frames: int
    fps: int


def generation_limits(config: DiffusersConfig, model_width: int | None) -> GenerationLimits:
    """The config's limits, else `r2v.json`'s, else Wan's for a model of this width.

    `model_width` is the transformer's hidden size (heads x head dim), None when unknown;
    the 1.3B class gets 480p's area, larger models 720p's.
    """
    found = _limits_file(config.weights_dir)
    default_area = (
        AREA_480P if model_width is not None and model_width <= SMALL_MODEL_WIDTH else (AREA_720P)
    )
    limits = GenerationLimits(
        max_area=int(found.get("max_area", default_area)),
        max_frames=int(found.get("max_frames", WAN_FRAMES)),
        fps=int(found.get("fps", WAN_FPS)),
    )
    if config.max_area is not None:
        limits = replace(limits, max_area=config.max_area)
    if config.max_frames is not None:
        limits = replace(limits, max_frames=config.max_frames)
    if config.fps is not None:
        limits = replace(limits, fps=config.fps)
    if limits.max_frames < 5 or limits.max_frames % 4 != 1:
        raise EngineUnavailable(
            f"max_frames is {limits.max_frames}; Wan generates 4k+1 frames (e.g. 81 or 49)"
        )
    if limits.max_area < 16 * 16 or limits.fps < 1:
        raise EngineUnavailable(f"the generation limits {limits} are too small to generate with")
    return limits


def _limits_file(weights_dir: Path) -> dict[str, int]:
    path = weights_dir / LIMITS_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise EngineUnavailable(f"{path} is not readable JSON ({error})") from error
    known = {"max_area", "max_frames", "fps"}
    if not isinstance(data, dict) or not all(
        key in known and isinstance(value, int) and not isinstance(value, bool)
        for key, value in data.items()
    ):
        raise EngineUnavailable(f"{path} may only hold whole numbers for {sorted(known)}")
    return data


@dataclass(frozen=True)
class CacheSpec:
    """A step cache for the transformer: diffusers' FirstBlockCache and its threshold."""

    kind: Literal["first_block"]
    threshold: float


DEFAULT_FIRST_BLOCK_THRESHOLD = 0.05


def parse_cache(spec: str | None) -> CacheSpec | None:
    """`first_block`, `first_block:0.08`, `none` or None; anything else is refused."""
    if spec is None or spec.strip().lower() in ("", "none", "off"):
        return None
    kind, _, value = spec.strip().lower().partition(":")
    if kind.replace("-", "_") == "first_block":
        try:
            threshold = float(value) if value else DEFAULT_FIRST_BLOCK_THRESHOLD
        except ValueError:
            threshold = -1.0
        if threshold > 0:
            return CacheSpec("first_block", threshold)
    raise EngineUnavailable(
        f"cache {spec!r} is not understood; use `first_block` (FirstBlockCache, threshold "
        f"{DEFAULT_FIRST_BLOCK_THRESHOLD}), `first_block:<threshold>` or `none`"
    )


def transformer_config(weights_dir: Path) -> dict[str, object]:
    """The transformer's `config.json` from the weights directory; empty when absent."""
    path = weights_dir / "transformer" / "config.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def model_width(transformer: dict[str, object]) -> int | None:
    """Hidden size (heads x head dim) of a Wan transformer config, None when it lacks them."""
    heads, head_dim = transformer.get("num_attention_heads"), transformer.get("attention_head_dim")
    if isinstance(heads, int) and isinstance(head_dim, int):
        return heads * head_dim
    return None
