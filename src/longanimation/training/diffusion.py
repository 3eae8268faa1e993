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

With ``diffusion.object_loss_weight`` w > 1 (toon worlds), each latent
position's squared error is weighted ``1 + (w - 1) * a``, ``a`` the share of
its pixels on a character or prop, and the loss is the weighted mean. Those
pixels are a few percent of a frame but hold the colors only the reference
gives (the rest is largely predictable from the line art and the scene), so
an unweighted loss barely rewards reading the reference for them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

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


def latent_weights(object_mask: torch.Tensor, latent_frames: int, latent_size: tuple[int, int], weight: float):
    """``(B, T, 1, h, w)`` loss weights ``1 + (weight - 1) * a`` from a ``(B, F, H, W)`` object mask.

    ``a`` is the mask's mean over the pixels each latent covers: spatial
    blocks, and in time either one frame per latent (no temporal compression)
    or the causal VAE's grouping, frame 0 alone then groups of 4.
    """
    frames = object_mask.shape[1]
    if frames == latent_frames:
        grouped = object_mask
    elif frames == 4 * (latent_frames - 1) + 1:
        rest = object_mask[:, 1:].unflatten(1, (latent_frames - 1, 4)).mean(dim=2)
        grouped = torch.cat([object_mask[:, :1], rest], dim=1)
    else:
        raise ValueError(f"{frames} frames do not map onto {latent_frames} latent frames")
    share = F.adaptive_avg_pool2d(grouped.float(), latent_size)
    return (1.0 + (weight - 1.0) * share).unsqueeze(2)


@torch.no_grad()
def encode_target(backbone, target: torch.Tensor, lead: int, generator: torch.Generator) -> torch.Tensor:
    """Target latents ``z`` of ``(B, 3, F, H, W)`` video sampled from the VAE posterior (the diffusers
    training recipe; conditions use the posterior mean, as at inference), float32, the ``lead`` frames
    copying frame 0."""
    clean = backbone.encode_video(target, generator).float()
    return torch.cat([clean[:, :1].expand(-1, lead, -1, -1, -1), clean], dim=1)


def v_prediction_loss(
    scheduler,
    prediction: torch.Tensor,
    clean: torch.Tensor,
    noise: torch.Tensor,
    timesteps: torch.Tensor,
    lead: int,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean squared error to the velocity target over the segment's frames (leading ``lead`` frames masked).

    ``weights``: optional ``(B, T, 1, h, w)`` per-latent weights (:func:`latent_weights`); the loss is then
    their weighted mean.
    """
    target = scheduler.get_velocity(clean.float(), noise.float(), timesteps)
    error = (prediction.float()[:, lead:] - target[:, lead:]).square()
    if weights is None:
        return error.mean()
    weights = weights.to(error.dtype).expand_as(error)
    return (error * weights).sum() / weights.sum()
