"""The arithmetic a Wan VACE denoising step cannot avoid: its FLOP floor.

A step runs the transformer over the video's latent tokens once, twice with
classifier-free guidance. After the VAE (4x in time, 8x8 in space) and the 1x2x2 patches,
a clip of F frames at W x H has ((F - 1) / 4 + 1 + references) x H/16 x W/16 tokens. Each
block (the main ones and VACE's) costs, per token, 2 FLOPs per weight of the linear
layers it applies to tokens (self-attention q, k, v, o; cross-attention q, o; the
feed-forward), and attention itself 4 x tokens x keys x width (QK^T and AV). Text keys and
values are computed once per call over the text tokens. Norms, modulation, rotary
embeddings and the VAE are left out: the floor is a lower bound.

`bench/diffusers.py` divides it by the device's peak to say how close a run comes, and the
engine's time estimate divides it by an assumed sustained rate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

TEXT_TOKENS = 512
"""UMT5 sequence length the Wan pipeline pads every prompt to."""
LATENT_CHANNELS = 16
VACE_CHANNELS = 96


@dataclass(frozen=True)
class StepCost:
    """FLOPs of one denoising step, split by kind."""

    tokens: int
    linear: float
    attention: float
    guided: bool

    @property
    def total(self) -> float:
        """All FLOPs of the step (both guidance passes when guided)."""
        return (self.linear + self.attention) * (2 if self.guided else 1)


def latent_tokens(frames: int, width: int, height: int, references: int = 0) -> int:
    """Transformer tokens of a clip: latent frames x (H/16) x (W/16)."""
    latent_frames = (frames - 1) // 4 + 1 + references
    return latent_frames * (height // 16) * (width // 16)


def step_cost(
    transformer: Mapping[str, object],
    frames: int,
    width: int,
    height: int,
    *,
    references: int = 0,
    guided: bool = True,
) -> StepCost:
    """The FLOP floor of one step of a WanVACE transformer with this `config.json`."""
    heads = _int(transformer, "num_attention_heads", 40)
    dim = heads * _int(transformer, "attention_head_dim", 128)
    ffn = _int(transformer, "ffn_dim", 13824)
    layers = _int(transformer, "num_layers", 40)
    vace = transformer.get("vace_layers", [])
    blocks = layers + (len(vace) if isinstance(vace, list) else 0)
    vace_blocks = blocks - layers
    tokens = latent_tokens(frames, width, height, references)
    patch = 4  # 1 x 2 x 2
    per_token = (
        blocks * (6 * dim * dim + 2 * dim * ffn)
        + vace_blocks * dim * dim  # each VACE block's output projection
        + dim * dim  # the first VACE block's input projection
        + (LATENT_CHANNELS + VACE_CHANNELS) * patch * dim  # patch embeddings
        + dim * LATENT_CHANNELS * patch  # the output head
    )
    text = blocks * 2 * dim * dim * TEXT_TOKENS  # cross-attention keys and values
    linear = 2.0 * (per_token * tokens + text)
    attention = 4.0 * blocks * dim * tokens * (tokens + TEXT_TOKENS)
    return StepCost(tokens=tokens, linear=linear, attention=attention, guided=guided)


def _int(config: Mapping[str, object], key: str, default: int) -> int:
    value = config.get(key, default)
    return value if isinstance(value, int) else default
