"""Stage ``reward`` (the paper's stage 3, sec. 3.2.3 and 4.1): Color Consistency Reward on DGLM.

Per clip, ``K`` videos are sampled from the current policy -- the
sketch-controlled backbone with DGLM reading the clip's memory (eq. 3-4),
with the inference pipeline's conditions and classifier-free guidance --
by the stochastic DDIM chain of :mod:`~longanimation.training.ddpo`, which
records ``log p_theta(z_{t-1} | z_t)`` of every step. The videos are
decoded and scored against the ground truth by eq. 5,

    r = sum_m ||k_ref^m - k^m||^2 + ||v_ref^m - v^m||^2   (a distance; reward = -r),

the advantages ``A`` are the rewards normalised over the clip's K samples
(a per-clip baseline), and eq. 2,

    grad L_r = E[ r(x_0) sum_t grad log p_theta(z_{t-1} | z_t) ],

is followed through DDPO's clipped surrogate, averaged over the chain's
stochastic steps (one backward per step, gradients synced on the last).
DGLM is the trained part: the paper does not say which parts stage 3 tunes,
and DGLM's memory input is what the Color Consistency Reward aligns.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import torch

from ...models.conditioning import Conditions, guided_velocity, unit_frames
from ...models.reward import color_consistency_distance
from ...models.sketch_dit import SketchControlledTransformer
from .. import ddpo
from ..batches import ClipBatch
from .core import StepContext, TrainingStage
from .memory import append_frames


@dataclasses.dataclass
class PolicyInputs:
    """One clip's conditions for the policy; ``text`` is ``[unconditional, conditional]`` when guided."""

    conditions: Conditions
    memory: dict[str, Any]


class RewardStage(TrainingStage):
    """Stage 3: DGLM trains by the non-gradient reward of eq. 2 + eq. 5."""

    name = "reward"
    trains = ("dglm",)  # stage 3: 10k steps

    def run_step(self, batch: ClipBatch, context: StepContext) -> dict[str, float]:
        totals = {"loss": 0.0, "reward_mean": 0.0, "reward_std": 0.0, "clip_fraction": 0.0}
        for index in range(batch.size):
            clip = batch.select(index)
            inputs = self.policy_inputs(clip)
            trajectory, rewards = self.sample_and_score(clip, inputs, context.generator)
            sync = context.final and index == batch.size - 1
            loss, clip_fraction = self.policy_update(trajectory, rewards, inputs, context, sync, batch.size)
            totals["loss"] += loss / batch.size
            totals["reward_mean"] += rewards.mean().item() / batch.size
            totals["reward_std"] += rewards.std(correction=0).item() / batch.size
            totals["clip_fraction"] += clip_fraction / batch.size
        return totals

    @torch.no_grad()
    def sample_and_score(
        self, clip: ClipBatch, inputs: PolicyInputs, generator: torch.Generator
    ) -> tuple[ddpo.Trajectory, torch.Tensor]:
        """K trajectories of the current policy (eq. 2's samples) and their rewards ``-r`` of eq. 5, ``(K,)``."""
        settings = self.config.reward
        trajectory = ddpo.sample_with_log_probs(
            functools.partial(self.denoise, inputs=inputs),
            self.model.backbone.scheduler,
            (settings.samples_per_clip, *inputs.conditions.image.shape[1:]),
            settings.num_inference_steps,
            eta=settings.eta,
            generator=generator,
            device=self.device,
        )
        return trajectory, -self.distances(trajectory.latents[-1], inputs.conditions.lead, clip)

    def policy_update(
        self,
        trajectory: ddpo.Trajectory,
        rewards: torch.Tensor,
        inputs: PolicyInputs,
        context: StepContext,
        sync: bool,
        clips: int,
    ) -> tuple[float, float]:
        """Backward of the clipped surrogate at every stochastic step (one backward each; the last syncs if ``sync``).

        Returns the mean surrogate and the fraction of (sample, step) ratios outside the clip range.
        """
        settings, scheduler = self.config.reward, self.model.backbone.scheduler
        advantages = ddpo.normalise_advantages(rewards)
        steps = ddpo.stochastic_steps(scheduler, trajectory.timesteps, eta=settings.eta)
        policy = functools.partial(context.module, inputs=inputs)
        surrogate, clipped = 0.0, 0
        for order, step in enumerate(steps):
            with context.syncing(sync and order == len(steps) - 1):
                new_log_probs = ddpo.step_log_prob(policy, scheduler, trajectory, step, eta=settings.eta)
                old_log_probs = trajectory.log_probs[:, step].to(new_log_probs.device)
                loss = ddpo.clipped_policy_loss(new_log_probs, old_log_probs, advantages, settings.clip_range)
                context.backward(loss / (len(steps) * clips))
            surrogate += loss.item() / len(steps)
            ratio = torch.exp(new_log_probs.detach() - old_log_probs)
            clipped += int(((ratio - 1).abs() > settings.clip_range).sum())
        return surrogate, clipped / (len(steps) * len(rewards))

    @torch.no_grad()
    def policy_inputs(self, clip: ClipBatch) -> PolicyInputs:
        """Conditions and memory of a one-clip batch, with the empty prompt prepended when guided."""
        model = self.model
        guided = self.config.reward.guidance_scale > 1
        conditions = clip.conditions(model.backbone, model.sketch_dit, with_sketch=True, guided=guided)
        memory = clip.memory_inputs(model.memory_model, append_frames(model, self.config))
        return PolicyInputs(conditions, memory)

    @torch.no_grad()
    def distances(self, latents: torch.Tensor, lead: int, clip: ClipBatch) -> torch.Tensor:
        """Eq. 5 between the decoded samples ``(K, lead + T, 16, h, w)`` and the clip's ground truth -> ``(K,)``."""
        generated = unit_frames(self.model.backbone.decode_latents(latents[:, lead:]).float())
        truth = clip.target_frames().expand(len(generated), -1, -1, -1, -1)
        return color_consistency_distance(self.model.memory_model, generated, truth).float()

    def forward(self, latents: torch.Tensor, timesteps: torch.Tensor, inputs: PolicyInputs) -> torch.Tensor:
        """The policy's v-prediction (gradient-carrying calls go through the prepared stage)."""
        return self.denoise(latents, timesteps, inputs)

    def denoise(self, latents: torch.Tensor, timesteps: torch.Tensor, inputs: PolicyInputs) -> torch.Tensor:
        """v-prediction of the controlled backbone with DGLM for ``(K, lead + T, 16, h, w)`` latents, CFG'd."""
        model = self.model
        denoiser = SketchControlledTransformer(model.backbone.transformer, model.sketch_dit, model.dglm)
        return guided_velocity(
            denoiser, latents, timesteps, inputs.conditions, inputs.memory, self.config.reward.guidance_scale
        )
