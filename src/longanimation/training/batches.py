"""Collate :class:`~longanimation.data.clips.TrainingClip` samples into tensors.

Layouts are the ones the models take (see :mod:`longanimation.models.backbone`):

* ``target``, ``sketches``: ``(B, 3, F, H, W)`` in [-1, 1] (the VAE's video layout);
  line art is drawn as an RGB image, black lines on white, exactly as the
  inference pipeline feeds it to the VAE;
* ``reference``, ``reference_sketch``: ``(B, 3, H, W)`` in [-1, 1];
* ``history``: per clip ``(K, 3, H, W)`` in [0, 1] (the memory model's layout), K may differ;
* ``object_mask``: ``(B, F, H, W)`` float, 1 on characters and props, when every clip has one (toon worlds).

Conversions, conditions and the memory protocol are the inference pipeline's
own (:mod:`longanimation.models.conditioning`): :meth:`ClipBatch.conditions`
and :meth:`ClipBatch.memory_inputs` only feed a batch through them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch

from ..data.clips import TrainingClip
from ..models.backbone import CogVideoXBackbone
from ..models.conditioning import (
    Conditions,
    encode_conditions,
    memory_views,
    prompt_embeddings,
    signed_pixels,
    sketch_image,
    start_memory,
    stream_frames,
    unit_frames,
    unit_pixels,
)
from ..models.memory_model import LongVideoMemoryModel
from ..models.memory_state import MemoryView
from ..models.sketch_dit import SketchDiT


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

    @torch.no_grad()
    def conditions(
        self, backbone: CogVideoXBackbone, sketch_dit: SketchDiT, *, with_sketch: bool, guided: bool = False
    ) -> Conditions:
        """``c_i``, ``c_t`` (and ``c_k`` when ``with_sketch``) of the batch, as inference encodes a segment's.

        ``guided`` (a one-clip batch): the text is ``[unconditional, conditional]`` for guidance.
        """
        return encode_conditions(
            backbone,
            sketch_dit,
            reference=self.reference,
            text=prompt_embeddings(backbone, self.prompts, guided),
            num_frames=self.target.shape[2],
            sketches=self.sketches if with_sketch else None,
            reference_sketch=self.reference_sketch if with_sketch else None,
        )

    @torch.no_grad()
    def memory_inputs(self, memory_model: LongVideoMemoryModel, append_frames: int) -> dict[str, MemoryView]:
        """DGLM's memory inputs per clip, stacked with padding masks: the memory inference builds.

        The reference is pinned as the keyframe, then the history is streamed in
        batches of ``append_frames`` (the fresh frames of a segment at inference),
        the last batch ending just before the target.
        """
        global_views, local_views = [], []
        for reference, history in zip(self.reference, self.history):
            state = start_memory(memory_model, ((reference + 1) / 2)[None])
            stream_frames(memory_model, state, history, append_frames)
            views = memory_views(memory_model, state, "both")
            global_views.append(views["global_view"])
            local_views.append(views["local_view"])
        return {"global_view": MemoryView.stack(global_views), "local_view": MemoryView.stack(local_views)}


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
