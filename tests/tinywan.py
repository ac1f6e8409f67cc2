"""A tiny, randomly initialised Wan VACE pipeline, built on the spot (no download).

The diffusers engine's tests and `bench/diffusers.py --toy` need a pipeline of the real
architecture small enough to run on two CPU cores in seconds: the WanVACE transformer and
the Wan VAE from small configs (the sizes diffusers' own fast tests use), a UMT5 encoder
from a small config, and a Unigram tokenizer made with the `tokenizers` library from a
word list. `save_tiny_pipeline` writes it with `save_pretrained`, so the engine loads it
through exactly the code that loads real weights.

Everything here imports torch: import this module only where torch is installed.
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import torch
from diffusers import (
    AutoencoderKLWan,
    FlowMatchEulerDiscreteScheduler,
    WanVACEPipeline,
    WanVACETransformer3DModel,
)
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast, UMT5Config, UMT5EncoderModel

TEXT_DIM = 32
"""Width of the tiny text encoder, which the transformer's text projection must match."""

TOY_LIMITS = {"max_area": 64 * 48, "max_frames": 17, "fps": 8}
"""Generation limits for the tiny model (`r2v.json`): a 4 s video is three 17-frame passes
at about 64x48, which two CPU cores denoise in a second or two."""

# A handful of whole words the prompts in the tests use, so they tokenize into words rather
# than letters; anything else falls back to single characters, never to <unk> for ASCII.
_WORDS = (
    "the first second third reference image video music sound frame last of a an and "
    "with as in on at to slowly comes alive plays camera moves dog cat walks park city "
    "night sunrise over valley"
).split()


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A Unigram tokenizer in the T5 layout: pad 0, end-of-sequence 1, unknown 2."""
    pieces: list[tuple[str, float]] = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    pieces += [("\u2581" + word, -2.0) for word in _WORDS]
    pieces += [("\u2581", -4.0)]
    pieces += [(char, -5.0) for char in string.ascii_lowercase + string.digits + ".,;:!?'\"-@"]
    tokenizer = Tokenizer(models.Unigram(pieces, unk_id=2, byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", 1)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=512,
    )


def tiny_components(seed: int = 0) -> dict[str, Any]:
    """The five components of a WanVACEPipeline, randomly initialised from `seed`."""
    tokenizer = tiny_tokenizer()
    torch.manual_seed(seed)
    text_encoder = UMT5EncoderModel(
        UMT5Config(
            vocab_size=len(tokenizer),
            d_model=TEXT_DIM,
            d_kv=8,
            d_ff=64,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
            relative_attention_max_distance=32,
            dropout_rate=0.0,
            feed_forward_proj="gated-gelu",
        )
    ).eval()
    torch.manual_seed(seed)
    vae = AutoencoderKLWan(
        base_dim=3,
        z_dim=16,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    )
    torch.manual_seed(seed)
    transformer = WanVACETransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=16,
        out_channels=16,
        text_dim=TEXT_DIM,
        freq_dim=256,
        ffn_dim=32,
        num_layers=3,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=1024,
        vace_layers=[0, 2],
        vace_in_channels=96,
    )
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0)
    return {
        "tokenizer": tokenizer,
        "text_encoder": text_encoder,
        "vae": vae,
        "scheduler": scheduler,
        "transformer": transformer,
    }


def tiny_pipeline(seed: int = 0) -> WanVACEPipeline:
    """A tiny WanVACEPipeline in memory, in float32 on the CPU."""
    return WanVACEPipeline(**tiny_components(seed))


def save_tiny_pipeline(
    directory: Path, seed: int = 0, limits: dict[str, int] | None = TOY_LIMITS
) -> Path:
    """Write a tiny pipeline to `directory` as a diffusers weights directory; return it.

    `limits` go into the directory's `r2v.json` (None: no file, the engine's defaults).
    """
    tiny_pipeline(seed).save_pretrained(str(directory))
    if limits is not None:
        (directory / "r2v.json").write_text(json.dumps(limits))
    return directory


def save_tiny_lora(directory: Path, seed: int = 1) -> Path:
    """Write a random rank-4 LoRA for the tiny transformer's attention; return its file.

    Its up-projections are random too (not zero as in training), so it changes the output.
    """
    from peft import LoraConfig, get_peft_model_state_dict

    transformer = tiny_components()["transformer"]
    torch.manual_seed(seed)
    transformer.add_adapter(
        LoraConfig(
            r=4,
            lora_alpha=4,
            target_modules=["to_q", "to_k", "to_v", "to_out.0"],
            init_lora_weights=False,
        )
    )
    WanVACEPipeline.save_lora_weights(
        str(directory), transformer_lora_layers=get_peft_model_state_dict(transformer)
    )
    return directory / "pytorch_lora_weights.safetensors"
