"""The diffusion objective of eq. 1 for the v-prediction CogVideoX backbone.

Eq. 1 is written for an epsilon-predicting DiT. CogVideoX is trained with
v-prediction (its scheduler's ``prediction_type``), so the regression target
is the velocity ``v = sqrt(a_t) eps - sqrt(1 - a_t) z_0`` instead of ``eps``:

    L = E_{z, eps, t} || v(z, eps, t) - v_theta(z_t, t, c_t, c_i[, c_k]) ||^2,   z_t = sqrt(a_t) z + sqrt(1 - a_t) eps

with ``z_t`` from ``scheduler.add_noise`` and ``v`` from
``scheduler.get_velocity``; ``t`` is uniform over the training timesteps
(or over a top range of them, to fine-tune for few-step sampling: see
:class:`~longanimation.training.config.DiffusionConfig`).

Leading latent frames (the reference slot of
:mod:`~longanimation.models.sketch_dit`, plus CogVideoX-1.5's temporal
padding) are generated and dropped at inference: they have no ground truth,
so they are noised like the rest (their clean latent is a copy of the first
target frame, as padding frames are in CogVideoX-1.5 fine-tuning) and masked
out of the loss.
"""

from __future__ import annotations

import torch

from ..errors import UserError
from .config import DiffusionConfig


def draw_noise(
    clean: torch.Tensor, num_train_timesteps: int, generator: torch.Generator, timestep_range: DiffusionConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian noise like ``clean`` and one timestep per batch item, uniform over ``timestep_range`` (drawn on CPU)."""
    low = timestep_range.min_timestep
    high = num_train_timesteps if timestep_range.max_timestep is None else timestep_range.max_timestep
    if high > num_train_timesteps or low >= high:
        raise UserError(f"diffusion timesteps [{low}, {high}) do not fit the scheduler's {num_train_timesteps}")
    noise = torch.randn(clean.shape, generator=generator, dtype=torch.float32).to(clean.device, clean.dtype)
    timesteps = torch.randint(low, high, (clean.shape[0],), generator=generator).to(clean.device)
    return noise, timesteps


def v_prediction_loss(
    scheduler, prediction: torch.Tensor, clean: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor, lead: int
) -> torch.Tensor:
    """Mean squared error to the velocity target over the segment's frames (leading ``lead`` frames masked)."""
    target = scheduler.get_velocity(clean.float(), noise.float(), timesteps)
    return (prediction.float()[:, lead:] - target[:, lead:]).square().mean()
