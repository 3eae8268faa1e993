"""The long-video-understanding (LVU) memory model of DGLM, sec. 3.2.2 (Video-XL style).

Frames -> CLIP ViT (penultimate layer patch tokens) -> 2-layer GELU projector
-> 2x2 average pool (paper: 576 -> 144 tokens per frame) -> a Qwen2 trunk that
reads the video chunk by chunk. Chunks hold 8, 4 or 2 frames, chosen from the
CLIP feature change between adjacent frames (calm video -> longer chunks).
Every chunk gets the same number ``s`` of summary tokens (``<vs>``, Video-XL's
"beacons", one learned embedding), interleaved with its frame tokens: one
after every ``L / s`` of the chunk's ``L`` frame tokens. With the default
``s`` = tokens per frame, chunks of 8, 4 and 2 frames are compressed 8x, 4x
and 2x: Video-XL's compression ratios, picked from the feature change.
Attention is causal within the chunk (each summary reads the frame tokens
before it, i.e. its part of the chunk, and the summaries before it) and sees
all earlier summaries. After the chunk only the summary tokens' keys/values
are kept (at every LM layer up to the last memory layer); the frame tokens'
are dropped. The memory
handed to DGLM (eq. 4) and to the reward (eq. 5) is the summary tokens' keys
and values at M layers, taken before RoPE as Video-XL caches them.

Why the decoder layers are driven here instead of through ``Qwen2Model.forward``
with a ``DynamicCache``: the cache must hold *pre-RoPE* keys (Video-XL; it also
lets summaries be re-positioned after merging), old summaries are merged in
place to bound cost, and the last memory layer only needs ``k_proj``/``v_proj``
of the summary tokens. ``DynamicCache`` stores rotated keys and has no merge, so
the loop below reuses the ``Qwen2Model``'s own submodules (norms, projections,
rotary embedding, MLP) with an explicit mask and positions; a test checks it
against ``Qwen2Model.forward``. No LM head: the memory never decodes text, and
``lm.embed_tokens`` / ``lm.norm`` are unused (kept so Qwen2 weights load 1:1).

Streaming (``new_state`` / ``append``) costs are proportional to the new frames:
only new frames go through CLIP, and each chunk attends to the cached
summaries only, whose number is bounded by ``max_global_summaries`` (merging,
see :meth:`SummaryCache.merge_oldest`).

Video-XL as the official LongAnimation release runs it (the ``official``
preset variant) is this loop with four config values set:

* ``summary_projections``: summary tokens use q/k/v projections of their own
  (Video-XL's ``beacon_param = q k v``; o_proj and the MLP are shared);
* ``compression_ratio = 8`` with ``chunk_sizes = (10,)``: fixed windows of
  1440 frame tokens (``beacon_window``), a chunk of L tokens gets L / 8
  summaries, the shorter last one too (the release forces ``beacon_ratio = [8]``);
* ``prompt_prefix`` / ``prompt_suffix``: token ids of the chat prompt around the
  video. The prefix is run first and cached (Video-XL's "sink" from
  ``beacon_skip_first``); every view ends with the suffix tokens' keys/values,
  read against the whole memory, because the release takes its memory from
  the KV cache after the full prompt (``past_key_values[-9, -5, -1]``).
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn
from transformers import CLIPVisionConfig, CLIPVisionModel, Qwen2Config, Qwen2Model

from ..errors import UserError
from .checkpoint import PretrainedModule
from .memory_state import MemoryState, MemoryView, SummaryCache, frame_change, plan_chunks

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclasses.dataclass
class MemoryModelConfig:
    """Sizes of the memory model; the defaults are the paper's (Video-XL: CLIP-L/14-336 + Qwen2-7B)."""

    # vision encoder (CLIPVisionModel)
    image_size: int = 336
    patch_size: int = 14
    vision_hidden_size: int = 1024
    vision_layers: int = 24
    vision_heads: int = 16
    vision_intermediate_size: int = 4096
    vision_feature_layer: int = -2
    pool_stride: int = 2
    # causal LM trunk (Qwen2Model)
    hidden_size: int = 3584
    num_layers: int = 28
    num_heads: int = 28
    num_kv_heads: int = 4
    intermediate_size: int = 18944
    vocab_size: int = 152064
    rope_theta: float = 1e6
    rms_norm_eps: float = 1e-6
    max_position_embeddings: int = 32768
    # memory
    memory_layers: tuple[int, ...] = (19, 23, 27)
    chunk_sizes: tuple[int, ...] = (8, 4, 2)
    change_thresholds: tuple[float, ...] = (0.1, 0.25)
    summary_tokens: int | None = None  # s per chunk; None: tokens_per_frame (ratios 8/4/2 for chunks of 8/4/2)
    max_global_summaries: int = 11700  # summary tokens: about 650 frames at ratio 8 (the release's 650 frames)
    # Video-XL variant (module docstring): own summary q/k/v, fixed ratio, chat prompt around the video
    summary_projections: bool = False
    compression_ratio: int | None = None  # frame tokens per summary token; None: summary_tokens per chunk
    prompt_prefix: tuple[int, ...] = ()
    prompt_suffix: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        problems = []
        if self.image_size % self.patch_size or (self.image_size // self.patch_size) % self.pool_stride:
            problems.append("image_size / patch_size must be a whole multiple of pool_stride")
        if not -self.vision_layers <= self.vision_feature_layer < 0:
            problems.append("vision_feature_layer must be negative, counting from the last CLIP layer")
        if self.hidden_size % self.num_heads or self.num_heads % self.num_kv_heads:
            problems.append("hidden_size must split into num_heads, num_heads into num_kv_heads")
        layers = tuple(self.memory_layers)
        if not layers or list(layers) != sorted(set(layers)) or not 0 <= layers[0] <= layers[-1] < self.num_layers:
            problems.append("memory_layers must be increasing LM layer indices")
        sizes = tuple(self.chunk_sizes)
        if not sizes or list(sizes) != sorted(set(sizes), reverse=True) or sizes[-1] < 1:
            problems.append("chunk_sizes must be decreasing positive frame counts")
        if len(self.change_thresholds) != len(sizes) - 1:
            problems.append("change_thresholds needs one entry per chunk size but the smallest")
        tokens = (self.image_size // self.patch_size // self.pool_stride) ** 2
        if self.summary_tokens is not None and not 1 <= self.summary_tokens <= tokens:
            problems.append(f"summary_tokens must lie in [1, {tokens}] (the tokens of one frame)")
        ratio = self.compression_ratio
        if ratio is not None and (self.summary_tokens is not None or ratio < 1 or tokens % ratio):
            problems.append(f"compression_ratio must divide the {tokens} tokens of a frame, without summary_tokens")
        elif sizes and self.max_global_summaries < 4 * self.summaries_per_chunk:
            problems.append("max_global_summaries must hold at least 4 chunks of summary tokens")
        if any(not 0 <= token < self.vocab_size for token in (*self.prompt_prefix, *self.prompt_suffix)):
            problems.append(f"prompt token ids must lie in [0, {self.vocab_size})")
        if problems:
            raise UserError("bad MemoryModelConfig: " + "; ".join(problems))

    @classmethod
    def paper(cls) -> MemoryModelConfig:
        """Video-XL as used by LongAnimation: CLIP ViT-L/14-336 + Qwen2-7B, memory at layers 19, 23, 27."""
        return cls()

    @classmethod
    def tiny(cls) -> MemoryModelConfig:
        """A few-hundred-thousand-parameter model that trains on a CPU (64 px, 16 tokens per frame)."""
        return cls(
            image_size=64,
            patch_size=8,
            vision_hidden_size=64,
            vision_layers=3,
            vision_heads=4,
            vision_intermediate_size=128,
            hidden_size=64,
            num_layers=4,
            num_heads=4,
            num_kv_heads=2,
            intermediate_size=128,
            vocab_size=16,
            rope_theta=10000.0,
            max_position_embeddings=4096,
            memory_layers=(1, 2, 3),
            change_thresholds=(0.02, 0.05),
            max_global_summaries=1024,
        )

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def summaries_per_chunk(self) -> int:
        """``s``: summary tokens of a chunk of the largest size (Video-XL: a chunk's tokens / its compression ratio)."""
        return self.summaries_for(self.chunk_sizes[0] * self.tokens_per_frame)

    def summaries_for(self, num_tokens: int) -> int:
        """Summary tokens of a chunk of ``num_tokens`` frame tokens: ``s``, or tokens / ``compression_ratio``."""
        if self.compression_ratio is not None:
            return num_tokens // self.compression_ratio
        return self.summary_tokens or self.tokens_per_frame

    @property
    def kv_width(self) -> int:
        """Width of one memory key or value: KV heads x head dim (paper 4 x 128 = 512)."""
        return self.num_kv_heads * self.head_dim

    @property
    def tokens_per_frame(self) -> int:
        return (self.image_size // self.patch_size // self.pool_stride) ** 2

    def vision_config(self) -> CLIPVisionConfig:
        return CLIPVisionConfig(
            hidden_size=self.vision_hidden_size,
            intermediate_size=self.vision_intermediate_size,
            num_hidden_layers=self.vision_layers,
            num_attention_heads=self.vision_heads,
            image_size=self.image_size,
            patch_size=self.patch_size,
            hidden_act="quick_gelu",
        )

    def lm_config(self) -> Qwen2Config:
        return Qwen2Config(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            intermediate_size=self.intermediate_size,
            num_hidden_layers=self.num_layers,
            num_attention_heads=self.num_heads,
            num_key_value_heads=self.num_kv_heads,
            max_position_embeddings=self.max_position_embeddings,
            rms_norm_eps=self.rms_norm_eps,
            rope_parameters={"rope_type": "default", "rope_theta": self.rope_theta},
            tie_word_embeddings=False,
        )


@dataclasses.dataclass
class AppendStats:
    """What one :meth:`LongVideoMemoryModel.append` processed (the cost is proportional to these)."""

    frames_encoded: int = 0
    lm_tokens: int = 0
    lm_keys: int = 0
    chunks_committed: int = 0
    pending_frames: int = 0
    summaries: int = 0


@dataclasses.dataclass
class ClipMemory:
    """Summaries of one whole clip (:meth:`LongVideoMemoryModel.encode_clip`) and its chunk plan."""

    view: MemoryView
    plan: tuple[int, ...]


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """``(B, L, heads * d)`` -> ``(B, heads, L, d)``."""
    return x.unflatten(-1, (heads, -1)).transpose(1, 2)


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE on ``(B, heads, L, head_dim)`` with ``cos``/``sin`` of shape ``(B, L, head_dim)``."""
    half = x.shape[-1] // 2
    turned = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos[:, None] + turned * sin[:, None]


def project(shared: nn.Linear, own: nn.Linear | None, normed: torch.Tensor, marked: torch.Tensor) -> torch.Tensor:
    """``shared(normed)`` ``(1, L, out)``; rows ``marked`` go through ``own`` instead when given (Video-XL beacons)."""
    if own is None or not bool(marked.any()):
        return shared(normed)
    plain, special = (~marked).nonzero().flatten(), marked.nonzero().flatten()
    out = normed.new_empty(*normed.shape[:2], shared.out_features)
    return out.index_copy(1, plain, shared(normed[:, plain])).index_copy(1, special, own(normed[:, special]))


class VisionProjector(nn.Sequential):
    """LLaVA's ``mlp2x_gelu``: vision width -> LM width -> LM width."""

    def __init__(self, vision_dim: int, hidden_dim: int) -> None:
        super().__init__(nn.Linear(vision_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, hidden_dim))


class SummaryProjections(nn.Module):
    """One LM layer's q/k/v projections for summary tokens only (Video-XL's ``beacon_q/k/v_proj``)."""

    def __init__(self, config: MemoryModelConfig) -> None:
        super().__init__()
        kv_width = config.num_kv_heads * config.head_dim
        self.q_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.k_proj = nn.Linear(config.hidden_size, kv_width)
        self.v_proj = nn.Linear(config.hidden_size, kv_width)


class LongVideoMemoryModel(PretrainedModule):
    """Video-XL-style memory: streams frames into summary tokens, serves global/local views (sec. 3.2.2).

    Frames are ``(T, 3, H, W)`` float tensors in ``[0, 1]`` (any size: they are
    resized, aspect not kept, to ``image_size`` squared and CLIP-normalised).
    """

    config_class = MemoryModelConfig

    def __init__(self, config: MemoryModelConfig) -> None:
        super().__init__()
        self.config = config
        self.vision = CLIPVisionModel(config.vision_config())
        self.projector = VisionProjector(config.vision_hidden_size, config.hidden_size)
        self.lm = Qwen2Model(config.lm_config())
        self.summary_embedding = nn.Parameter(torch.randn(config.hidden_size) * 0.02)
        self.summary_projections = (
            nn.ModuleList(SummaryProjections(config) for _ in range(config.num_layers))
            if config.summary_projections
            else None
        )
        self.register_buffer("pixel_mean", torch.tensor(CLIP_MEAN).view(3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(CLIP_STD).view(3, 1, 1), persistent=False)

    @property
    def cached_layers(self) -> int:
        """LM layers whose summary KV is kept: 0 .. last memory layer."""
        return self.config.memory_layers[-1] + 1

    # ---------------------------------------------------------------- vision path

    def encode_frame(self, frame: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One ``(3, H, W)`` frame -> LM input tokens ``(n, hidden)`` and pooled CLIP tokens ``(n, vision_dim)``.

        Frames are encoded one at a time on purpose: a frame's features then never
        depend on what it was batched with, so streaming is bit-exact.
        """
        config = self.config
        size = config.image_size
        pixels = F.interpolate(frame[None].float(), size=(size, size), mode="bilinear", antialias=True)
        pixels = ((pixels - self.pixel_mean) / self.pixel_std).to(self.summary_embedding.dtype)
        hidden = self.vision.pre_layrnorm(self.vision.embeddings(pixels))
        for layer in self.vision.encoder.layers[: config.vision_layers + 1 + config.vision_feature_layer]:
            hidden = layer(hidden, None)
        patches = hidden[:, 1:]
        return self.pool(self.projector(patches))[0], self.pool(patches)[0]

    def pool(self, tokens: torch.Tensor) -> torch.Tensor:
        """2x2 average pool of a square token grid ``(B, g*g, D)`` -> ``(B, (g/2)^2, D)``."""
        grid = self.config.image_size // self.config.patch_size
        image = tokens.unflatten(1, (grid, grid)).permute(0, 3, 1, 2)
        return F.avg_pool2d(image, self.config.pool_stride).flatten(2).transpose(1, 2)

    def encode_frames(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(T, 3, H, W)`` in [0, 1] -> LM tokens ``(T, n, hidden)`` and pooled CLIP tokens ``(T, n, vision_dim)``."""
        if frames.ndim != 4 or frames.shape[1] != 3 or not frames.is_floating_point() or frames.shape[0] == 0:
            raise UserError(
                f"memory frames must be a non-empty float tensor (T, 3, H, W) in [0, 1], got "
                f"{tuple(frames.shape)} {frames.dtype}"
            )
        frames = frames.to(self.summary_embedding.device)
        embeds, descriptors = zip(*(self.encode_frame(frame) for frame in frames))
        return torch.stack(embeds), torch.stack(descriptors)

    # ---------------------------------------------------------------- LM trunk

    def interleave(self, frame_tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A chunk's ``(L, hidden)`` frame tokens with its ``s`` summary tokens interleaved.

        Summary ``j`` follows frame token ``(j + 1) L / s - 1`` (with a compression
        ratio r: one summary after every r frame tokens, Video-XL's "interleave").
        Returns the ``(L + s, hidden)`` sequence and the ``(s,)`` positions of the summaries in it.
        """
        length = frame_tokens.shape[0]
        count = self.config.summaries_for(length)
        ends = [(index + 1) * length // count for index in range(count)]
        pieces, begin = [], 0
        for end in ends:
            pieces += [frame_tokens[begin:end], self.summary_embedding[None]]
            begin = end
        slots = torch.tensor(ends, device=frame_tokens.device) + torch.arange(count, device=frame_tokens.device)
        return torch.cat(pieces), slots

    def summarize(self, cache: SummaryCache, frame_tokens: torch.Tensor) -> tuple[list, list]:
        """Run one chunk ``(L, hidden)`` with its interleaved summary tokens against ``cache``.

        Returns the summary tokens' pre-RoPE keys and values ``(s, kv_width)``
        at every cached layer. Positions: cached summaries 0..N-1, chunk N...
        """
        sequence, slots = self.interleave(frame_tokens)
        return self.run_trunk(cache, sequence, keep=slots, summaries=slots)

    def run_trunk(
        self,
        cache: SummaryCache,
        tokens: torch.Tensor,
        *,
        keep: torch.Tensor | None = None,
        summaries: torch.Tensor | None = None,
    ) -> tuple[list, list]:
        """Run LM input tokens ``(L, hidden)`` after ``cache``: pre-RoPE keys/values of rows ``keep`` (default all).

        Attention is causal over ``tokens`` and sees the whole cache; positions
        are cache 0..N-1, tokens N... (the cache is re-positioned on every call,
        so its keys are kept before RoPE). Rows ``summaries`` are summary tokens:
        with ``summary_projections`` their q/k/v come from their own projections.
        Returns per cached layer ``(len(keep), kv_width)`` keys and values.
        """
        heads, kv_heads = self.config.num_heads, self.config.num_kv_heads
        hidden = tokens[None]
        past, length = len(cache), hidden.shape[1]
        everything = torch.arange(past + length, device=hidden.device)
        cos, sin = self.lm.rotary_emb(hidden, everything[None])
        rows = everything[past:]
        allowed = rows[:, None] >= everything[None]
        marked = torch.zeros(length, dtype=torch.bool, device=hidden.device)
        if summaries is not None:
            marked[summaries] = True
        kept: torch.Tensor | slice = slice(None) if keep is None else keep
        last = self.cached_layers - 1
        keys, values = [], []
        for index, layer in enumerate(self.lm.layers[: last + 1]):
            attn = layer.self_attn
            own = None if self.summary_projections is None else self.summary_projections[index]
            normed = layer.input_layernorm(hidden)
            key = project(attn.k_proj, None if own is None else own.k_proj, normed, marked)
            value = project(attn.v_proj, None if own is None else own.v_proj, normed, marked)
            keys.append(key[0, kept])
            values.append(value[0, kept])
            if index == last:
                break
            if index == last - 1 and keep is not None:  # the last layer only needs the kept rows' keys/values
                hidden, normed, allowed = hidden[:, keep], normed[:, keep], allowed[keep]
                rows, marked = rows[keep], marked[keep]
                kept = slice(None)
            query = project(attn.q_proj, None if own is None else own.q_proj, normed, marked)
            query = rotate(split_heads(query, heads), cos[:, rows], sin[:, rows])
            key = rotate(split_heads(torch.cat([cache.keys[index][None], key], dim=1), kv_heads), cos, sin)
            value = split_heads(torch.cat([cache.values[index][None], value], dim=1), kv_heads)
            mixed = F.scaled_dot_product_attention(
                query,
                key.repeat_interleave(heads // kv_heads, dim=1),
                value.repeat_interleave(heads // kv_heads, dim=1),
                attn_mask=allowed,
            )
            hidden = hidden + attn.o_proj(mixed.transpose(1, 2).flatten(2))
            hidden = hidden + layer.mlp(layer.post_attention_layernorm(hidden))
        return keys, values

    # ---------------------------------------------------------------- prompt around the video (Video-XL)

    def prompt_embeds(self, token_ids: tuple[int, ...]) -> torch.Tensor:
        """LM input embeddings ``(len, hidden)`` of prompt token ids."""
        reference = self.summary_embedding
        ids = torch.tensor(token_ids, dtype=torch.long, device=reference.device)
        return self.lm.embed_tokens(ids).to(reference.dtype)

    def fresh_cache(self) -> SummaryCache:
        """An empty memory; with a ``prompt_prefix``, its keys/values come first (Video-XL's sink), pinned."""
        reference = self.summary_embedding
        cache = SummaryCache.empty(
            self.cached_layers, self.config.kv_width, device=reference.device, dtype=reference.dtype
        )
        if not self.config.prompt_prefix:
            return cache
        keys, values = self.run_trunk(cache, self.prompt_embeds(self.config.prompt_prefix))
        return cache.add(keys, values, 0, pinned=True)  # stands for no frames, never merged

    def closing_view(self, cache: SummaryCache, start: int = 0) -> MemoryView:
        """Cache entries from ``start`` on, then the ``prompt_suffix`` tokens' keys/values (read against ``cache``)."""
        view = cache.view(self.config.memory_layers, start)
        if not self.config.prompt_suffix:
            return view
        keys, values = self.run_trunk(cache, self.prompt_embeds(self.config.prompt_suffix))
        layers = self.config.memory_layers
        suffix = MemoryView(tuple(keys[i][None] for i in layers), tuple(values[i][None] for i in layers))
        return MemoryView.concat([view, suffix])

    def empty_view(self) -> MemoryView:
        """A ``B = 1`` view without tokens (nothing seen yet)."""
        reference = self.summary_embedding
        nothing = tuple(reference.new_zeros(1, 0, self.config.kv_width) for _ in self.config.memory_layers)
        return MemoryView(nothing, nothing)

    def run_chunks(
        self,
        cache: SummaryCache,
        frame_tokens: torch.Tensor,
        plan: list[int] | tuple[int, ...],
        *,
        pinned: bool = False,
        bounded: bool = True,
        stats: AppendStats | None = None,
    ) -> SummaryCache:
        """Summarise ``frame_tokens`` ``(T, n, hidden)`` chunk by chunk per ``plan``; returns the new cache."""
        start = 0
        for size in plan:
            if stats is not None:
                tokens = size * frame_tokens.shape[1]
                tokens += self.config.summaries_for(tokens)
                stats.lm_tokens += tokens
                stats.lm_keys += len(cache) + tokens
            keys, values = self.summarize(cache, frame_tokens[start : start + size].flatten(0, 1))
            cache = cache.add(keys, values, size, pinned)
            limit = self.config.max_global_summaries if bounded else None
            cache = cache.merge_oldest(limit, self.config.summaries_per_chunk)
            start += size
        return cache

    # ---------------------------------------------------------------- streaming API

    def new_state(self) -> MemoryState:
        """An empty memory for one video (on the model's device and dtype)."""
        config, reference = self.config, self.summary_embedding
        tokens = config.tokens_per_frame
        return MemoryState(
            cache=self.fresh_cache(),
            pending_embeds=reference.new_zeros(0, tokens, config.hidden_size),
            pending_changes=reference.new_zeros(0, dtype=torch.float32),
            tail_descriptor=reference.new_zeros(0, tokens, config.vision_hidden_size),
            provisional=self.empty_view(),
            local=self.empty_view(),
        )

    def append(self, state: MemoryState, frames: torch.Tensor, *, pinned: bool = False) -> AppendStats:
        """Add frames ``(T, 3, H, W)`` in [0, 1] to ``state`` (in place); cost grows with T only.

        Plain frames join the chunk stream: chunks whose size is decided are
        committed, the rest (fewer than the largest chunk size) stay pending,
        summarised provisionally for :meth:`global_view`; the local view
        becomes this batch alone.
        ``pinned=True`` (keyframes): each frame becomes its own chunk (ratio 1), kept
        in the global memory for good (never merged), placed after the
        summaries committed so far; the local view is kept.
        Gradients are not disabled here: wrap in ``torch.no_grad()`` for inference.
        """
        config = self.config
        embeds, descriptors = self.encode_frames(frames)
        stats = AppendStats(frames_encoded=frames.shape[0])
        if pinned:
            state.cache = self.run_chunks(state.cache, embeds, [1] * len(embeds), pinned=True, stats=stats)
        else:
            chain = torch.cat([state.tail_descriptor, descriptors])  # changes from the last pending frame on
            changes = [frame_change(a, b)[None] for a, b in zip(chain[:-1], chain[1:])]
            pending = torch.cat([state.pending_embeds, embeds])
            pending_changes = torch.cat([state.pending_changes, *changes])
            plan = plan_chunks(
                pending_changes.tolist(), len(pending), config.chunk_sizes, config.change_thresholds, final=False
            )
            done = sum(plan)
            state.cache = self.run_chunks(state.cache, pending[:done], plan, stats=stats)
            state.pending_embeds = pending[done:]
            state.pending_changes = pending_changes[done:]
            state.tail_descriptor = descriptors[-1:] if state.num_pending else descriptors[:0]
            state.local = self.local_summaries(embeds, stats)
            state.frames_seen += frames.shape[0]
            stats.chunks_committed = len(plan)
        state.provisional = self.provisional_summaries(state, stats)
        stats.pending_frames, stats.summaries = state.num_pending, len(state.cache)
        return stats

    def clear_local(self, state: MemoryState) -> None:
        """Empty the local view (a new run of the shot starts: it has no latest segment yet)."""
        state.local = self.empty_view()

    def local_summaries(self, embeds: torch.Tensor, stats: AppendStats | None = None) -> MemoryView:
        """A batch's LM tokens ``(T, n, hidden)`` encoded on their own with the finest chunking."""
        finest = self.config.chunk_sizes[-1]
        plan = [finest] * (len(embeds) // finest) + ([len(embeds) % finest] if len(embeds) % finest else [])
        return self.closing_view(self.run_chunks(self.fresh_cache(), embeds, plan, stats=stats))

    def provisional_summaries(self, state: MemoryState, stats: AppendStats | None = None) -> MemoryView:
        """Summaries of the pending frames as if the video ended now; never committed."""
        config = self.config
        plan = plan_chunks(
            state.pending_changes.tolist(), state.num_pending, config.chunk_sizes, config.change_thresholds, final=True
        )
        cache = self.run_chunks(state.cache, state.pending_embeds, plan, bounded=False, stats=stats)
        return self.closing_view(cache, start=len(state.cache))

    def global_view(self, state: MemoryState) -> MemoryView:
        """All history: pinned keyframes, committed (possibly merged) summaries, then the pending frames'.

        With a chat prompt: the prefix first and the suffix last; nothing at all before any frame is seen.
        """
        if state.provisional.num_tokens == 0 and len(state.cache) == len(self.config.prompt_prefix):
            return self.empty_view()
        return MemoryView.concat([state.cache.view(self.config.memory_layers), state.provisional])

    def local_view(self, state: MemoryState) -> MemoryView:
        """The most recently appended batch, summarised on its own (finest chunks)."""
        return state.local

    # ---------------------------------------------------------------- training / reward

    def encode_clip(self, frames: torch.Tensor, plan: tuple[int, ...] | None = None) -> ClipMemory:
        """Summaries of a whole clip ``(T, 3, H, W)`` from an empty memory, with gradients if enabled.

        ``plan`` (chunk lengths summing to T) forces the chunking, e.g. the
        reference clip's for the reward (eq. 5); by default it is chosen from the
        clip's feature changes as in streaming, the tail flushed as the clip's end.
        """
        config = self.config
        embeds, descriptors = self.encode_frames(frames)
        if plan is None:
            changes = [frame_change(a, b).item() for a, b in zip(descriptors[:-1], descriptors[1:])]
            plan = plan_chunks(changes, len(embeds), config.chunk_sizes, config.change_thresholds, final=True)
        elif sum(plan) != len(embeds) or min(plan) < 1:
            raise UserError(f"chunk plan {tuple(plan)} does not split {len(embeds)} frames")
        cache = self.run_chunks(self.fresh_cache(), embeds, plan)
        return ClipMemory(self.closing_view(cache), tuple(plan))
