"""Model presets: ``paper`` (the published shapes) and ``tiny`` (trains and runs on a 2-core CPU).

``paper`` -- CogVideoX1.5-5B-I2V as released in diffusers layout (42 blocks,
48 heads x 64 = 3072 wide, patch 2 x 2 x 2, ofs embedding, T5-XXL text of 226
tokens, the 1.5 VAE with 8x spatial / 4x temporal compression and inverted
image-latent scaling), SketchDiT with L = 6, Video-XL memory (Qwen2-7B +
CLIP-L/336) and DGLM with M = 3 at LM layers 19, 23, 27. Segment defaults
follow the paper and the official release: F = 81 frames, C = 16 overlap, 50
DPM steps, CFG 6, colour-consistency fusion over the last 20 steps (the
paper's t_st = 20), at the paper's training resolution 1024 x 576 (the
backbone's native 1360 x 768 also works: RoPE adapts to any size).

``tiny`` -- the same code paths at toy size: a 6-block, 128-wide CogVideoX-1.5
transformer (patch_size_t = 2 like the real one, so the temporal padding,
Linear patch embedding, ofs embedding and "slice" RoPE are exercised exactly
as in ``paper``; it also halves the token count), SketchDiT L = 2 (injections
after blocks 2, 4, 6), a 3-level CogVideoX VAE (16..64 channels) with 4x
spatial compression and none in time, a 2-layer 64-wide T5 encoder with an offline word-level
tokenizer (:mod:`.text_tokenizer`), and the memory/DGLM ``tiny`` configs.
Segments of 17 frames (17 latents) overlapping by 4 frames, 128 x 128.

:func:`official` turns either preset into the layout of the official release
(CN-makers/LongAnimation, run through ``longanimation convert-official``):
same shapes and backbone, with the release's SketchDiT injection, DGLM layout
and Video-XL beacon settings (see :mod:`.official`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..errors import UserError
from .backbone import BackboneConfig
from .dglm import DGLMConfig
from .memory_model import MemoryModelConfig
from .sketch_dit import SketchDiTConfig
from .text_tokenizer import toon_vocabulary

PRESET_NAMES = ("tiny", "paper")

# CogVideoX-5B / 1.5 scheduler config (v-prediction, zero-terminal-SNR, trailing spacing).
SCHEDULER = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "clip_sample": False,
    "set_alpha_to_one": True,
    "steps_offset": 0,
    "prediction_type": "v_prediction",
    "timestep_spacing": "trailing",
    "rescale_betas_zero_snr": True,
    "snr_shift_scale": 1.0,
}

# CogVideoX1.5-5B-I2V transformer/config.json.
PAPER_TRANSFORMER = {
    "num_attention_heads": 48,
    "attention_head_dim": 64,
    "in_channels": 32,
    "out_channels": 16,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "time_embed_dim": 512,
    "ofs_embed_dim": 512,
    "text_embed_dim": 4096,
    "num_layers": 42,
    "dropout": 0.0,
    "attention_bias": True,
    "sample_width": 300,
    "sample_height": 300,
    "sample_frames": 81,
    "patch_size": 2,
    "patch_size_t": 2,
    "temporal_compression_ratio": 4,
    "max_text_seq_length": 226,
    "activation_fn": "gelu-approximate",
    "timestep_activation_fn": "silu",
    "norm_elementwise_affine": True,
    "norm_eps": 1e-5,
    "spatial_interpolation_scale": 1.875,
    "temporal_interpolation_scale": 1.0,
    "use_rotary_positional_embeddings": True,
    "use_learned_positional_embeddings": False,
    "patch_bias": False,
}

# CogVideoX1.5-5B-I2V vae/config.json.
PAPER_VAE = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["CogVideoXDownBlock3D"] * 4,
    "up_block_types": ["CogVideoXUpBlock3D"] * 4,
    "block_out_channels": [128, 256, 256, 512],
    "latent_channels": 16,
    "layers_per_block": 3,
    "act_fn": "silu",
    "norm_eps": 1e-6,
    "norm_num_groups": 32,
    "temporal_compression_ratio": 4,
    "sample_height": 480,
    "sample_width": 720,
    "scaling_factor": 0.7,
    "force_upcast": True,
    "use_quant_conv": False,
    "use_post_quant_conv": False,
    "invert_scale_latents": True,
}

# google/t5-v1_1-xxl, encoder only.
PAPER_TEXT_ENCODER = {
    "vocab_size": 32128,
    "d_model": 4096,
    "d_kv": 64,
    "d_ff": 10240,
    "num_layers": 24,
    "num_heads": 64,
    "relative_attention_num_buckets": 32,
    "relative_attention_max_distance": 128,
    "dropout_rate": 0.1,
    "layer_norm_epsilon": 1e-6,
    "feed_forward_proj": "gated-gelu",
    "is_encoder_decoder": False,
    "use_cache": False,
    "tie_word_embeddings": False,
    "pad_token_id": 0,
    "eos_token_id": 1,
}

TINY_TEXT_LENGTH = 32

TINY_TRANSFORMER = PAPER_TRANSFORMER | {
    "num_attention_heads": 4,
    "attention_head_dim": 32,
    "time_embed_dim": 64,
    "ofs_embed_dim": 64,
    "text_embed_dim": 64,
    "num_layers": 6,
    "sample_width": 32,
    "sample_height": 32,
    "sample_frames": 17,
    "max_text_seq_length": TINY_TEXT_LENGTH,
    "temporal_compression_ratio": 1,
}

# 4x spatial and no temporal compression instead of the paper's 8x / 4x: a VAE this narrow,
# trained from scratch on CPU, cannot keep 128 x 128 toon detail through more. Measured on
# unseen 17-frame toon clips (PSNR): 8x / 4x with 4..32 channels ~15 dB after 4000 steps;
# 4x / 4x with 16..64 channels 21.2 dB and 4x / 2x 21.4 dB after 1500 clip steps;
# 4x / 1x 33.4 dB (trained on single frames, then inflated: see training/stages/vae.py).
TINY_VAE = PAPER_VAE | {
    "temporal_compression_ratio": 1,
    "down_block_types": ["CogVideoXDownBlock3D"] * 3,
    "up_block_types": ["CogVideoXUpBlock3D"] * 3,
    "block_out_channels": [16, 32, 64],
    "layers_per_block": 1,
    "norm_num_groups": 8,
    "sample_height": 128,
    "sample_width": 128,
}

TINY_TEXT_ENCODER = PAPER_TEXT_ENCODER | {
    "vocab_size": len(toon_vocabulary()),
    "d_model": 64,
    "d_kv": 16,
    "d_ff": 128,
    "num_layers": 2,
    "num_heads": 4,
    "dropout_rate": 0.0,
}


@dataclasses.dataclass
class SegmentDefaults:
    """Per-segment generation defaults (sec. 3.3): frames ``F``, overlap ``C``, sampler settings, size."""

    frames: int
    overlap: int
    num_inference_steps: int
    guidance_scale: float
    fusion_steps: int  # colour-consistency fusion in the last this-many steps (paper: t_st = 20 of 50)
    height: int
    width: int


@dataclasses.dataclass
class Preset:
    """Everything needed to build a :class:`~longanimation.models.longanimation_model.LongAnimationModel`."""

    name: str
    backbone: BackboneConfig
    sketch_dit: SketchDiTConfig
    memory_model: MemoryModelConfig
    dglm: DGLMConfig
    segment: SegmentDefaults
    toon_tokenizer: bool  # build the offline word-level tokenizer (tiny); paper loads T5's from a snapshot


def paper() -> Preset:
    """The published model: CogVideoX1.5-5B-I2V + SketchDiT(6) + Video-XL memory + DGLM(3)."""
    return Preset(
        name="paper",
        backbone=BackboneConfig(
            transformer=dict(PAPER_TRANSFORMER),
            vae=dict(PAPER_VAE),
            text_encoder=dict(PAPER_TEXT_ENCODER),
            scheduler=dict(SCHEDULER),
        ),
        sketch_dit=SketchDiTConfig.from_transformer_config(PAPER_TRANSFORMER, num_layers=6),
        memory_model=MemoryModelConfig.paper(),
        dglm=DGLMConfig.paper(),
        segment=SegmentDefaults(
            frames=81, overlap=16, num_inference_steps=50, guidance_scale=6.0, fusion_steps=20, height=576, width=1024
        ),
        toon_tokenizer=False,
    )


def tiny() -> Preset:
    """CPU-sized model with the same code paths as ``paper``."""
    width = TINY_TRANSFORMER["num_attention_heads"] * TINY_TRANSFORMER["attention_head_dim"]
    return Preset(
        name="tiny",
        backbone=BackboneConfig(
            transformer=dict(TINY_TRANSFORMER),
            vae=dict(TINY_VAE),
            text_encoder=dict(TINY_TEXT_ENCODER),
            scheduler=dict(SCHEDULER),
        ),
        sketch_dit=SketchDiTConfig.from_transformer_config(TINY_TRANSFORMER, num_layers=2),
        memory_model=MemoryModelConfig.tiny(),
        dglm=DGLMConfig.tiny(sketch_dim=width),
        # No classifier-free guidance: the tiny model is trained without prompt dropout, so it has no
        # unconditional mode to extrapolate from (and one forward per step is twice as fast).
        segment=SegmentDefaults(
            frames=17, overlap=4, num_inference_steps=10, guidance_scale=1.0, fusion_steps=4, height=128, width=128
        ),
        toon_tokenizer=True,
    )


# The official release's DGLM projector hidden widths per base preset (1024, 2048 in its
# global_local_memory_module.py; the tiny ones are just small).
OFFICIAL_PROJECTOR_HIDDEN = {"paper": (1024, 2048), "tiny": (64, 96)}
# Video-XL frames per window: its beacon_window of 1440 tokens / 144 tokens per frame (tiny: 32 / 16).
OFFICIAL_WINDOW_FRAMES = {"paper": 10, "tiny": 2}
OFFICIAL_COMPRESSION_RATIO = 8  # the release sets Video-XL's beacon_ratio to [8] at inference


def official(preset: Preset) -> Preset:
    """``preset`` with its parts in the official release's layout (name, shapes and segments kept).

    SketchDiT injects after the 0-based blocks 0, 2, ... with a bias-free zero
    projection; DGLM has the release's projector and block layout; the memory
    model is Video-XL as the release runs it (own summary q/k/v, fixed windows,
    ratio 8). The chat prompt's token ids need Video-XL's tokenizer: the
    converter fills them in.
    """
    if preset.name not in OFFICIAL_PROJECTOR_HIDDEN:
        raise UserError(f"preset {preset.name} has no official layout")
    return dataclasses.replace(
        preset,
        sketch_dit=dataclasses.replace(preset.sketch_dit, inject_start=0, output_bias=False),
        dglm=dataclasses.replace(
            preset.dglm, layout="official", projector_hidden=OFFICIAL_PROJECTOR_HIDDEN[preset.name]
        ),
        memory_model=dataclasses.replace(
            preset.memory_model,
            summary_projections=True,
            compression_ratio=OFFICIAL_COMPRESSION_RATIO,
            summary_tokens=None,
            chunk_sizes=(OFFICIAL_WINDOW_FRAMES[preset.name],),
            change_thresholds=(),
        ),
    )


def get_preset(name: str) -> Preset:
    """``"tiny"`` or ``"paper"``."""
    builders: dict[str, Any] = {"tiny": tiny, "paper": paper}
    if name not in builders:
        raise UserError(f"unknown preset {name!r}; choose one of {', '.join(PRESET_NAMES)}")
    return builders[name]()
