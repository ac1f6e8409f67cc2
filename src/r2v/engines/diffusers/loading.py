"""Loading the Wan VACE pipeline from a local directory and making it ready to run.

Nothing here runs at import: torch and diffusers are imported inside the functions, so the
default install (and the API-only processes of a scale-out deployment) never import them.
Weights load from the directory only (`local_files_only`), never from a hub. Then, in this
order: a LoRA is fused into the transformer (no per-step cost afterwards), the attention
backend and the step cache are set, the pipeline is placed on its device or behind CPU
offload, and the transformer's repeated blocks are compiled if asked.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from r2v.engines.diffusers.cache import enable_first_block_cache
from r2v.engines.diffusers.config import DiffusersConfig, parse_cache
from r2v.errors import EngineUnavailable

log = logging.getLogger("r2v.diffusers")

INSTALL_HINT = (
    "the diffusers engine needs `pip install 'r2v[diffusers]'` (torch, diffusers, "
    "transformers, accelerate, peft, ftfy); install the torch build for your GPU first"
)
LORA_ADAPTER = "r2v"

Pipeline = Any
"""A diffusers `WanVACEPipeline` (typed loosely: torch is an optional dependency)."""


def import_torch() -> Any:
    """The `torch` module, once diffusers and what the Wan pipeline needs import too."""
    try:
        import torch  # noqa: I001 - torch first: it is the one most likely missing
        import diffusers  # noqa: F401
        import transformers  # noqa: F401
        import ftfy  # noqa: F401 - the Wan pipeline cleans every prompt with it
    except ImportError as error:
        missing = error.name or str(error)
        raise EngineUnavailable(f"{INSTALL_HINT} ({missing} is not installed)") from error
    return torch


def load_pipeline(config: DiffusersConfig) -> Pipeline:
    """The pipeline in `config.weights_dir`, configured by `configure_pipeline`."""
    torch = import_torch()
    from diffusers import WanVACEPipeline

    directory = config.weights_dir
    if not (directory / "model_index.json").is_file():
        raise EngineUnavailable(
            f"{directory} holds no diffusers pipeline (model_index.json is missing); put a Wan "
            "VACE pipeline in diffusers format there, e.g. Wan-AI/Wan2.1-VACE-14B-diffusers, "
            "and point R2V_MODELS__<MODEL>__WEIGHTS_DIR at it"
        )
    check_device(torch, config.device)
    dtype = getattr(torch, config.dtype)
    try:
        # The VAE stays in float32, as Wan's examples run it: in half precision its decoder
        # bands and blotches the picture, for little memory.
        pipeline = WanVACEPipeline.from_pretrained(
            str(directory),
            dtype={"default": dtype, "vae": torch.float32},
            local_files_only=True,
        )
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as error:
        raise EngineUnavailable(
            f"the Wan VACE pipeline in {directory} could not be loaded ({error}); check that "
            "the directory is a complete diffusers-format WanVACEPipeline"
        ) from error
    return configure_pipeline(pipeline, config)


def check_device(torch: Any, device: str) -> None:
    """Refuse a device torch cannot use, saying what to set instead."""
    try:
        kind = torch.device(device).type
    except RuntimeError as error:
        raise EngineUnavailable(f"device {device!r} is not a torch device ({error})") from error
    if kind == "cuda" and not torch.cuda.is_available():
        raise EngineUnavailable(
            f"device is {device!r} but torch {torch.__version__} sees no CUDA GPU; install a "
            "CUDA build of torch, or set R2V_MODELS__<MODEL>__DEVICE=cpu to render (slowly) "
            "on the CPU"
        )


def configure_pipeline(pipeline: Pipeline, config: DiffusersConfig) -> Pipeline:
    """Fuse the LoRA, set attention and cache, place on the device, compile; in that order."""
    torch = import_torch()
    check_device(torch, config.device)
    pipeline.set_progress_bar_config(disable=True)
    if config.lora_dir is not None:
        fuse_lora(pipeline, config.lora_dir, config.lora_scale)
    denoisers = [t for t in (pipeline.transformer, pipeline.transformer_2) if t is not None]
    if config.attention_backend:
        for transformer in denoisers:
            try:
                transformer.set_attention_backend(config.attention_backend)
            except (ValueError, RuntimeError, ImportError) as error:
                raise EngineUnavailable(
                    f"attention backend {config.attention_backend!r} cannot run here ({error}); "
                    "`native` (PyTorch SDPA) always can"
                ) from error
    cache = parse_cache(config.cache)
    if cache is not None:
        for transformer in denoisers:
            enable_first_block_cache(transformer, cache.threshold)
    place(pipeline, config, torch)
    if config.compile:
        for transformer in denoisers:
            # Compiling the one repeated block, not the whole model, takes seconds, not
            # minutes, for nearly the same speed-up.
            transformer.compile_repeated_blocks(fullgraph=True)
    return pipeline


def place(pipeline: Pipeline, config: DiffusersConfig, torch: Any) -> None:
    """Move the pipeline to its device, or keep it in CPU memory behind offload hooks."""
    if config.offload == "none":
        pipeline.to(config.device)
        return
    if torch.device(config.device).type == "cpu":
        raise EngineUnavailable(
            f"offload={config.offload!r} moves weights between CPU memory and a GPU; with "
            "device=cpu set R2V_MODELS__<MODEL>__OFFLOAD=none"
        )
    if config.offload == "model":
        pipeline.enable_model_cpu_offload(device=config.device)
    else:
        pipeline.enable_sequential_cpu_offload(device=config.device)


def lora_file(path: Path) -> Path:
    """The LoRA's safetensors file: `path` itself, or the only one in the directory."""
    if path.is_file():
        return path
    found = sorted(path.glob("*.safetensors")) if path.is_dir() else []
    if len(found) != 1:
        raise EngineUnavailable(
            f"lora_dir {path} must be a .safetensors file or a directory holding exactly one; "
            f"found {len(found)}"
        )
    return found[0]


def fuse_lora(pipeline: Pipeline, path: Path, scale: float) -> None:
    """Load a LoRA from disk, fuse it into the transformer at `scale`, drop the adapter."""
    weights = lora_file(path)
    try:
        pipeline.load_lora_weights(
            str(weights.parent),
            weight_name=weights.name,
            adapter_name=LORA_ADAPTER,
            local_files_only=True,
        )
        pipeline.fuse_lora(lora_scale=scale, adapter_names=[LORA_ADAPTER])
        pipeline.unload_lora_weights()
    except ImportError as error:
        raise EngineUnavailable(f"{INSTALL_HINT} (loading a LoRA needs {error.name})") from error
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        raise EngineUnavailable(
            f"the LoRA {weights} could not be loaded into this pipeline ({error}); it must be "
            "a Wan 2.1 LoRA of the same model size"
        ) from error
    log.info("fused LoRA %s at scale %s", weights, scale)


def scheduler_with_shift(scheduler: Any, shift: float) -> Any:
    """The pipeline's scheduler, rebuilt with this flow shift (UniPC's or Euler's name)."""
    settings = scheduler.config
    if "flow_shift" in settings:
        return type(scheduler).from_config(settings, flow_shift=shift)
    if "shift" in settings:
        return type(scheduler).from_config(settings, shift=shift)
    return scheduler
