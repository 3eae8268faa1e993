"""Stage ``sketchdit`` (the paper's stage 1, sec. 3.2.1 and 4.1): train SketchDiT, backbone frozen.

Eq. 1 (v-prediction form, :mod:`~longanimation.training.diffusion`) through
the sketch-controlled backbone of eq. 3: the frozen CogVideoX transformer
with ``gamma * S(c_t, c_i, c_k)`` added after every second block. ``c_i`` is
the clip's reference frame, drawn from the history the paper's way (up to
hundreds of frames before the segment, already sampled in
:class:`~longanimation.data.clips.TrainingClip`); ``c_k`` the VAE latents of
the line art drawn black on white, with the reference's own sketch latent in
the leading slot; ``c_t`` the prompt's T5 embeddings. No memory: stage 1
learns the first segment of fig. 2(b).

By default SketchDiT is re-initialised from the backbone's first ``L``
blocks with a zero output projection when the stage starts (the paper's
initialisation), so a backbone trained by the ``base`` stage is copied.
``sketchdit.train_backbone`` trains the backbone transformer too (the
tiny preset's own backbone; the paper keeps its pretrained one frozen).
"""

from __future__ import annotations

from typing import Any

import torch

from ...models.conditioning import Conditions, predict_velocity
from ...models.sketch_dit import SketchControlledTransformer, SketchDiT
from ..batches import ClipBatch
from ..diffusion import draw_noise, encode_target, latent_weights, v_prediction_loss
from .core import StepContext, TrainingStage


class SketchConditionedStage(TrainingStage):
    """Diffusion training through :class:`SketchControlledTransformer`; subclasses pick parts and memory."""

    def memory_inputs(self, batch: ClipBatch) -> dict[str, Any] | None:
        """DGLM's memory keyword arguments for ``batch`` (None: no memory)."""
        raise NotImplementedError

    def run_step(self, batch: ClipBatch, context: StepContext) -> dict[str, float]:
        backbone = self.model.backbone
        conditions = batch.conditions(backbone, self.model.sketch_dit, with_sketch=True)
        clean = encode_target(backbone, batch.target, conditions.lead, context.generator)
        memory = self.memory_inputs(batch)
        noise, timesteps = draw_noise(
            clean, backbone.scheduler.config.num_train_timesteps, context.generator, self.config.diffusion
        )
        noisy = backbone.scheduler.add_noise(clean, noise, timesteps)
        weights = None
        if self.config.diffusion.object_loss_weight != 1:
            frames, size = clean.shape[1] - conditions.lead, clean.shape[-2:]
            weights = latent_weights(batch.object_mask, frames, size, self.config.diffusion.object_loss_weight)
        return self.backward_once(context, noisy, conditions, timesteps, clean, noise, memory, weights)

    def forward(
        self,
        noisy: torch.Tensor,
        conditions: Conditions,
        timesteps: torch.Tensor,
        clean: torch.Tensor,
        noise: torch.Tensor,
        memory: dict[str, Any] | None,
        weights: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Eq. 1 through eq. 3 (and eq. 4 when ``memory`` is given); ``weights``: per-latent loss weights."""
        model = self.model
        dglm = model.dglm if memory is not None else None
        denoiser = SketchControlledTransformer(model.backbone.transformer, model.sketch_dit, dglm)
        prediction = predict_velocity(denoiser, noisy, timesteps, conditions, memory)
        loss = v_prediction_loss(
            model.backbone.scheduler, prediction, clean, noise, timesteps, conditions.lead, weights
        )
        return loss, {}


class SketchDiTStage(SketchConditionedStage):
    """Stage 1: SketchDiT trains, no memory."""

    name = "sketchdit"
    trains = ("sketch_dit",)  # stage 1: SketchDiT, 30k steps

    def __init__(self, model, config) -> None:
        if config.sketchdit.init_from_backbone:
            model.sketch_dit = SketchDiT.from_backbone(model.backbone.transformer, model.sketch_dit.config)
        super().__init__(model, config)
        if config.sketchdit.train_backbone:
            self.add_module("transformer", model.backbone.transformer)

    def memory_inputs(self, batch: ClipBatch) -> None:
        return None
