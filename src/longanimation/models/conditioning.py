"""The denoiser's conditions, one path for training and inference (sec. 3.1-3.3).

Training (:mod:`longanimation.training`) and the inference pipeline
(:mod:`longanimation.pipeline.long_animation`) both call this module, so that
what the model learns from is exactly what it later sees:

* conversions between uint8 frames / bool line art and the models' tensors:
  the VAE takes ``[-1, 1]`` video, line art drawn black on white; the memory
  model takes ``[0, 1]`` frames;
* :func:`encode_conditions`: ``c_i`` (the reference image latent, padded to
  the sequence: frame 0 = reference, zeros elsewhere), ``c_k`` (the sketch
  latents with the reference's own sketch latent in the leading slot) and
  ``c_t`` (T5 embeddings), as posterior means;
* :func:`predict_velocity` / :func:`guided_velocity`: the call of the
  sketch-controlled denoiser (eq. 3, eq. 4 with a memory) and classifier-free
  guidance on top of it;
* the memory protocol (sec. 3.2.2): keyframes pinned first
  (:func:`start_memory`), frames streamed in as they are generated (or as the
  clip's history, in training), the global view = everything, the local
  view = the latest append (:func:`memory_views`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .backbone import CogVideoXBackbone
from .memory_model import LongVideoMemoryModel
from .memory_state import MemoryState
from .sketch_dit import SketchControlledTransformer, SketchDiT

MEMORY_MODES = ("none", "local", "global", "both")


# ---------------------------------------------------------------------- conversions
def signed_pixels(frames: np.ndarray) -> torch.Tensor:
    """uint8 ``(..., H, W, 3)`` -> float ``(..., 3, H, W)`` in [-1, 1] (the VAE's range)."""
    tensor = torch.from_numpy(np.ascontiguousarray(frames)).float()
    return tensor.movedim(-1, -3) / 127.5 - 1.0


def unit_pixels(frames: np.ndarray) -> torch.Tensor:
    """uint8 ``(..., H, W, 3)`` -> float ``(..., 3, H, W)`` in [0, 1] (the memory model's range)."""
    tensor = torch.from_numpy(np.ascontiguousarray(frames)).float()
    return tensor.movedim(-1, -3) / 255.0


def signed_video(frames: np.ndarray) -> torch.Tensor:
    """uint8 ``(F, H, W, 3)`` -> ``(1, 3, F, H, W)`` in [-1, 1] (the VAE's video layout)."""
    return signed_pixels(frames).transpose(0, 1)[None]


def sketch_image(lines: np.ndarray) -> np.ndarray:
    """Bool line masks ``(..., H, W)`` -> uint8 RGB ``(..., H, W, 3)``: black lines on white."""
    gray = np.where(lines, np.uint8(0), np.uint8(255))
    return np.repeat(gray[..., None], 3, axis=-1)


def unit_frames(video: torch.Tensor) -> torch.Tensor:
    """``(B, 3, F, H, W)`` in [-1, 1] -> ``(B, F, 3, H, W)`` in [0, 1], clamped."""
    return ((video.clamp(-1, 1) + 1) / 2).permute(0, 2, 1, 3, 4)


def uint8_frames(video: torch.Tensor) -> np.ndarray:
    """Decoded ``(3, F, H, W)`` in [-1, 1] -> uint8 ``(F, H, W, 3)``."""
    return ((video.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 3, 0).cpu().numpy()


# ---------------------------------------------------------------------- conditions
@dataclasses.dataclass
class Conditions:
    """Encoded conditions in the model's sequence layout ``(B, lead + T, 16, h, w)``.

    ``text`` is ``(B, L, text_dim)``; for a guided call (:func:`guided_velocity`)
    it is ``[unconditional, conditional]`` of one prompt.
    """

    image: torch.Tensor  # padded reference image latent c_i
    text: torch.Tensor  # c_t
    lead: int  # leading frames (reference slot + temporal padding), dropped after denoising
    sketch: torch.Tensor | None = None  # arranged sketch latents c_k (SketchDiT)


def prompt_embeddings(backbone: CogVideoXBackbone, prompts: Sequence[str], guided: bool) -> torch.Tensor:
    """``c_t`` of ``prompts``; guided (one prompt): ``[c_t(""), c_t(prompt)]`` for classifier-free guidance."""
    if guided:
        if len(prompts) != 1:
            raise ValueError(f"guidance encodes one prompt at a time, got {len(prompts)}")
        return backbone.encode_prompt(["", *prompts])
    return backbone.encode_prompt(list(prompts))


@torch.no_grad()
def encode_conditions(
    backbone: CogVideoXBackbone,
    sketch_dit: SketchDiT,
    *,
    reference: torch.Tensor,
    text: torch.Tensor,
    num_frames: int,
    sketches: torch.Tensor | None = None,
    reference_sketch: torch.Tensor | None = None,
) -> Conditions:
    """``c_i``, ``c_t`` (and ``c_k`` when ``sketches`` are given) of a clip of ``num_frames`` pixel frames.

    ``reference``, ``reference_sketch``: ``(B, 3, H, W)`` in [-1, 1];
    ``sketches``: ``(B, 3, F, H, W)`` in [-1, 1] (line art drawn by :func:`sketch_image`).
    """
    frames = backbone.num_latent_frames(num_frames)
    lead = sketch_dit.num_leading_frames(frames)
    image = backbone.image_latents_padded(backbone.encode_reference_image(reference), lead + frames)
    sketch = None
    if sketches is not None:
        reference_latent = backbone.encode_video(reference_sketch.unsqueeze(2))
        sketch = sketch_dit.arrange_sketch_latents(backbone.encode_video(sketches), reference_latent)
    return Conditions(image, text, lead, sketch)


def predict_velocity(
    denoiser: SketchControlledTransformer,
    latents: torch.Tensor,
    timesteps: torch.Tensor,
    conditions: Conditions,
    memory: dict[str, Any] | None = None,
) -> torch.Tensor:
    """The denoiser's v-prediction for ``latents`` (eq. 3; eq. 4 when ``memory`` is given).

    Conditions of batch 1 and a scalar timestep are broadcast to the latents' batch.
    """
    batch = latents.shape[0]

    def fitted(tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.to(latents.dtype)
        return tensor.expand(batch, *tensor.shape[1:]) if tensor.shape[0] == 1 else tensor

    if timesteps.numel() == 1:
        timesteps = timesteps.reshape(1).expand(batch)
    text = conditions.text
    if text.shape[0] == 1:
        text = text.expand(batch, *text.shape[1:])
    return denoiser(latents, fitted(conditions.image), fitted(conditions.sketch), text, timesteps, memory)


def guided_velocity(
    denoiser: SketchControlledTransformer,
    latents: torch.Tensor,
    timesteps: torch.Tensor,
    conditions: Conditions,
    memory: dict[str, Any] | None,
    guidance_scale: float,
) -> torch.Tensor:
    """Classifier-free guidance: ``v_u + w (v_c - v_u)`` for ``w > 1``, else the conditional prediction.

    ``latents``: ``(K, lead + T, 16, h, w)`` samples of one clip; guided, ``conditions.text``
    holds ``[unconditional, conditional]`` (:func:`prompt_embeddings`).
    """
    if guidance_scale <= 1:
        return predict_velocity(denoiser, latents, timesteps, conditions, memory)
    if conditions.text.shape[0] != 2:
        raise ValueError("guidance needs the text as [unconditional, conditional] of one prompt")
    count = latents.shape[0]
    doubled = dataclasses.replace(conditions, text=conditions.text.repeat_interleave(count, dim=0))
    timesteps = timesteps.reshape(-1).expand(count).repeat(2)
    velocity = predict_velocity(denoiser, latents.repeat(2, 1, 1, 1, 1), timesteps, doubled, memory)
    unconditional, conditional = velocity.chunk(2)
    return unconditional + guidance_scale * (conditional - unconditional)


# ---------------------------------------------------------------------- memory protocol
def start_memory(memory_model: LongVideoMemoryModel, keyframes: torch.Tensor) -> MemoryState:
    """A streaming memory holding ``keyframes`` ``(K, 3, H, W)`` in [0, 1], pinned (never merged away)."""
    state = memory_model.new_state()
    memory_model.append(state, keyframes, pinned=True)
    return state


def stream_frames(memory_model: LongVideoMemoryModel, state: MemoryState, frames: torch.Tensor, append_frames: int) -> None:
    """Append ``frames`` ``(N, 3, H, W)`` in batches of ``append_frames``, the last batch ending at the last frame.

    Inference appends the fresh frames of each segment as it is generated;
    training streams a clip's history the same way, so its local view (the
    latest append) covers what the latest segment would.
    """
    cuts = list(range(len(frames), 0, -append_frames))[::-1]
    for start, end in zip([0, *cuts[:-1]], cuts):
        memory_model.append(state, frames[start:end])


def memory_views(memory_model: LongVideoMemoryModel, state: MemoryState, mode: str = "both") -> dict[str, Any] | None:
    """DGLM's memory inputs (eq. 4) for ``mode`` in :data:`MEMORY_MODES`: global = all, local = the latest append."""
    if mode not in MEMORY_MODES:
        raise ValueError(f"memory mode must be one of {MEMORY_MODES}, got {mode!r}")
    views = {}
    if mode in ("global", "both"):
        views["global_view"] = memory_model.global_view(state)
    if mode in ("local", "both"):
        views["local_view"] = memory_model.local_view(state)
    return views or None
