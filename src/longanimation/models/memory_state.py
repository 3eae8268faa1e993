"""Data of the long-video memory (sec. 3.2.2): chunk plans, the summary cache, views and the streaming state.

Everything here is plain tensors and small Python values; the network that
produces them is :mod:`longanimation.models.memory_model`.

Layouts (B = videos, N = summary tokens, C = ``kv_width`` = KV heads x head dim):

* :class:`MemoryView` -- what DGLM (eq. 4) and the reward (eq. 5) read: per
  memory layer a key tensor and a value tensor of shape ``(B, N, C)``; keys are
  ``k_proj`` outputs *before* RoPE, as Video-XL caches them. ``mask`` ``(B, N)``
  is True for real tokens (None: all real).
* :class:`SummaryCache` -- the trunk's cache: per cached LM layer ``(N, C)`` keys
  and values of the summary tokens, plus per entry the number of frames its
  chunk stands for (``weights``, int64) and whether it is pinned (keyframes).
* :class:`MemoryState` -- one video being streamed: the cache, frames whose
  chunk is still undecided ("pending"), the provisional summaries of those
  frames and the local view of the latest appended batch.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ..atomic import atomic_file
from ..errors import UserError

STATE_FORMAT = "longanimation.memory_state.v1"


def plan_chunks(
    changes: Sequence[float],
    num_frames: int,
    sizes: Sequence[int],
    thresholds: Sequence[float],
    *,
    final: bool,
) -> list[int]:
    """Split ``num_frames`` frames into chunks from the change between adjacent frames.

    ``changes[i]`` is the feature change between frame ``i`` and ``i + 1``;
    ``sizes`` is descending (paper: 8, 4, 2) and ``thresholds`` has one entry
    per size but the last. At each chunk start the chunk is the largest size
    whose window stays calm (every adjacent change inside it below that
    size's threshold); the smallest size is always allowed. A decision is only
    made when it cannot change with frames not seen yet: a size whose window
    runs past ``num_frames`` is either already ruled out by a change inside
    the visible part, or the decision waits. With ``final=True`` (end of the
    clip) a window running past the end is judged on its visible part and the
    chunk takes the frames that are left, so every frame is planned.

    Returns the planned chunk lengths; frames after them are undecided.
    """
    limits = [*thresholds, math.inf]
    plan: list[int] = []
    start = 0
    while start < num_frames:
        available = num_frames - start
        size = None
        for candidate, limit in zip(sizes, limits):
            calm = all(change < limit for change in changes[start : start + candidate - 1])
            if not calm:
                continue
            if available >= candidate:
                size = candidate
            elif final:
                size = available
            break
        if size is None:
            break
        plan.append(size)
        start += size
    return plan


def frame_change(previous: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
    """Change between two frames' pooled vision tokens ``(n_tokens, D)``: mean cosine distance (0-d)."""
    return 1.0 - F.cosine_similarity(previous.float(), current.float(), dim=-1).mean()


@dataclasses.dataclass
class MemoryView:
    """Summary-token keys and values at the M memory layers: the memory input of eq. 4 and eq. 5.

    ``keys[m]`` and ``values[m]`` have shape ``(B, N, kv_width)``; keys are pre-RoPE.
    ``mask`` ``(B, N)`` (True = real token) exists after :meth:`stack` padded views.
    """

    keys: tuple[torch.Tensor, ...]
    values: tuple[torch.Tensor, ...]
    mask: torch.Tensor | None = None

    @property
    def num_layers(self) -> int:
        return len(self.keys)

    @property
    def batch_size(self) -> int:
        return self.keys[0].shape[0]

    @property
    def num_tokens(self) -> int:
        return self.keys[0].shape[1]

    def key_padding_mask(self) -> torch.Tensor:
        """``(B, N)`` bool, True where a token is real."""
        if self.mask is not None:
            return self.mask
        return torch.ones(self.batch_size, self.num_tokens, dtype=torch.bool, device=self.keys[0].device)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> MemoryView:
        """Move keys and values (the mask only changes device)."""
        return MemoryView(
            tuple(k.to(device=device, dtype=dtype) for k in self.keys),
            tuple(v.to(device=device, dtype=dtype) for v in self.values),
            None if self.mask is None else self.mask.to(device=device),
        )

    @classmethod
    def concat(cls, views: Sequence[MemoryView]) -> MemoryView:
        """Join views of the same videos along the token axis."""
        masks = [view.key_padding_mask() for view in views] if any(v.mask is not None for v in views) else None
        return cls(
            tuple(torch.cat(parts, dim=1) for parts in zip(*(view.keys for view in views))),
            tuple(torch.cat(parts, dim=1) for parts in zip(*(view.values for view in views))),
            None if masks is None else torch.cat(masks, dim=1),
        )

    @classmethod
    def stack(cls, views: Sequence[MemoryView]) -> MemoryView:
        """Batch views of different videos: zero-pad to the longest, with a key padding mask."""
        if not views:
            raise ValueError("stack needs at least one view")
        length = max(view.num_tokens for view in views)

        def pad(tensor: torch.Tensor) -> torch.Tensor:
            return F.pad(tensor, (0, 0, 0, length - tensor.shape[1]))

        return cls(
            tuple(torch.cat([pad(t) for t in parts]) for parts in zip(*(view.keys for view in views))),
            tuple(torch.cat([pad(t) for t in parts]) for parts in zip(*(view.values for view in views))),
            torch.cat([F.pad(view.key_padding_mask(), (0, length - view.num_tokens)) for view in views]),
        )


@dataclasses.dataclass(frozen=True)
class SummaryCache:
    """Summary-token keys/values (pre-RoPE) at every cached LM layer, oldest first; immutable.

    ``keys[l]``/``values[l]``: ``(N, kv_width)``; ``weights`` ``(N,)`` int64 frames of
    the entry's chunk; ``pinned`` ``(N,)`` bool, pinned entries (keyframes) are never merged.
    """

    keys: tuple[torch.Tensor, ...]
    values: tuple[torch.Tensor, ...]
    weights: torch.Tensor
    pinned: torch.Tensor

    @classmethod
    def empty(cls, num_layers: int, width: int, *, device, dtype) -> SummaryCache:
        blank = torch.zeros(0, width, device=device, dtype=dtype)
        return cls(
            (blank,) * num_layers,
            (blank,) * num_layers,
            torch.zeros(0, dtype=torch.int64, device=device),
            torch.zeros(0, dtype=torch.bool, device=device),
        )

    def __len__(self) -> int:
        return self.weights.shape[0]

    def add(self, keys: Sequence[torch.Tensor], values: Sequence[torch.Tensor], weight: int, pinned: bool):
        """Return the cache with one chunk's ``s`` entries more (``keys[l]``, ``values[l]``: ``(s, kv_width)``)."""
        device, count = self.weights.device, keys[0].shape[0]
        return SummaryCache(
            tuple(torch.cat([old, new]) for old, new in zip(self.keys, keys)),
            tuple(torch.cat([old, new]) for old, new in zip(self.values, values)),
            torch.cat([self.weights, torch.full((count,), weight, device=device)]),
            torch.cat([self.pinned, torch.full((count,), pinned, device=device)]),
        )

    def merge_oldest(self, limit: int | None, group: int = 1) -> SummaryCache:
        """Bound the unpinned entries to ``limit`` (None: no bound).

        Entries come in chunks of ``group`` summary tokens (one chunk's ``s``).
        Rule: when there are ``n > limit`` unpinned entries, the oldest half of
        the unpinned chunks is merged in adjacent pairs (1st with 2nd, 3rd with
        4th, ... in unpinned order), token ``j`` with token ``j``; a merged
        token is the frame-weighted mean of the pair (keys are pre-RoPE, and
        positions are reassigned per chunk, so means stay valid keys) and takes
        the place of the older one. The chunk count drops by a quarter; pinned
        entries stay untouched and in place.
        """
        free = torch.nonzero(~self.pinned).flatten()
        if limit is None or free.numel() <= limit:
            return self
        # with a compression ratio the clip's last chunk may be shorter: it is the newest, never merged here
        chunks = free[: free.numel() - free.numel() % group].view(-1, group)
        pairs = chunks.shape[0] // 4
        first, second = chunks[0 : 2 * pairs : 2].flatten(), chunks[1 : 2 * pairs : 2].flatten()
        share = self.weights[second] / (self.weights[first] + self.weights[second])
        keep = torch.ones(len(self), dtype=torch.bool, device=self.weights.device)
        keep[second] = False

        def merge(tensor: torch.Tensor) -> torch.Tensor:
            mixed = torch.lerp(tensor[first], tensor[second], share[:, None].to(tensor.dtype))
            return tensor.index_copy(0, first, mixed)[keep]

        weights = self.weights.index_copy(0, first, self.weights[first] + self.weights[second])
        return SummaryCache(
            tuple(merge(k) for k in self.keys),
            tuple(merge(v) for v in self.values),
            weights[keep],
            self.pinned[keep],
        )

    def view(self, layers: Sequence[int], start: int = 0) -> MemoryView:
        """Entries from ``start`` on at the given LM layers, as a ``B = 1`` :class:`MemoryView`."""
        return MemoryView(
            tuple(self.keys[layer][start:][None] for layer in layers),
            tuple(self.values[layer][start:][None] for layer in layers),
        )


@dataclasses.dataclass
class MemoryState:
    """Streaming memory of one video; create with ``LongVideoMemoryModel.new_state()``.

    * ``cache``: committed summaries (all history, bounded by merging) and pinned keyframes.
    * ``pending_embeds`` ``(P, tokens_per_frame, hidden)``: LM inputs of frames whose
      chunk is undecided; ``pending_changes`` ``(max(P - 1, 0),)``: their adjacent
      changes; ``tail_descriptor`` ``(min(P, 1), tokens_per_frame, vision_dim)``: the
      last pending frame's pooled vision tokens (to measure the next change).
    * ``provisional``: summaries of the pending frames (not committed), ``B = 1`` view.
    * ``local``: the latest appended batch encoded on its own, ``B = 1`` view.
    * ``frames_seen``: frames appended (pinned keyframes not counted).
    """

    cache: SummaryCache
    pending_embeds: torch.Tensor
    pending_changes: torch.Tensor
    tail_descriptor: torch.Tensor
    provisional: MemoryView
    local: MemoryView
    frames_seen: int = 0

    @property
    def num_pending(self) -> int:
        return self.pending_embeds.shape[0]

    def state_dict(self) -> tuple[dict[str, torch.Tensor], dict[str, int | str]]:
        """Tensors (contiguous copies, safetensors-ready) and a small JSON-able dict."""
        tensors = {
            "cache.weights": self.cache.weights,
            "cache.pinned": self.cache.pinned,
            "pending.embeds": self.pending_embeds,
            "pending.changes": self.pending_changes,
            "pending.tail_descriptor": self.tail_descriptor,
        }
        for index, (key, value) in enumerate(zip(self.cache.keys, self.cache.values)):
            tensors[f"cache.keys.{index}"], tensors[f"cache.values.{index}"] = key, value
        for name, view in (("provisional", self.provisional), ("local", self.local)):
            for index, (key, value) in enumerate(zip(view.keys, view.values)):
                tensors[f"{name}.keys.{index}"], tensors[f"{name}.values.{index}"] = key, value
        tensors = {name: tensor.detach().contiguous().clone() for name, tensor in tensors.items()}
        meta = {
            "format": STATE_FORMAT,
            "cache_layers": len(self.cache.keys),
            "memory_layers": self.local.num_layers,
            "frames_seen": self.frames_seen,
        }
        return tensors, meta

    @classmethod
    def from_state_dict(cls, tensors: dict[str, torch.Tensor], meta: dict) -> MemoryState:
        """Inverse of :meth:`state_dict`; raises :class:`UserError` on a foreign or incomplete state."""
        if meta.get("format") != STATE_FORMAT:
            raise UserError(f"not a memory state (format {meta.get('format')!r}, expected {STATE_FORMAT})")
        try:
            cache_layers, memory_layers = int(meta["cache_layers"]), int(meta["memory_layers"])

            def layers(prefix: str, count: int) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
                keys = tuple(tensors[f"{prefix}.keys.{i}"] for i in range(count))
                values = tuple(tensors[f"{prefix}.values.{i}"] for i in range(count))
                return keys, values

            return cls(
                cache=SummaryCache(
                    *layers("cache", cache_layers), tensors["cache.weights"], tensors["cache.pinned"]
                ),
                pending_embeds=tensors["pending.embeds"],
                pending_changes=tensors["pending.changes"],
                tail_descriptor=tensors["pending.tail_descriptor"],
                provisional=MemoryView(*layers("provisional", memory_layers)),
                local=MemoryView(*layers("local", memory_layers)),
                frames_seen=int(meta["frames_seen"]),
            )
        except (KeyError, ValueError, TypeError) as error:
            raise UserError(f"incomplete memory state: missing or bad entry {error}") from None

    def save(self, path: str | os.PathLike) -> None:
        """Write the state as one safetensors file (atomically), metadata as JSON inside it."""
        tensors, meta = self.state_dict()
        with atomic_file(path) as tmp:
            save_file(tensors, str(tmp), metadata={"memory_state": json.dumps(meta)})

    @classmethod
    def load(cls, path: str | os.PathLike, device: torch.device | str = "cpu") -> MemoryState:
        """Read a state written by :meth:`save`."""
        try:
            with safe_open(str(path), framework="pt", device=str(device)) as handle:
                meta = json.loads((handle.metadata() or {}).get("memory_state", "{}"))
            tensors = load_file(str(path), device=str(device))
        except (SafetensorError, OSError, ValueError) as error:
            raise UserError(f"cannot read memory state {path}: {error}") from None
        return cls.from_state_dict(tensors, meta)
