"""Dynamic Global-Local Memory (DGLM), sec. 3.2.2, eq. 4.

The memory model's summary keys/values at M layers (global: all history;
local: the latest segment) are mapped per layer to the SketchDiT width, then M
cross-attention blocks let the SketchDiT features S query them:

    block m:  h = h + Softmax(Q(h) K([k_g^m, k_l^m])^T / sqrt(d)) V([v_g^m, v_l^m])     (eq. 4)
              h = h + FFN(h)

with pre-LayerNorm on h. A zero-initialised output projection gives
``delta = W_out h`` and the caller does ``S' = S + delta``, so an untrained DGLM
leaves S exactly unchanged (ControlNet-style start).

Design choices: one projector MLP for keys and one for values per memory layer
(keys and values live in different spaces: keys feed a dot product, values
are mixed into the output); global and local tokens share the projectors (same
layer, same space). Projector = Linear(kv_width -> D) + LayerNorm + LeakyReLU,
as the official release. No positional signal is added to memory tokens
(the paper's cross-attention is over a set).
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError
from .checkpoint import PretrainedModule
from .memory_model import MemoryModelConfig
from .memory_state import MemoryView


@dataclasses.dataclass
class DGLMConfig:
    """Sizes of DGLM; defaults are the paper's (memory KV 512 wide, SketchDiT 3072 wide, 32 x 96 heads)."""

    memory_dim: int = 512
    sketch_dim: int = 3072
    num_layers: int = 3
    num_heads: int = 32
    head_dim: int = 96
    ffn_mult: int = 4
    use_global: bool = True
    use_local: bool = True

    def __post_init__(self) -> None:
        if not (self.use_global or self.use_local):
            raise UserError("DGLMConfig needs use_global or use_local (or both)")

    @classmethod
    def paper(cls) -> DGLMConfig:
        return cls()

    @classmethod
    def tiny(cls, sketch_dim: int = 64, memory_dim: int | None = None) -> DGLMConfig:
        """Matches :meth:`MemoryModelConfig.tiny` unless ``memory_dim`` is given."""
        memory = MemoryModelConfig.tiny()
        return cls(
            memory_dim=memory.kv_width if memory_dim is None else memory_dim,
            sketch_dim=sketch_dim,
            num_layers=len(memory.memory_layers),
            num_heads=4,
            head_dim=max(sketch_dim // 4, 1),
        )


class MemoryProjector(nn.Sequential):
    """The "FFN-based projector" of sec. 3.2.2: memory KV width -> SketchDiT width."""

    def __init__(self, memory_dim: int, sketch_dim: int) -> None:
        super().__init__(nn.Linear(memory_dim, sketch_dim), nn.LayerNorm(sketch_dim), nn.LeakyReLU())


class MemoryCrossAttention(nn.Module):
    """One DGLM block: pre-LN cross-attention of S onto memory tokens (eq. 4), then a pre-LN FFN."""

    def __init__(self, config: DGLMConfig) -> None:
        super().__init__()
        inner = config.num_heads * config.head_dim
        self.heads = config.num_heads
        self.norm = nn.LayerNorm(config.sketch_dim)
        self.to_q = nn.Linear(config.sketch_dim, inner)
        self.to_k = nn.Linear(config.sketch_dim, inner)
        self.to_v = nn.Linear(config.sketch_dim, inner)
        self.to_out = nn.Linear(inner, config.sketch_dim)
        self.ffn_norm = nn.LayerNorm(config.sketch_dim)
        self.ffn = nn.Sequential(
            nn.Linear(config.sketch_dim, config.ffn_mult * config.sketch_dim),
            nn.GELU(approximate="tanh"),
            nn.Linear(config.ffn_mult * config.sketch_dim, config.sketch_dim),
        )

    def forward(
        self, hidden: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """``hidden`` (B, N, D); ``keys``/``values`` (B, K, D) projected memory; ``mask`` (B, K), True = attend."""
        query = self.to_q(self.norm(hidden)).unflatten(-1, (self.heads, -1)).transpose(1, 2)
        key = self.to_k(keys).unflatten(-1, (self.heads, -1)).transpose(1, 2)
        value = self.to_v(values).unflatten(-1, (self.heads, -1)).transpose(1, 2)
        mixed = F.scaled_dot_product_attention(query, key, value, attn_mask=mask[:, None, None, :])
        hidden = hidden + self.to_out(mixed.transpose(1, 2).flatten(2))
        return hidden + self.ffn(self.ffn_norm(hidden))


class GlobalLocalMemory(PretrainedModule):
    """DGLM (eq. 4): ``delta = GlobalLocalMemory(S, global_view, local_view)``, then ``S' = S + delta``."""

    config_class = DGLMConfig

    def __init__(self, config: DGLMConfig) -> None:
        super().__init__()
        self.config = config
        self.key_projectors = nn.ModuleList(
            MemoryProjector(config.memory_dim, config.sketch_dim) for _ in range(config.num_layers)
        )
        self.value_projectors = nn.ModuleList(
            MemoryProjector(config.memory_dim, config.sketch_dim) for _ in range(config.num_layers)
        )
        self.blocks = nn.ModuleList(MemoryCrossAttention(config) for _ in range(config.num_layers))
        self.proj_out = nn.Linear(config.sketch_dim, config.sketch_dim)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)

    def memory(self, global_view: MemoryView | None, local_view: MemoryView | None) -> MemoryView | None:
        """The views this DGLM uses (config flags), joined along tokens: ``[global, local]``."""
        used = [
            view
            for view, wanted in ((global_view, self.config.use_global), (local_view, self.config.use_local))
            if wanted and view is not None and view.num_tokens > 0
        ]
        if not used:
            return None
        for view in used:
            if view.num_layers != self.config.num_layers or view.keys[0].shape[-1] != self.config.memory_dim:
                raise UserError(
                    f"memory view has {view.num_layers} layers of width {view.keys[0].shape[-1]}; this DGLM "
                    f"expects {self.config.num_layers} of width {self.config.memory_dim}"
                )
        return MemoryView.concat([view.to(self.proj_out.weight.device) for view in used])

    def forward(
        self,
        sketch: torch.Tensor,
        global_view: MemoryView | None = None,
        local_view: MemoryView | None = None,
    ) -> torch.Tensor:
        """SketchDiT vision tokens ``(B, N, sketch_dim)`` -> ``delta`` of the same shape (eq. 4).

        Views hold ``B`` or 1 videos (1 is broadcast, e.g. over a CFG batch);
        their ``mask`` is the key padding mask. Without any memory (first
        segment, or the flags exclude what is given) ``delta`` is zero.
        Videos whose memory is all padding get zero ``delta`` too.
        """
        memory = self.memory(global_view, local_view)
        if memory is None:
            return torch.zeros_like(sketch)
        batch = sketch.shape[0]
        mask = memory.key_padding_mask().expand(batch, -1)
        has_memory = mask.any(dim=-1)
        mask = mask | ~has_memory[:, None]  # keep softmax finite; those rows are zeroed below
        hidden = sketch
        for block, key_projector, value_projector, keys, values in zip(
            self.blocks, self.key_projectors, self.value_projectors, memory.keys, memory.values
        ):
            keys = key_projector(keys.to(sketch.dtype)).expand(batch, -1, -1)
            values = value_projector(values.to(sketch.dtype)).expand(batch, -1, -1)
            hidden = block(hidden, keys, values, mask)
        return self.proj_out(hidden) * has_memory[:, None, None].to(sketch.dtype)
