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
layer, same space). Projector = Linear(kv_width -> D) + LayerNorm + LeakyReLU.
No positional signal is added to memory tokens (the paper's cross-attention is
over a set).

The official release's DGLM (``global_local_memory_module.py``) is the same
computation in another layout, selected by two config values:

* ``projector_hidden = (1024, 2048)``: the projector is
  Linear + LayerNorm + LeakyReLU per hidden width, then a plain Linear to D;
* ``layout = "official"``: no biases in the attention, FFN and output
  projections, one extra LayerNorm applied to the projected memory keys and to
  the projected memory values (the same LayerNorm for both), and exact GELU
  in the FFN. Eq. 4 is unchanged.
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

LAYOUTS = ("ours", "official")


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
    layout: str = "ours"  # "ours" or "official" (the release's biases, norms and GELU; see the module docstring)
    projector_hidden: tuple[int, ...] = ()  # hidden widths of the memory projector; () = one stage (ours)

    def __post_init__(self) -> None:
        if not (self.use_global or self.use_local):
            raise UserError("DGLMConfig needs use_global or use_local (or both)")
        if self.layout not in LAYOUTS:
            raise UserError(f"DGLMConfig layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        if any(width < 1 for width in self.projector_hidden):
            raise UserError("DGLMConfig projector_hidden widths must be positive")

    @property
    def official(self) -> bool:
        return self.layout == "official"

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
    """The "FFN-based projector" of sec. 3.2.2: memory KV width -> SketchDiT width.

    Without ``hidden`` widths one stage Linear + LayerNorm + LeakyReLU (ours);
    with them one such stage per hidden width and a plain Linear to the
    SketchDiT width (the official release: hidden 1024, 2048).
    """

    def __init__(self, memory_dim: int, sketch_dim: int, hidden: tuple[int, ...] = ()) -> None:
        if not hidden:
            super().__init__(nn.Linear(memory_dim, sketch_dim), nn.LayerNorm(sketch_dim), nn.LeakyReLU())
            return
        layers: list[nn.Module] = []
        for width_in, width in zip((memory_dim, *hidden), hidden):
            layers += [nn.Linear(width_in, width), nn.LayerNorm(width), nn.LeakyReLU()]
        super().__init__(*layers, nn.Linear(hidden[-1], sketch_dim))


class MemoryCrossAttention(nn.Module):
    """One DGLM block: pre-LN cross-attention of S onto memory tokens (eq. 4), then a pre-LN FFN."""

    def __init__(self, config: DGLMConfig) -> None:
        super().__init__()
        inner, dim, bias = config.num_heads * config.head_dim, config.sketch_dim, not config.official
        self.heads = config.num_heads
        self.norm = nn.LayerNorm(dim)
        # official: one LayerNorm for the projected memory keys and values alike (its `norm1`)
        self.memory_norm = nn.LayerNorm(dim) if config.official else None
        self.to_q = nn.Linear(dim, inner, bias=bias)
        self.to_k = nn.Linear(dim, inner, bias=bias)
        self.to_v = nn.Linear(dim, inner, bias=bias)
        self.to_out = nn.Linear(inner, dim, bias=bias)
        self.ffn_norm = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(
            nn.Linear(dim, config.ffn_mult * dim, bias=bias),
            nn.GELU(approximate="none" if config.official else "tanh"),
            nn.Linear(config.ffn_mult * dim, dim, bias=bias),
        )

    def forward(
        self, hidden: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """``hidden`` (B, N, D); ``keys``/``values`` (B, K, D) projected memory; ``mask`` (B, K), True = attend."""
        if self.memory_norm is not None:
            keys, values = self.memory_norm(keys), self.memory_norm(values)
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
        hidden = tuple(config.projector_hidden)
        self.key_projectors = nn.ModuleList(
            MemoryProjector(config.memory_dim, config.sketch_dim, hidden) for _ in range(config.num_layers)
        )
        self.value_projectors = nn.ModuleList(
            MemoryProjector(config.memory_dim, config.sketch_dim, hidden) for _ in range(config.num_layers)
        )
        self.blocks = nn.ModuleList(MemoryCrossAttention(config) for _ in range(config.num_layers))
        # official: a raw matrix P applied as h @ P, i.e. a bias-free Linear with weight P^T
        self.proj_out = nn.Linear(config.sketch_dim, config.sketch_dim, bias=not config.official)
        nn.init.zeros_(self.proj_out.weight)
        if self.proj_out.bias is not None:
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
