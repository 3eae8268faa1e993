"""Frozen encodings of a training batch: latents, reference, sketches, text, memory (sec. 3.1-3.2).

Everything here runs under ``torch.no_grad()`` on frozen parts and mirrors
what the inference pipeline (:mod:`longanimation.pipeline.long_animation`)
feeds the denoiser, so training and inference see the same inputs:

* target latents ``z``: the VAE posterior *sampled* (the diffusers training
  recipe); conditions use the posterior mean, as at inference;
* ``c_i``: the reference image latent (``encode_reference_image``), padded to
  the sequence (frame 0 = reference, zeros elsewhere);
* ``c_k``: the sketch latents, with the reference frame's own sketch latent
  in the leading reference slot (``arrange_sketch_latents``);
* ``c_t``: T5 embeddings of the prompt;
* memory (sec. 3.2.2): the reference is pinned as a keyframe, then the
  history is streamed in batches of ``append_frames`` (the fresh frames of a
  segment at inference), the last batch ending just before the target; the
  global view is all of it, the local view the last batch.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from ..models.backbone import CogVideoXBackbone
from ..models.memory_model import LongVideoMemoryModel
from ..models.memory_state import MemoryView
from ..models.sketch_dit import SketchDiT
from .batches import ClipBatch


@dataclasses.dataclass
class Conditions:
    """Encoded conditions in the model's sequence layout ``(B, lead + T, 16, h, w)``."""

    image: torch.Tensor  # padded reference image latent c_i
    text: torch.Tensor  # c_t, (B, L, text_dim)
    lead: int  # leading frames (reference slot + temporal padding), dropped after denoising
    sketch: torch.Tensor | None = None  # arranged sketch latents c_k (SketchDiT stages)


@torch.no_grad()
def encode_conditions(
    backbone: CogVideoXBackbone, sketch_dit: SketchDiT, batch: ClipBatch, *, with_sketch: bool
) -> Conditions:
    """``c_i``, ``c_t`` (and ``c_k`` when ``with_sketch``) of ``batch``, posterior means."""
    frames = backbone.num_latent_frames(batch.target.shape[2])
    lead = sketch_dit.num_leading_frames(frames)
    image = backbone.image_latents_padded(backbone.encode_reference_image(batch.reference), lead + frames)
    sketch = None
    if with_sketch:
        reference_sketch = backbone.encode_video(batch.reference_sketch.unsqueeze(2))
        sketch = sketch_dit.arrange_sketch_latents(backbone.encode_video(batch.sketches), reference_sketch)
    return Conditions(image, backbone.encode_prompt(batch.prompts), lead, sketch)


@torch.no_grad()
def encode_target(backbone: CogVideoXBackbone, batch: ClipBatch, lead: int, generator: torch.Generator) -> torch.Tensor:
    """Target latents ``z`` sampled from the VAE posterior, float32, the ``lead`` frames copying frame 0."""
    clean = backbone.encode_video(batch.target, generator).float()
    return torch.cat([clean[:, :1].expand(-1, lead, -1, -1, -1), clean], dim=1)


@torch.no_grad()
def memory_views(
    memory_model: LongVideoMemoryModel, batch: ClipBatch, append_frames: int
) -> dict[str, Any]:
    """DGLM's inputs for ``batch``: ``{"global_view", "local_view"}``, clips stacked with padding masks."""
    global_views, local_views = [], []
    for reference, history in zip(batch.reference, batch.history):
        state = memory_model.new_state()
        memory_model.append(state, ((reference + 1) / 2)[None], pinned=True)
        cuts = list(range(len(history), 0, -append_frames))[::-1]
        for start, end in zip([0, *cuts[:-1]], cuts):
            memory_model.append(state, history[start:end])
        global_views.append(memory_model.global_view(state))
        local_views.append(memory_model.local_view(state))
    return {"global_view": MemoryView.stack(global_views), "local_view": MemoryView.stack(local_views)}
