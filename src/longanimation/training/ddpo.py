"""Non-gradient reward optimisation (sec. 3.1 "Reward model without using the gradient", eq. 2).

Eq. 2 is the REINFORCE / DDPO score-function estimator

    grad_theta L_r = E[ r(x_0) * sum_t grad_theta log p_theta(z_{t-1} | z_t) ],

with r the Color Consistency Reward of eq. 5 (:mod:`longanimation.models.reward`). It needs a
stochastic sampler whose every transition is a Gaussian with an exact log-density. This module
provides one for the v-prediction CogVideoX backbone: DDIM (Song et al. 2021, eqs. 12 and 16)
with eta > 0, built on the scheduler's ``alphas_cumprod`` and ``set_timesteps`` only (the
CogVideoX preset: zero-terminal-SNR, trailing spacing, ``set_alpha_to_one``). Writing a_t for
``alphas_cumprod[t]``, v for the model output, and z_t for the current latent, one step is

    x0_hat = sqrt(a_t) z_t - sqrt(1 - a_t) v                        (v-prediction -> x_0)
    eps_hat = sqrt(a_t) v + sqrt(1 - a_t) z_t                       (v-prediction -> epsilon)
    sigma_t = eta * sqrt((1 - a_prev) / (1 - a_t)) * sqrt(1 - a_t / a_prev)        (DDIM eq. 16)
    mu_t = sqrt(a_prev) x0_hat + sqrt(1 - a_prev - sigma_t^2) eps_hat              (DDIM eq. 12)
    z_{t-1} = mu_t + sigma_t * n,   n ~ N(0, I)

so p_theta(z_{t-1} | z_t) = N(mu_t, sigma_t^2 I) and, over the D = T*C*h*w latent entries,

    log p_theta(z_{t-1} | z_t) = -||z_{t-1} - mu_t||^2 / (2 sigma_t^2) - D log sigma_t - (D/2) log(2 pi).

eta = 1 gives the DDPM posterior variance, eta = 0 plain (deterministic) DDIM. a_prev is the
alpha of the next timestep in the sampling schedule, or ``scheduler.final_alpha_cumprod`` after
the last one (1.0 for the CogVideoX preset). With a_prev = 1 the last step has sigma = 0: it is
deterministic (z_0 = x0_hat), has no density, and is excluded from the sum of eq. 2 -- its entry
in :attr:`Trajectory.log_probs` is 0 and :func:`stochastic_steps` leaves it out.

The policy update is DDPO's clipped surrogate (Black et al. 2023) on batch-normalised rewards.
DDPO's public code averages the log-density over latent entries; here it is the exact sum, so a
change of the per-entry mean moves log p (and the clipped ratio) D times further -- choose
``clip_range`` and the learning rate with that in mind.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from diffusers.utils.torch_utils import randn_tensor

from ..errors import UserError

DenoiseFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class Trajectory:
    """One sampled batch of the reverse chain of eq. 2.

    ``latents``: z_T ... z_0, each ``(B, T, C, h, w)`` (S + 1 tensors, detached).
    ``timesteps``: ``(S,)`` the scheduler timesteps of the S steps (step i maps latents[i] -> latents[i+1]).
    ``log_probs``: ``(B, S)`` float64 log p_theta(z_{t-1} | z_t) at sampling time; 0 at deterministic steps.
    """

    latents: list[torch.Tensor]
    timesteps: torch.Tensor
    log_probs: torch.Tensor


def step_alphas(scheduler, timesteps: torch.Tensor, step_index: int) -> tuple[float, float]:
    """(a_t, a_prev) for step ``step_index`` of ``timesteps``.

    a_prev is ``alphas_cumprod`` at the next sampled timestep, or ``scheduler.final_alpha_cumprod``
    after the last one. For the uniform spacings diffusers produces this is the same as DDIM's
    ``t - num_train_timesteps // num_steps`` whenever ``num_steps`` divides ``num_train_timesteps``.
    """
    alphas = scheduler.alphas_cumprod
    alpha_t = float(alphas[int(timesteps[step_index])])
    if step_index + 1 < len(timesteps):
        alpha_prev = float(alphas[int(timesteps[step_index + 1])])
    else:
        alpha_prev = float(scheduler.final_alpha_cumprod)
    return alpha_t, alpha_prev


def ddim_std(alpha_t: float, alpha_prev: float, eta: float) -> float:
    """sigma_t(eta) = eta * sqrt((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)) (DDIM eq. 16), eta in [0, 1]."""
    if not 0.0 <= eta <= 1.0:
        raise UserError(f"eta must lie in [0, 1] (0: DDIM, 1: DDPM posterior variance), got {eta}")
    variance = (1.0 - alpha_prev) / (1.0 - alpha_t) * (1.0 - alpha_t / alpha_prev)
    return eta * math.sqrt(max(variance, 0.0))


def ddim_transition(
    v_pred: torch.Tensor, latents: torch.Tensor, alpha_t: float, alpha_prev: float, *, eta: float
) -> tuple[torch.Tensor, float]:
    """Mean mu_t and std sigma_t of p_theta(z_{t-1} | z_t) for a v-prediction (DDIM eqs. 12 and 16).

    x0_hat = sqrt(a_t) z_t - sqrt(1 - a_t) v, eps_hat = sqrt(a_t) v + sqrt(1 - a_t) z_t,
    mu_t = sqrt(a_prev) x0_hat + sqrt(1 - a_prev - sigma_t^2) eps_hat. The square root's argument
    is clamped at 0 (it is analytically >= 0 for eta <= 1; rounding can make it -1e-9).
    Differentiable in ``v_pred``.
    """
    sigma = ddim_std(alpha_t, alpha_prev, eta)
    x0_hat = math.sqrt(alpha_t) * latents - math.sqrt(1.0 - alpha_t) * v_pred
    eps_hat = math.sqrt(alpha_t) * v_pred + math.sqrt(1.0 - alpha_t) * latents
    direction = math.sqrt(max(1.0 - alpha_prev - sigma**2, 0.0))
    return math.sqrt(alpha_prev) * x0_hat + direction * eps_hat, sigma


def gaussian_log_prob(sample: torch.Tensor, mean: torch.Tensor, std: float) -> torch.Tensor:
    """Exact log N(sample; mean, std^2 I) summed over all non-batch dims -> ``(B,)`` float64.

    -||sample - mean||^2 / (2 std^2) - D log std - (D / 2) log(2 pi), D = entries per batch item.
    Computed in float64: for a paper-size latent (D ~ 3e6) the value is ~1e6-1e7 in magnitude, and
    float32 would quantise the policy ratio exp(new - old) of :func:`clipped_policy_loss`.
    """
    dims = tuple(range(1, sample.ndim))
    count = sample[0].numel()
    squared = (sample.double() - mean.double()).square().sum(dim=dims)
    return -squared / (2.0 * std**2) - count * math.log(std) - 0.5 * count * math.log(2.0 * math.pi)


def stochastic_steps(scheduler, timesteps: torch.Tensor, *, eta: float = 1.0) -> list[int]:
    """Indices of the steps with sigma_t > 0: the only terms of the sum in eq. 2."""
    return [i for i in range(len(timesteps)) if ddim_std(*step_alphas(scheduler, timesteps, i), eta) > 0.0]


def _timestep_batch(timestep: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
    return timestep.to(device=latents.device, dtype=torch.long).expand(latents.shape[0])


def sample_with_log_probs(
    denoise_fn: DenoiseFn,
    scheduler,
    shape: tuple[int, ...],
    num_steps: int,
    *,
    eta: float = 1.0,
    generator: torch.Generator | None = None,
    initial_latents: torch.Tensor | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Trajectory:
    """Run the stochastic DDIM chain z_T -> z_0 and record log p_theta(z_{t-1} | z_t) of every step (eq. 2).

    ``denoise_fn(latents, timesteps)`` gets the current ``(B, T, C, h, w)`` latents and a ``(B,)``
    long tensor of the timestep, and returns the v-prediction (the caller wraps model, conditions
    and CFG). ``scheduler.set_timesteps(num_steps)`` picks the timesteps. z_T is
    ``initial_latents`` if given (it fixes device and dtype), else N(0, I) drawn with
    ``generator`` on ``device`` (default: the generator's device, else CPU) in ``dtype``; the per-step noise comes from the same generator,
    so a seeded generator makes the trajectory reproducible. Runs under ``torch.no_grad()``.
    ``eta = 0`` is deterministic DDIM sampling (all log-probs 0).
    """
    if initial_latents is None:
        if device is None:
            device = generator.device if generator is not None else "cpu"
        latents = randn_tensor(tuple(shape), generator=generator, device=torch.device(device), dtype=dtype)
    elif tuple(initial_latents.shape) != tuple(shape):
        raise UserError(f"initial_latents has shape {tuple(initial_latents.shape)}, expected {tuple(shape)}")
    else:
        latents = initial_latents.detach()
    scheduler.set_timesteps(num_steps)
    timesteps = scheduler.timesteps.detach().cpu().clone()
    trajectory = [latents]
    log_probs = []
    with torch.no_grad():
        for i, timestep in enumerate(timesteps):
            alpha_t, alpha_prev = step_alphas(scheduler, timesteps, i)
            v_pred = denoise_fn(latents, _timestep_batch(timestep, latents))
            mean, sigma = ddim_transition(v_pred, latents, alpha_t, alpha_prev, eta=eta)
            if sigma > 0.0:
                noise = randn_tensor(latents.shape, generator=generator, device=latents.device, dtype=latents.dtype)
                latents = (mean + sigma * noise).to(latents.dtype)
                log_probs.append(gaussian_log_prob(latents, mean, sigma))
            else:
                latents = mean.to(latents.dtype)
                log_probs.append(torch.zeros(latents.shape[0], dtype=torch.float64, device=latents.device))
            trajectory.append(latents)
    return Trajectory(latents=trajectory, timesteps=timesteps, log_probs=torch.stack(log_probs, dim=1))


def step_log_prob(
    denoise_fn: DenoiseFn, scheduler, trajectory: Trajectory, step_index: int, *, eta: float = 1.0
) -> torch.Tensor:
    """log p_theta(z_{t-1} | z_t) of the stored pair at ``step_index`` under the current policy -> ``(B,)`` float64.

    Re-evaluates ``denoise_fn`` on the stored z_t (grad follows the caller's grad mode), so the
    result is differentiable w.r.t. the policy parameters through mu_t; the stored z_{t-1} and
    sigma_t are constants. ``eta`` must be the one used for sampling. A deterministic step
    (sigma_t = 0) returns zeros without calling the model: it carries no term of eq. 2, so skip
    it with :func:`stochastic_steps` when building the loss.
    """
    if not 0 <= step_index < len(trajectory.timesteps):
        raise UserError(f"step_index {step_index} outside 0..{len(trajectory.timesteps) - 1}")
    latents, target = trajectory.latents[step_index], trajectory.latents[step_index + 1]
    alpha_t, alpha_prev = step_alphas(scheduler, trajectory.timesteps, step_index)
    if ddim_std(alpha_t, alpha_prev, eta) == 0.0:
        return torch.zeros(latents.shape[0], dtype=torch.float64, device=latents.device)
    v_pred = denoise_fn(latents, _timestep_batch(trajectory.timesteps[step_index], latents))
    mean, sigma = ddim_transition(v_pred, latents, alpha_t, alpha_prev, eta=eta)
    return gaussian_log_prob(target, mean, sigma)


def clipped_policy_loss(
    new_log_probs: torch.Tensor, old_log_probs: torch.Tensor, advantages: torch.Tensor, clip_range: float = 1e-4
) -> torch.Tensor:
    """DDPO's PPO-style clipped surrogate for one step of eq. 2 -> scalar.

    ratio = exp(new - old); loss = mean_B max(-A * ratio, -A * clip(ratio, 1 - eps, 1 + eps)).
    At ratio = 1 its gradient is -A * grad log p_theta, i.e. eq. 2 with r replaced by the
    advantage A; outside the trust region the clipped branch wins and the gradient is 0.
    """
    ratio = torch.exp(new_log_probs - old_log_probs.detach())
    advantages = advantages.detach().to(ratio.dtype)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range)
    return torch.maximum(unclipped, clipped).mean()


def normalise_advantages(rewards: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """A = (r - mean_B r) / (std_B r + eps), population std over the batch (DDPO's baseline for eq. 2)."""
    return (rewards - rewards.mean()) / (rewards.std(correction=0) + eps)
