"""Stochastic DDIM sampler with exact log-probs, and the eq. 2 policy-gradient pieces (training/ddpo.py)."""

from __future__ import annotations

import math

import pytest
import torch
from diffusers import CogVideoXDPMScheduler, DDIMScheduler
from diffusers.utils.torch_utils import randn_tensor

from longanimation.errors import UserError
from longanimation.models.presets import SCHEDULER
from longanimation.training.ddpo import (
    clipped_policy_loss,
    gaussian_log_prob,
    normalise_advantages,
    sample_with_log_probs,
    stochastic_steps,
    step_log_prob,
)

SHAPE = (3, 2, 4, 3, 3)  # (B, T, C, h, w)


class AffinePolicy(torch.nn.Module):
    """v = (scale_c * z + bias_c) * (1 + t / 1000): a tiny policy with parameters and timestep dependence."""

    def __init__(self, channels: int, scale: float = 0.2, bias: float = 0.0):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.full((channels,), scale))
        self.bias = torch.nn.Parameter(torch.full((channels,), bias))

    def forward(self, latents: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        assert timesteps.shape == (latents.shape[0],) and timesteps.dtype == torch.long
        shape = (1, 1, -1, 1, 1)
        time = (1.0 + timesteps.float() / 1000.0).view(-1, 1, 1, 1, 1)
        return (self.scale.view(shape) * latents + self.bias.view(shape)) * time


def cogvideox_scheduler() -> CogVideoXDPMScheduler:
    return CogVideoXDPMScheduler(**SCHEDULER)


def ddim_reference() -> DDIMScheduler:
    assert SCHEDULER["snr_shift_scale"] == 1.0  # DDIMScheduler has no SNR shift: same alphas only at 1.0
    return DDIMScheduler(**{k: v for k, v in SCHEDULER.items() if k != "snr_shift_scale"})


def test_log_probs_match_torch_normal_and_diffusers_ddim_posterior():
    scheduler, reference = cogvideox_scheduler(), ddim_reference()
    policy = AffinePolicy(SHAPE[2])
    trajectory = sample_with_log_probs(policy, scheduler, SHAPE, 5, generator=torch.Generator().manual_seed(0))
    assert len(trajectory.latents) == 6 and trajectory.log_probs.shape == (SHAPE[0], 5)
    reference.set_timesteps(5)
    assert torch.equal(trajectory.timesteps, reference.timesteps)
    with torch.no_grad():
        for i, t in enumerate(reference.timesteps.tolist()):
            latents = trajectory.latents[i]
            v = policy(latents, torch.full((SHAPE[0],), t))
            mean = reference.step(v, t, latents, eta=1.0, variance_noise=torch.zeros(SHAPE)).prev_sample
            std = reference._get_variance(t, t - 1000 // 5).sqrt()
            if i == 4:  # zero-terminal-SNR + final alpha 1: the last step is deterministic and excluded
                assert std == 0 and torch.allclose(trajectory.latents[-1], mean, atol=1e-6)
                assert torch.all(trajectory.log_probs[:, i] == 0)
                continue
            expected = torch.distributions.Normal(mean.double(), std.double()).log_prob(trajectory.latents[i + 1])
            torch.testing.assert_close(trajectory.log_probs[:, i], expected.sum(dim=(1, 2, 3, 4)), rtol=1e-5, atol=1e-4)
    assert stochastic_steps(scheduler, trajectory.timesteps) == [0, 1, 2, 3]


def test_gaussian_log_prob_includes_constant_term():
    mean, sample = torch.zeros(2, 1, 1, 2, 2), torch.ones(2, 1, 1, 2, 2)
    expected = torch.distributions.Normal(mean, 0.5).log_prob(sample).sum(dim=(1, 2, 3, 4)).double()
    torch.testing.assert_close(gaussian_log_prob(sample, mean, 0.5), expected)
    # 4 entries: -4 * (1 / (2 * 0.25)) - 4 * log 0.5 - 2 * log(2 pi)
    assert abs(gaussian_log_prob(sample, mean, 0.5)[0].item() - (-8 + 4 * math.log(2) - 2 * math.log(2 * math.pi))) < 1e-12


def test_step_log_prob_reproduces_sampling_and_has_policy_gradient():
    scheduler, policy = cogvideox_scheduler(), AffinePolicy(SHAPE[2], bias=0.1)
    trajectory = sample_with_log_probs(policy, scheduler, SHAPE, 4, generator=torch.Generator().manual_seed(1))
    recomputed = torch.stack([step_log_prob(policy, scheduler, trajectory, i) for i in range(4)], dim=1)
    torch.testing.assert_close(recomputed.detach(), trajectory.log_probs, rtol=1e-9, atol=1e-6)
    total = sum(recomputed[:, i].sum() for i in stochastic_steps(scheduler, trajectory.timesteps))
    total.backward()
    assert policy.scale.grad.abs().sum() > 0 and policy.bias.grad.abs().sum() > 0
    with torch.no_grad():
        policy.bias.add_(0.05)
    assert not torch.allclose(step_log_prob(policy, scheduler, trajectory, 1), trajectory.log_probs[:, 1])


def test_seeded_generator_is_deterministic():
    scheduler, policy = cogvideox_scheduler(), AffinePolicy(SHAPE[2])
    a, b, c = (
        sample_with_log_probs(policy, scheduler, SHAPE, 4, generator=torch.Generator().manual_seed(seed))
        for seed in (7, 7, 8)
    )
    assert all(torch.equal(x, y) for x, y in zip(a.latents, b.latents))
    assert torch.equal(a.log_probs, b.log_probs)
    assert not torch.equal(a.latents[-1], c.latents[-1])
    with pytest.raises(UserError):
        sample_with_log_probs(policy, scheduler, SHAPE, 4, eta=1.5)
    with pytest.raises(UserError):
        sample_with_log_probs(policy, scheduler, SHAPE, 4, initial_latents=torch.zeros(1, 2, 4, 3, 3))


@pytest.mark.parametrize("num_steps", [1, 4, 50])
def test_eta_zero_is_diffusers_ddim_for_v_prediction(num_steps):
    scheduler, reference, policy = cogvideox_scheduler(), ddim_reference(), AffinePolicy(SHAPE[2], bias=0.3)
    start = randn_tensor(SHAPE, generator=torch.Generator().manual_seed(2))
    ours = sample_with_log_probs(policy, scheduler, SHAPE, num_steps, eta=0.0, initial_latents=start)
    assert torch.all(ours.log_probs == 0) and stochastic_steps(scheduler, ours.timesteps, eta=0.0) == []
    reference.set_timesteps(num_steps)
    latents = start
    with torch.no_grad():
        for i, t in enumerate(reference.timesteps):
            latents = reference.step(policy(latents, t.expand(SHAPE[0])), t, latents, eta=0.0).prev_sample
            torch.testing.assert_close(ours.latents[i + 1], latents, rtol=0, atol=1e-5)


def test_clipped_policy_loss_matches_reinforce_at_ratio_one_and_clips_outside():
    old = torch.randn(6, dtype=torch.float64)
    advantages = torch.tensor([1.0, -1.0, 2.0, -2.0, 0.5, -0.5])
    new = old.clone().requires_grad_()
    loss = clipped_policy_loss(new, old, advantages)
    torch.testing.assert_close(loss, -advantages.double().mean())
    loss.backward()
    torch.testing.assert_close(new.grad, -advantages.double() / 6)

    eps = 1e-4
    shift = torch.tensor([0.01, 0.01, -0.01, -0.01], dtype=torch.float64)  # ratio ~ 1.01 or ~ 0.99: outside 1 +- eps
    advantages = torch.tensor([1.0, -1.0, -1.0, 1.0])
    new = (old[:4] + shift).requires_grad_()
    loss = clipped_policy_loss(new, old[:4], advantages, clip_range=eps)
    loss.backward()
    # Moving further in the advantage's direction is clipped (no gradient); moving against it is not.
    assert new.grad[0] == 0 and new.grad[2] == 0
    assert new.grad[1] != 0 and new.grad[3] != 0
    ratio = torch.exp(shift)
    expected = torch.stack([torch.tensor(-(1 + eps)), ratio[1], torch.tensor(1 - eps), -ratio[3]]).mean()
    torch.testing.assert_close(loss, expected)


def test_normalise_advantages():
    advantages = normalise_advantages(torch.tensor([1.0, 2.0, 3.0, 6.0]))
    torch.testing.assert_close(advantages.mean(), torch.tensor(0.0), atol=1e-6, rtol=0)
    torch.testing.assert_close(advantages.std(correction=0), torch.tensor(1.0), atol=1e-5, rtol=0)
    assert torch.all(normalise_advantages(torch.full((3,), 2.0)) == 0)


def test_reinforce_raises_reward_on_toy_denoiser():
    """Eq. 2 end to end: v = 0 is optimal for N(0, I) data; a learnt per-channel bias shifts x0 to the reward."""
    torch.manual_seed(0)
    scheduler, shape = cogvideox_scheduler(), (16, 1, 2, 2, 2)
    policy = AffinePolicy(shape[2], scale=0.0)
    policy.scale.requires_grad_(False)
    optimiser = torch.optim.Adam([policy.bias], lr=0.05)
    generator = torch.Generator().manual_seed(0)

    def reward(x0: torch.Tensor) -> torch.Tensor:
        return -(x0.mean(dim=(1, 2, 3, 4)) - 0.5).square()

    def mean_reward() -> float:
        evaluation = sample_with_log_probs(
            policy, scheduler, (512, 1, 2, 2, 2), 4, generator=torch.Generator().manual_seed(123)
        )
        return reward(evaluation.latents[-1]).mean().item()

    before = mean_reward()
    for _ in range(50):
        trajectory = sample_with_log_probs(policy, scheduler, shape, 4, generator=generator)
        advantages = normalise_advantages(reward(trajectory.latents[-1]))
        optimiser.zero_grad()
        loss = sum(
            clipped_policy_loss(step_log_prob(policy, scheduler, trajectory, i), trajectory.log_probs[:, i], advantages)
            for i in stochastic_steps(scheduler, trajectory.timesteps)
        )
        loss.backward()
        optimiser.step()
    after = mean_reward()
    assert after > before + 0.1, (before, after)
