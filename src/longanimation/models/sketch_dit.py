"""SketchDiT (paper sec. 3.2.1) and the sketch-controlled backbone (eq. 3).

SketchDiT is a short stack of CogVideoX blocks, initialised from the first
``L`` blocks of the frozen backbone. Its input is the sketch latent
concatenated on channels with the padded reference-image latent (16 + 16 = 32
channels, so the backbone's patch embedding initialises it too), with the
text tokens on the sequence axis, exactly like the backbone's input. Its
vision tokens go through a zero-initialised linear projection; the result is
the hybrid feature ``S = S(c_t, c_i, c_k)``.

:class:`SketchControlledTransformer` runs the frozen diffusers transformer
with ``S`` added to its vision stream after every second block (eq. 3)::

    z_n = z_n + gamma * S,   n = 2, 4, ..., N   (gamma = 0.5, same S everywhere)

and, from the second segment on, ``S`` first absorbs the memory (eq. 4):
``S' = S + DGLM(S, memory)``. Because the projection (and DGLM's output) start
at zero, the controlled model equals the plain backbone exactly at init.

The official release (``official`` preset variant) is the same model with two
config values changed: its injections follow the 0-based blocks 0, 2, ..., 40
(``i % 2 == 0`` in its transformer; ``inject_start = 0``) instead of eq. 3's
n = 2, 4, ..., N, and its zero projection has no bias (``output_bias = False``).

Latent sequence layout (all three inputs ``(B, T + lead, 16, h, w)``; see
:meth:`SketchDiT.num_leading_frames`): the first ``lead`` frames form the
*reference slot* -- noise in the noisy latents, the reference image latent at
frame 0 of the image latents (zeros elsewhere), the reference image's own
sketch latent in the sketch latents -- followed by the segment's ``T`` latent
frames. The leading frames are dropped after denoising. For the paper's
81-frame segments (21 latents, ``patch_size_t = 2``) ``lead = 1``: the 22-frame
sequence of the official CogVideoX-1.5 I2V pipeline, with the reference
sketch latent prepended as in the official LongAnimation release.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from diffusers import CogVideoXTransformer3DModel
from diffusers.models.embeddings import CogVideoXPatchEmbed, TimestepEmbedding, Timesteps
from diffusers.models.transformers.cogvideox_transformer_3d import CogVideoXBlock
from torch import nn
from torch.utils.checkpoint import checkpoint

from .backbone import OFS_VALUE, check_i2v_layout, rotary_embeddings
from .checkpoint import PretrainedModule

# Backbone config keys SketchDiT shares with the transformer it is cut from.
SHARED_KEYS = (
    "num_attention_heads",
    "attention_head_dim",
    "in_channels",
    "text_embed_dim",
    "time_embed_dim",
    "ofs_embed_dim",
    "patch_size",
    "patch_size_t",
    "max_text_seq_length",
    "activation_fn",
    "attention_bias",
    "norm_elementwise_affine",
    "norm_eps",
    "flip_sin_to_cos",
    "freq_shift",
    "timestep_activation_fn",
)


@dataclasses.dataclass
class SketchDiTConfig:
    """SketchDiT shape (the backbone's block shape, ``num_layers`` of them) and its injection (eq. 3)."""

    num_layers: int = 6
    num_attention_heads: int = 48
    attention_head_dim: int = 64
    in_channels: int = 32  # sketch latent 16 + padded reference latent 16
    text_embed_dim: int = 4096
    time_embed_dim: int = 512
    ofs_embed_dim: int | None = 512
    patch_size: int = 2
    patch_size_t: int = 2
    max_text_seq_length: int = 226
    activation_fn: str = "gelu-approximate"
    attention_bias: bool = True
    norm_elementwise_affine: bool = True
    norm_eps: float = 1e-5
    flip_sin_to_cos: bool = True
    freq_shift: int = 0
    timestep_activation_fn: str = "silu"
    gamma: float = 0.5  # eq. 3 weight
    inject_every: int = 2  # eq. 3: after blocks n = 2, 4, ..., N
    # 0-based index of the first injected block; None: inject_every - 1 (eq. 3). The official release uses 0.
    inject_start: int | None = None
    output_bias: bool = True  # the official release's zero projection has no bias
    reference_sketch_slot: bool = True  # official release: reference sketch latent first

    def __post_init__(self) -> None:
        if self.inject_every < 1 or (self.inject_start is not None and self.inject_start < 0):
            raise ValueError("inject_every must be positive and inject_start not negative")

    @classmethod
    def from_transformer_config(cls, config: Mapping[str, Any], num_layers: int, **options: Any) -> SketchDiTConfig:
        """SketchDiT matching a CogVideoX transformer config; ``options`` set gamma etc."""
        check_i2v_layout(config)
        return cls(num_layers=num_layers, **{key: config[key] for key in SHARED_KEYS}, **options)

    @property
    def inner_dim(self) -> int:
        return self.num_attention_heads * self.attention_head_dim

    def injected_blocks(self, num_blocks: int) -> list[int]:
        """0-based indices of the backbone blocks (of ``num_blocks``) followed by ``+ gamma * S`` (eq. 3)."""
        start = self.inject_every - 1 if self.inject_start is None else self.inject_start
        return list(range(start, num_blocks, self.inject_every))


class SketchDiT(PretrainedModule):
    """``L`` CogVideoX blocks over [sketch latent | reference latent] + text; output ``S`` (sec. 3.2.1).

    Module names match :class:`CogVideoXTransformer3DModel` (``patch_embed``,
    ``time_embedding``, ``ofs_embedding``, ``transformer_blocks``) so
    :meth:`from_backbone` copies weights by name. Set ``gradient_checkpointing``
    to recompute the blocks in the backward pass.
    """

    config_class = SketchDiTConfig

    def __init__(self, config: SketchDiTConfig) -> None:
        super().__init__()
        self.config = config
        dim = config.inner_dim
        self.patch_embed = CogVideoXPatchEmbed(
            patch_size=config.patch_size,
            patch_size_t=config.patch_size_t,
            in_channels=config.in_channels,
            embed_dim=dim,
            text_embed_dim=config.text_embed_dim,
            max_text_seq_length=config.max_text_seq_length,
            use_positional_embeddings=False,
            use_learned_positional_embeddings=False,
        )
        self.time_proj = Timesteps(dim, config.flip_sin_to_cos, config.freq_shift)
        self.time_embedding = TimestepEmbedding(dim, config.time_embed_dim, config.timestep_activation_fn)
        if config.ofs_embed_dim:
            self.ofs_proj = Timesteps(config.ofs_embed_dim, config.flip_sin_to_cos, config.freq_shift)
            self.ofs_embedding = TimestepEmbedding(
                config.ofs_embed_dim, config.ofs_embed_dim, config.timestep_activation_fn
            )
        else:
            self.ofs_proj = self.ofs_embedding = None
        self.transformer_blocks = nn.ModuleList(
            CogVideoXBlock(
                dim=dim,
                num_attention_heads=config.num_attention_heads,
                attention_head_dim=config.attention_head_dim,
                time_embed_dim=config.time_embed_dim,
                activation_fn=config.activation_fn,
                attention_bias=config.attention_bias,
                norm_elementwise_affine=config.norm_elementwise_affine,
                norm_eps=config.norm_eps,
            )
            for _ in range(config.num_layers)
        )
        self.out_projection = nn.Linear(dim, dim, bias=config.output_bias)
        nn.init.zeros_(self.out_projection.weight)
        if self.out_projection.bias is not None:
            nn.init.zeros_(self.out_projection.bias)
        self.gradient_checkpointing = False

    @classmethod
    def from_backbone(cls, transformer: CogVideoXTransformer3DModel, config: SketchDiTConfig) -> SketchDiT:
        """SketchDiT initialised from ``transformer``: its patch/time/ofs embeddings and first L blocks.

        ``config`` must match the transformer (build it with
        :meth:`SketchDiTConfig.from_transformer_config`). The model is built on
        the transformer's device and dtype; the output projection is zero.
        """
        expected = SketchDiTConfig.from_transformer_config(transformer.config, config.num_layers)
        problems = [
            f"{key} {getattr(config, key)} != {getattr(expected, key)}"
            for key in SHARED_KEYS
            if getattr(config, key) != getattr(expected, key)
        ]
        if not 0 < config.num_layers <= transformer.config.num_layers:
            problems.append(f"{config.num_layers} layers, the backbone has {transformer.config.num_layers}")
        if problems:
            raise ValueError("SketchDiT config does not fit the backbone: " + "; ".join(problems))
        parameter = next(transformer.parameters())
        with torch.device(parameter.device):
            model = cls(config).to(parameter.dtype)
        own = model.state_dict()
        shared = {name: tensor for name, tensor in transformer.state_dict().items() if name in own}
        missing = model.load_state_dict(shared, strict=False).missing_keys
        if any(not name.startswith("out_projection.") for name in missing):
            raise ValueError(f"the backbone has no weights for SketchDiT's {', '.join(missing)}")
        return model

    def num_leading_frames(self, num_latent_frames: int) -> int:
        """Frames put before a segment's ``T`` latent frames: the reference slot, then padding to ``patch_size_t``."""
        slot = int(self.config.reference_sketch_slot)
        return slot + (-(num_latent_frames + slot)) % self.config.patch_size_t

    def arrange_sketch_latents(
        self, sketch_latents: torch.Tensor, reference_sketch_latent: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Segment sketch latents ``(B, T, 16, h, w)`` -> the model's ``(B, T + lead, 16, h, w)``.

        The leading frames hold ``reference_sketch_latent`` ``(B, 1, 16, h, w)``
        (required when ``reference_sketch_slot``), otherwise copies of the first sketch latent.
        """
        lead = self.num_leading_frames(sketch_latents.shape[1])
        if self.config.reference_sketch_slot:
            if reference_sketch_latent is None:
                raise ValueError("reference_sketch_slot is on: pass the reference image's sketch latent")
            first = reference_sketch_latent
        else:
            first = sketch_latents[:, :1]
        return torch.cat([first.expand(-1, lead, -1, -1, -1), sketch_latents], dim=1)

    def forward(
        self,
        sketch_latents: torch.Tensor,
        image_latents: torch.Tensor,
        text_embeds: torch.Tensor,
        timestep: torch.Tensor,
        ofs: torch.Tensor | None = None,
        image_rotary_emb: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """``S``: ``(B, N, D)`` vision tokens, ``N = (T / patch_t) (h / p) (w / p)``, ``D`` = backbone width.

        ``sketch_latents`` and ``image_latents`` are ``(B, T, 16, h, w)`` in the
        model's sequence layout; ``text_embeds`` ``(B, L_text, text_dim)``;
        ``timestep`` ``(B,)``; ``ofs`` ``(1,)`` or ``(B,)`` (needed when the
        config has ``ofs_embed_dim``); ``image_rotary_emb`` from
        :func:`~longanimation.models.backbone.rotary_embeddings`.
        """
        hidden = torch.cat([sketch_latents, image_latents], dim=2)
        emb = self.time_embedding(self.time_proj(timestep).to(hidden.dtype))
        if self.ofs_embedding is not None:
            emb = emb + self.ofs_embedding(self.ofs_proj(ofs).to(hidden.dtype))
        tokens = self.patch_embed(text_embeds, hidden)
        text, vision = tokens[:, : text_embeds.shape[1]], tokens[:, text_embeds.shape[1] :]
        for block in self.transformer_blocks:
            if self.gradient_checkpointing and torch.is_grad_enabled():
                vision, text = checkpoint(block, vision, text, emb, image_rotary_emb, use_reentrant=False)
            else:
                vision, text = block(vision, text, emb, image_rotary_emb)
        return self.out_projection(vision)


class SketchControlledTransformer(nn.Module):
    """Frozen CogVideoX transformer + SketchDiT (+ DGLM): the denoiser of eq. 3 / eq. 4.

    The injection uses forward hooks on the backbone's blocks, registered for
    the duration of one forward call: diffusers' own forward (patch embedding,
    time/ofs embedding, RoPE use, gradient checkpointing, final norm and
    unpatchify) runs unchanged, and only each injected block's vision output is
    replaced by ``z_n + gamma * S``.
    """

    def __init__(
        self, transformer: CogVideoXTransformer3DModel, sketch_dit: SketchDiT, dglm: nn.Module | None = None
    ) -> None:
        super().__init__()
        width = transformer.config.num_attention_heads * transformer.config.attention_head_dim
        if sketch_dit.config.inner_dim != width:
            raise ValueError(f"SketchDiT width {sketch_dit.config.inner_dim} != backbone width {width}")
        self.transformer = transformer
        self.sketch_dit = sketch_dit
        self.dglm = dglm

    def train(self, mode: bool = True) -> SketchControlledTransformer:
        """Train mode for SketchDiT/DGLM; the frozen backbone transformer stays in eval mode."""
        super().train(mode)
        self.transformer.eval()
        return self

    @property
    def injected_blocks(self) -> list[int]:
        """0-based indices of the backbone blocks followed by ``+ gamma * S`` (eq. 3: n = 2, 4, ..., N)."""
        return self.sketch_dit.config.injected_blocks(len(self.transformer.transformer_blocks))

    def sketch_features(
        self,
        image_latents: torch.Tensor,
        sketch_latents: torch.Tensor,
        text_embeds: torch.Tensor,
        timestep: torch.Tensor,
        memory: Mapping[str, Any] | None = None,
        *,
        ofs: torch.Tensor | None,
        image_rotary_emb: tuple[torch.Tensor, torch.Tensor],
    ) -> torch.Tensor:
        """``S`` of SketchDiT, plus ``DGLM(S, **memory)`` when both a DGLM and a memory are given (eq. 4)."""
        features = self.sketch_dit(sketch_latents, image_latents, text_embeds, timestep, ofs, image_rotary_emb)
        if self.dglm is not None and memory is not None:
            features = features + self.dglm(features, **memory)
        return features

    def forward(
        self,
        noisy_latents: torch.Tensor,
        image_latents: torch.Tensor,
        sketch_latents: torch.Tensor,
        text_embeds: torch.Tensor,
        timestep: torch.Tensor,
        memory: Mapping[str, Any] | None = None,
        *,
        ofs: torch.Tensor | None = None,
        image_rotary_emb: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Model output (v-prediction) ``(B, T, 16, h, w)`` for noisy latents ``(B, T, 16, h, w)``.

        All latents are in the sequence layout described in the module
        docstring (``T`` includes the leading frames and must divide
        ``patch_size_t``). ``memory`` holds DGLM's keyword inputs, e.g.
        ``{"global_view": MemoryView, "local_view": MemoryView}`` (``None`` for
        the first segment). ``ofs`` defaults to the I2V pipeline's constant and
        ``image_rotary_emb`` is computed from the latent shape when omitted.
        """
        shapes = {tuple(x.shape) for x in (noisy_latents, image_latents, sketch_latents)}
        if len(shapes) != 1:
            raise ValueError(f"noisy, image and sketch latents differ in shape: {sorted(shapes)}")
        _, frames, _, height, width = noisy_latents.shape
        config = self.transformer.config
        if frames % config.patch_size_t:
            raise ValueError(f"{frames} latent frames: not a multiple of patch_size_t={config.patch_size_t}")
        if ofs is None and config.ofs_embed_dim:
            ofs = noisy_latents.new_full((1,), OFS_VALUE)
        if image_rotary_emb is None:
            image_rotary_emb = rotary_embeddings(config, frames, height, width, noisy_latents.device)
        features = self.sketch_features(
            image_latents, sketch_latents, text_embeds, timestep, memory, ofs=ofs, image_rotary_emb=image_rotary_emb
        )
        with self._injecting(features):
            return self.transformer(
                hidden_states=torch.cat([noisy_latents, image_latents], dim=2),
                encoder_hidden_states=text_embeds,
                timestep=timestep,
                ofs=ofs,
                image_rotary_emb=image_rotary_emb,
                return_dict=False,
            )[0]

    @contextlib.contextmanager
    def _injecting(self, features: torch.Tensor) -> Iterator[None]:
        gamma = self.sketch_dit.config.gamma

        def add_features(module: nn.Module, args: Any, output: tuple[torch.Tensor, torch.Tensor]) -> Any:
            vision, text = output
            return vision + gamma * features.to(vision.dtype), text

        blocks = self.transformer.transformer_blocks
        handles = [blocks[index].register_forward_hook(add_features) for index in self.injected_blocks]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()
