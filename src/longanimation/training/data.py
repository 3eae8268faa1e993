"""Which clips each process trains on, deterministically.

The dataset is map-style and deterministic per index
(:class:`~longanimation.data.clips.ToonClipDataset`,
:class:`~longanimation.data.clips.FolderClipDataset`). The run consumes one
global stream of sample *positions* 0, 1, 2, ...; position ``p`` is clip
``order[p]``, where the order is a fresh seeded permutation per pass over
the dataset (epoch). An optimizer step with ``A`` accumulation micro-steps,
``W`` processes and ``B`` clips per process takes the next ``A * W * B``
positions: micro-step ``a`` of rank ``r`` gets positions
``start + (a * W + r) * B + [0 .. B)``. The checkpoint stores ``start`` (the
positions consumed), so a resumed run -- even on another number of
processes -- continues the same stream.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..data.clips import ClipConfig, FolderClipDataset, ToonClipDataset
from .config import DataConfig


def build_dataset(config: DataConfig) -> ToonClipDataset | FolderClipDataset:
    """The clip dataset a :class:`DataConfig` describes."""
    # DataConfig keeps ClipConfig's fields flat in the YAML; take them over by name.
    clips = ClipConfig(**{field.name: getattr(config, field.name) for field in dataclasses.fields(ClipConfig)})
    if config.source == "folder":
        return FolderClipDataset(
            config.root,
            clips,
            captions=config.captions,
            default_prompt=config.default_prompt,
            length=config.num_clips,
            sample_seed=config.sample_seed,
        )
    return ToonClipDataset(
        config.world_seeds,
        clips,
        world_frames=config.world_frames,
        weighted_objects=config.weighted_objects,
        length=config.num_clips,
        sample_seed=config.sample_seed,
    )


class ClipOrder:
    """Position in the sample stream -> dataset index (a seeded permutation per epoch, or identity)."""

    def __init__(self, length: int, seed: int, shuffle: bool) -> None:
        self.length = length
        self.seed = seed
        self.shuffle = shuffle
        self._cached: tuple[int, np.ndarray] | None = None

    def _epoch(self, epoch: int) -> np.ndarray:
        if self._cached is None or self._cached[0] != epoch:
            self._cached = (epoch, np.random.default_rng((self.seed, epoch)).permutation(self.length))
        return self._cached[1]

    def __getitem__(self, position: int) -> int:
        epoch, offset = divmod(position, self.length)
        return int(self._epoch(epoch)[offset]) if self.shuffle else offset

    def micro_batch(self, start: int, micro_step: int, rank: int, world_size: int, batch_size: int) -> list[int]:
        """Dataset indices of one micro-step of one process (see the module docstring)."""
        first = start + (micro_step * world_size + rank) * batch_size
        return [self[position] for position in range(first, first + batch_size)]
