"""Collate :class:`~longanimation.data.clips.TrainingClip` samples into tensors.

Layouts are the ones the models take (see :mod:`longanimation.models.backbone`):

* ``target``, ``sketches``: ``(B, 3, F, H, W)`` in [-1, 1] (the VAE's video layout);
  line art is drawn as an RGB image, black lines on white, exactly as the
  inference pipeline feeds it to the VAE;
* ``reference``, ``reference_sketch``: ``(B, 3, H, W)`` in [-1, 1];
* ``history``: per clip ``(K, 3, H, W)`` in [0, 1] (the memory model's layout), K may differ;
* ``object_mask``: ``(B, F, H, W)`` float, 1 on characters and props, when every clip has one (toon worlds).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch

from ..data.clips import TrainingClip


@dataclasses.dataclass
class ClipBatch:
    """A batch of training clips as model-ready tensors (layouts in the module docstring)."""

    target: torch.Tensor
    sketches: torch.Tensor
    reference: torch.Tensor
    reference_sketch: torch.Tensor
    history: tuple[torch.Tensor, ...]
    prompts: tuple[str, ...]
    object_mask: torch.Tensor | None = None

    @property
    def size(self) -> int:
        return self.target.shape[0]

    def to(self, device: torch.device | str) -> ClipBatch:
        return ClipBatch(
            self.target.to(device),
            self.sketches.to(device),
            self.reference.to(device),
            self.reference_sketch.to(device),
            tuple(frames.to(device) for frames in self.history),
            self.prompts,
            None if self.object_mask is None else self.object_mask.to(device),
        )

    def select(self, index: int) -> ClipBatch:
        """The one-clip batch of clip ``index``."""
        return ClipBatch(
            self.target[index : index + 1],
            self.sketches[index : index + 1],
            self.reference[index : index + 1],
            self.reference_sketch[index : index + 1],
            self.history[index : index + 1],
            self.prompts[index : index + 1],
            None if self.object_mask is None else self.object_mask[index : index + 1],
        )

    def target_frames(self) -> torch.Tensor:
        """The target as ``(B, F, 3, H, W)`` in [0, 1] (the reward's and the memory model's layout)."""
        return unit_frames(self.target)


def unit_frames(video: torch.Tensor) -> torch.Tensor:
    """``(B, 3, F, H, W)`` in [-1, 1] -> ``(B, F, 3, H, W)`` in [0, 1], clamped."""
    return ((video.clamp(-1, 1) + 1) / 2).permute(0, 2, 1, 3, 4)


def signed_pixels(frames: np.ndarray) -> torch.Tensor:
    """uint8 ``(..., H, W, 3)`` -> float ``(..., 3, H, W)`` in [-1, 1] (the VAE's range)."""
    tensor = torch.from_numpy(np.ascontiguousarray(frames)).float()
    return tensor.movedim(-1, -3) / 127.5 - 1.0


def unit_pixels(frames: np.ndarray) -> torch.Tensor:
    """uint8 ``(..., H, W, 3)`` -> float ``(..., 3, H, W)`` in [0, 1] (the memory model's range)."""
    tensor = torch.from_numpy(np.ascontiguousarray(frames)).float()
    return tensor.movedim(-1, -3) / 255.0


def sketch_image(lines: np.ndarray) -> np.ndarray:
    """Bool line masks ``(..., H, W)`` -> uint8 RGB ``(..., H, W, 3)``: black lines on white."""
    gray = np.where(lines, np.uint8(0), np.uint8(255))
    return np.repeat(gray[..., None], 3, axis=-1)


def collate(clips: Sequence[TrainingClip]) -> ClipBatch:
    """Stack clips (same frame count and size) into a :class:`ClipBatch`."""
    return ClipBatch(
        target=torch.stack([signed_pixels(clip.target).transpose(0, 1) for clip in clips]),
        sketches=torch.stack([signed_pixels(sketch_image(clip.sketches)).transpose(0, 1) for clip in clips]),
        reference=torch.stack([signed_pixels(clip.reference) for clip in clips]),
        reference_sketch=torch.stack([signed_pixels(sketch_image(clip.reference_sketch)) for clip in clips]),
        history=tuple(unit_pixels(clip.history) for clip in clips),
        prompts=tuple(clip.prompt for clip in clips),
        object_mask=None
        if any(clip.object_mask is None for clip in clips)
        else torch.stack([torch.from_numpy(clip.object_mask).float() for clip in clips]),
    )
