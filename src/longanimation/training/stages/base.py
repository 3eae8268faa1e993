"""Stage ``base`` (tiny preset only): train the CogVideoX image-to-video transformer itself.

The paper builds on a pretrained CogVideoX-1.5 I2V; the tiny preset starts it
random. The objective is eq. 1 in its v-prediction form
(:mod:`~longanimation.training.diffusion`) with the backbone's own
conditioning (sec. 3.1): the padded reference image latent ``c_i``
concatenated on channels and the text ``c_t`` on the sequence axis. The
latent sequence has the same leading reference slot as in the SketchDiT
stages, so the transformer learns the layout it is later controlled in.
"""

from __future__ import annotations

import torch

from ...models.backbone import rotary_embeddings
from ..batches import ClipBatch
from ..diffusion import draw_noise, encode_target, v_prediction_loss
from .core import StepContext, TrainingStage


class BaseStage(TrainingStage):
    """Trains ``backbone.transformer`` only."""

    name = "base"
    trains = ("backbone.transformer",)
    paper = False

    def run_step(self, batch: ClipBatch, context: StepContext) -> dict[str, float]:
        backbone = self.model.backbone
        conditions = batch.conditions(backbone, self.model.sketch_dit, with_sketch=False)
        clean = encode_target(backbone, batch.target, conditions.lead, context.generator)
        noise, timesteps = draw_noise(
            clean, backbone.scheduler.config.num_train_timesteps, context.generator, self.config.diffusion
        )
        noisy = backbone.scheduler.add_noise(clean, noise, timesteps)
        return self.backward_once(
            context, noisy, conditions.image, conditions.text, timesteps, clean, noise, conditions.lead
        )

    def forward(
        self,
        noisy: torch.Tensor,
        image: torch.Tensor,
        text: torch.Tensor,
        timesteps: torch.Tensor,
        clean: torch.Tensor,
        noise: torch.Tensor,
        lead: int,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Eq. 1 (v-prediction) for noisy latents ``(B, lead + T, 16, h, w)``."""
        _, frames, _, height, width = noisy.shape
        prediction = self.transformer(
            hidden_states=torch.cat([noisy, image.to(noisy.dtype)], dim=2),
            encoder_hidden_states=text,
            timestep=timesteps,
            ofs=self.model.backbone.ofs(noisy.device),
            image_rotary_emb=rotary_embeddings(self.transformer.config, frames, height, width, noisy.device),
            return_dict=False,
        )[0]
        return v_prediction_loss(self.model.backbone.scheduler, prediction, clean, noise, timesteps, lead), {}
